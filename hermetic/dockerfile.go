package hermetic

import (
	"bytes"
	"errors"
	"fmt"
	"regexp"
	"runtime"
	"strconv"
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/dfgitutil"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/buildkit/frontend/dockerfile/shell"
)

// Analysis lists the external inputs of a Dockerfile and the features that
// let a build reach beyond them.
type Analysis struct {
	Images []ImageUse // FROM, COPY --from and RUN --mount=from= image references, in order
	URLs   []URLUse   // ADD <http(s) url>
	Git    []GitUse   // ADD <git url>
	// Findings are features a hermetic build should refuse or at least
	// report: a "# syntax=" directive (a custom frontend image is an
	// unlocked input), explicit RUN --network modes other than "none", RUN
	// --security=insecure and RUN --mount=type=secret|ssh|cache.
	Findings []Finding
}

// ImageUse is one reference to an image in a Dockerfile.
type ImageUse struct {
	Name        string // after ARG expansion, as written
	Line        int    // 1-based Dockerfile line
	Instruction string // "FROM", "COPY --from" or "RUN --mount"
}

// URLUse is one ADD of a remote file.
type URLUse struct {
	URL      string
	Checksum string // ADD --checksum value, if any
	Line     int
}

// GitUse is one ADD of a git repository.
type GitUse struct {
	URL      string // as written (after ARG expansion)
	Remote   string // remote URL without fragment
	Ref      string // branch, tag or commit; "" for the remote's HEAD
	SubDir   string
	Checksum string // commit from ADD --checksum or ?checksum=, if any
	Line     int
}

// Finding kinds.
const (
	FindingSyntax   = "syntax"   // Value: the frontend image
	FindingNetwork  = "network"  // Value: the RUN --network mode
	FindingSecurity = "security" // Value: "insecure"
	FindingMount    = "mount"    // Value: the mount type (secret, ssh, cache)
)

// Finding is a Dockerfile feature that reaches beyond the locked inputs.
type Finding struct {
	Kind  string
	Value string
	Line  int
}

// dockerfileError carries a Dockerfile line number; Error reads
// "Dockerfile:LINE: message".
type dockerfileError struct {
	line int
	msg  string
	err  error
}

func (e *dockerfileError) Error() string {
	if e.line > 0 {
		return fmt.Sprintf("Dockerfile:%d: %s", e.line, e.msg)
	}
	return "Dockerfile: " + e.msg
}

func (e *dockerfileError) Unwrap() error { return e.err }

var lineErrPrefix = regexp.MustCompile(`^dockerfile parse error on line \d+: `)

// dfError converts a BuildKit parser error into "Dockerfile:LINE: message".
func dfError(err error, fallbackLine int) error {
	line := fallbackLine
	var le *parser.LocationError
	if errors.As(err, &le) && len(le.Locations) > 0 && len(le.Locations[0]) > 0 {
		line = le.Locations[0][0].Start.Line
	}
	return &dockerfileError{line: line, msg: lineErrPrefix.ReplaceAllString(err.Error(), ""), err: err}
}

func dfErrorf(line int, format string, args ...any) error {
	return &dockerfileError{line: line, msg: fmt.Sprintf(format, args...)}
}

// envList is an ordered shell.EnvGetter.
type envList struct {
	keys []string
	vals map[string]string
}

func newEnv() *envList { return &envList{vals: map[string]string{}} }

func (e *envList) Get(k string) (string, bool) { v, ok := e.vals[k]; return v, ok }
func (e *envList) Keys() []string              { return append([]string(nil), e.keys...) }
func (e *envList) set(k, v string) {
	if _, ok := e.vals[k]; !ok {
		e.keys = append(e.keys, k)
	}
	e.vals[k] = v
}

func (e *envList) clone() *envList {
	c := newEnv()
	for _, k := range e.keys {
		c.set(k, e.vals[k])
	}
	return c
}

// defaultPlatform is used when no platform is requested.
func defaultPlatform() string { return "linux/" + runtime.GOARCH }

// platformArgs mirrors BuildKit's automatic platform ARGs. The lock records
// one platform; it is used for both the build and the target platform.
func platformArgs(platform, target string, overrides map[string]string) *envList {
	parts := strings.SplitN(platform, "/", 3)
	for len(parts) < 3 {
		parts = append(parts, "")
	}
	env := newEnv()
	for _, kv := range [][2]string{
		{"BUILDPLATFORM", platform},
		{"BUILDOS", parts[0]},
		{"BUILDOSVERSION", ""},
		{"BUILDARCH", parts[1]},
		{"BUILDVARIANT", parts[2]},
		{"TARGETPLATFORM", platform},
		{"TARGETOS", parts[0]},
		{"TARGETOSVERSION", ""},
		{"TARGETARCH", parts[1]},
		{"TARGETVARIANT", parts[2]},
		{"TARGETSTAGE", target},
	} {
		v := kv[1]
		if ov, ok := overrides[kv[0]]; ok {
			v = ov
		}
		env.set(kv[0], v)
	}
	return env
}

// AnalyzeDockerfile parses a Dockerfile with BuildKit's parser and lists its
// external inputs after expanding ARGs the way BuildKit does: global ARGs
// before the first FROM with their defaults, overridden by buildArgs, plus
// the automatic platform ARGs (BUILDPLATFORM, TARGETPLATFORM, ... all derived
// from platform; "" means linux/GOARCH).
//
// All stages are analysed, not only those the target needs, so a lock does
// not depend on the target; target is only checked to name a stage.
// Syntax errors read "Dockerfile:LINE: message".
func AnalyzeDockerfile(dockerfile []byte, buildArgs map[string]string, target, platform string) (*Analysis, error) {
	if len(bytes.TrimSpace(dockerfile)) == 0 {
		return nil, errors.New("the Dockerfile is empty")
	}
	if platform == "" {
		platform = defaultPlatform()
	}
	if err := validatePlatform(platform); err != nil {
		return nil, fmt.Errorf("platform: %w", err)
	}
	a := &Analysis{}
	if syntax, _, loc, ok := parser.DetectSyntax(dockerfile); ok {
		line := 1
		if len(loc) > 0 {
			line = loc[0].Start.Line
		}
		a.Findings = append(a.Findings, Finding{Kind: FindingSyntax, Value: syntax, Line: line})
	}
	res, err := parser.Parse(bytes.NewReader(dockerfile))
	if err != nil {
		return nil, dfError(err, 0)
	}
	stages, metaArgs, err := instructions.Parse(res.AST, nil)
	if err != nil {
		return nil, dfError(err, 0)
	}
	if len(stages) == 0 {
		return nil, errors.New("the Dockerfile has no stages (no FROM instruction)")
	}
	targetName := strings.ToLower(target)
	if target != "" {
		found := false
		for _, st := range stages {
			found = found || st.Name == targetName
		}
		if !found {
			return nil, fmt.Errorf("target stage %q not found in the Dockerfile", target)
		}
	} else {
		targetName = stages[len(stages)-1].Name
	}
	if targetName == "" {
		targetName = "default"
	}

	lex := shell.NewLex(res.EscapeToken)
	global := platformArgs(platform, targetName, buildArgs)
	for _, cmd := range metaArgs {
		for _, kv := range cmd.Args {
			if v, ok := buildArgs[kv.Key]; ok {
				global.set(kv.Key, v)
			} else if kv.Value != nil {
				r, err := lex.ProcessWordWithMatches(*kv.Value, global)
				if err != nil {
					return nil, dfError(err, line(cmd.Location()))
				}
				global.set(kv.Key, r.Result)
			}
		}
	}

	stageByName := map[string]int{}
	for i, st := range stages {
		if st.Name != "" {
			if _, dup := stageByName[st.Name]; !dup {
				stageByName[st.Name] = i
			}
		}
	}
	stageEnv := make([]*envList, len(stages))
	for i, st := range stages {
		ln := line(st.Location)
		r, err := lex.ProcessWordWithMatches(st.BaseName, global)
		if err != nil {
			return nil, dfError(err, ln)
		}
		base := r.Result
		if base == "" {
			return nil, dfErrorf(ln, "base name (%s) should not be blank", st.BaseName)
		}
		env := newEnv()
		if j, ok := stageByName[base]; ok && j < i {
			env = stageEnv[j].clone()
		} else if base != "scratch" {
			a.Images = append(a.Images, ImageUse{Name: base, Line: ln, Instruction: "FROM"})
		}
		if err := analyzeStage(a, st, env, global, buildArgs, lex, stageByName, len(stages)); err != nil {
			return nil, err
		}
		stageEnv[i] = env
	}
	return a, nil
}

func line(r []parser.Range) int {
	if len(r) == 0 {
		return 0
	}
	return r[0].Start.Line
}

func analyzeStage(a *Analysis, st instructions.Stage, env, global *envList, buildArgs map[string]string, lex *shell.Lex, stageByName map[string]int, nStages int) error {
	expand := func(word string, ln int) (string, error) {
		r, err := lex.ProcessWordWithMatches(word, env)
		if err != nil {
			return "", dfError(err, ln)
		}
		return r.Result, nil
	}
	for _, cmd := range st.Commands {
		ln := 0
		if lc, ok := cmd.(interface{ Location() []parser.Range }); ok {
			ln = line(lc.Location())
		}
		switch c := cmd.(type) {
		case *instructions.ArgCommand:
			for _, kv := range c.Args {
				if v, ok := buildArgs[kv.Key]; ok {
					env.set(kv.Key, v)
				} else if kv.Value != nil {
					v, err := expand(*kv.Value, ln)
					if err != nil {
						return err
					}
					env.set(kv.Key, v)
				} else if v, ok := global.Get(kv.Key); ok {
					env.set(kv.Key, v)
				}
			}
		case *instructions.EnvCommand:
			for _, kv := range c.Env {
				v, err := expand(kv.Value, ln)
				if err != nil {
					return err
				}
				env.set(kv.Key, v)
			}
		case *instructions.AddCommand:
			checksum, err := expand(c.Checksum, ln)
			if err != nil {
				return err
			}
			for _, raw := range c.SourcePaths {
				src, err := expand(raw, ln)
				if err != nil {
					return err
				}
				gitRef, isGit, gerr := dfgitutil.ParseGitRef(src)
				if gerr != nil && isGit {
					return dfErrorf(ln, "ADD %s: %v", src, gerr)
				}
				switch {
				case gerr == nil && !gitRef.IndistinguishableFromLocal:
					sum := gitRef.Checksum
					if sum == "" {
						sum = checksum
					}
					a.Git = append(a.Git, GitUse{URL: src, Remote: gitRef.Remote, Ref: gitRef.Ref, SubDir: gitRef.SubDir, Checksum: sum, Line: ln})
				case strings.HasPrefix(src, "http://") || strings.HasPrefix(src, "https://"):
					a.URLs = append(a.URLs, URLUse{URL: src, Checksum: checksum, Line: ln})
				}
			}
		case *instructions.CopyCommand:
			if c.From == "" {
				continue
			}
			r, err := lex.ProcessWordWithMatches(c.From, shell.EnvsFromSlice(nil))
			if err != nil || r.Result != c.From {
				return dfErrorf(ln, "variable expansion is not supported for COPY --from=%s", c.From)
			}
			if n, err := strconv.Atoi(c.From); err == nil {
				if n < 0 || n >= nStages {
					return dfErrorf(ln, "COPY --from=%d: invalid stage index", n)
				}
				continue
			}
			if _, ok := stageByName[strings.ToLower(c.From)]; ok {
				continue
			}
			a.Images = append(a.Images, ImageUse{Name: c.From, Line: ln, Instruction: "COPY --from"})
		case *instructions.RunCommand:
			// Mount options are only fully parsed once expanded with the
			// stage environment, as BuildKit does at dispatch time.
			if err := c.Expand(func(w string) (string, error) { return expand(w, ln) }); err != nil {
				return dfError(err, ln)
			}
			for _, m := range instructions.GetMounts(c) {
				switch m.Type {
				case instructions.MountTypeSecret, instructions.MountTypeSSH, instructions.MountTypeCache:
					a.Findings = append(a.Findings, Finding{Kind: FindingMount, Value: string(m.Type), Line: ln})
				}
				if m.From == "" {
					continue
				}
				if _, ok := stageByName[strings.ToLower(m.From)]; ok {
					continue
				}
				a.Images = append(a.Images, ImageUse{Name: m.From, Line: ln, Instruction: "RUN --mount"})
			}
			for _, f := range c.FlagsUsed {
				switch f {
				case "network":
					if n := instructions.GetNetwork(c); n != instructions.NetworkNone {
						a.Findings = append(a.Findings, Finding{Kind: FindingNetwork, Value: n, Line: ln})
					}
				case "security":
					if s := instructions.GetSecurity(c); s == instructions.SecurityInsecure {
						a.Findings = append(a.Findings, Finding{Kind: FindingSecurity, Value: s, Line: ln})
					}
				}
			}
		}
	}
	return nil
}
