package hermetic

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
)

const maxListed = 10

// Check verifies that contextDir still holds exactly what l was made from:
// the same files (content, type, mode; ignore-file semantics as at lock
// time) and the same Dockerfile. On mismatch it returns an error wrapping
// ErrLockMismatch that names each added, removed or changed path.
//
// In a git work tree the content digest is authoritative, not HEAD: the
// lock is usually committed after it is made, which moves HEAD without
// changing the context. A different HEAD is only mentioned when the content
// differs too.
func Check(ctx context.Context, l *Lock, contextDir string) error {
	if l == nil {
		return fmt.Errorf("checking lock: %w: nil lock", ErrInvalidLock)
	}
	hint := fmt.Sprintf("run `twinforge lock %s` to update the lock", contextDir)
	st, err := os.Stat(contextDir)
	if err != nil {
		return fmt.Errorf("checking lock: build context %s: %w", contextDir, err)
	}
	if !st.IsDir() {
		return fmt.Errorf("checking lock: build context %s is not a directory", contextDir)
	}
	dfPath := filepath.Join(contextDir, filepath.FromSlash(l.Dockerfile.Path))
	dfBytes, err := os.ReadFile(dfPath)
	if errors.Is(err, fs.ErrNotExist) {
		return wrapf(ErrLockMismatch, "the Dockerfile %s named by the lock does not exist in %s; the lock may belong to another context; %s", l.Dockerfile.Path, contextDir, hint)
	}
	if err != nil {
		return fmt.Errorf("checking lock: reading Dockerfile: %w", err)
	}
	digest, files, err := ContextDigest(contextDir, l.Dockerfile.Path)
	if err != nil {
		return fmt.Errorf("checking lock: %w", err)
	}
	dfChanged := sha256Digest(dfBytes) != l.Dockerfile.Digest
	if digest == l.Source.Digest && !dfChanged {
		return nil
	}

	var diffs []string
	if len(l.Files) > 0 {
		diffs = diffFiles(l.Files, files)
	}
	if dfChanged && !containsPath(diffs, l.Dockerfile.Path) {
		diffs = append([]string{"changed: " + l.Dockerfile.Path + " (Dockerfile)"}, diffs...)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s does not match the lock", contextDir)
	switch {
	case len(diffs) > 0:
		b.WriteString(":")
		for i, d := range diffs {
			if i == maxListed {
				fmt.Fprintf(&b, "\n  and %d more", len(diffs)-maxListed)
				break
			}
			b.WriteString("\n  " + d)
		}
		b.WriteString("\n")
	default:
		fmt.Fprintf(&b, " (context digest %s, lock has %s); ", digest, l.Source.Digest)
	}
	if l.Source.Kind == SourceKindGit {
		if g, err := inspectGit(ctx, contextDir, nil); err == nil && g != nil && g.commit != l.Source.Commit {
			fmt.Fprintf(&b, "HEAD is now %s, the lock was made at %s; ", g.commit, l.Source.Commit)
		}
	}
	b.WriteString(hint)
	return wrapf(ErrLockMismatch, "%s", b.String())
}

func containsPath(diffs []string, p string) bool {
	for _, d := range diffs {
		_, rest, _ := strings.Cut(d, ": ")
		if rest == p || strings.HasPrefix(rest, p+" (") {
			return true
		}
	}
	return false
}

// sameImage reports whether two references name the same image, either
// literally or after normalisation (alpine == docker.io/library/alpine:latest).
func sameImage(a, b string) bool {
	if a == b {
		return true
	}
	ra, err := name.ParseReference(a)
	if err != nil {
		return false
	}
	rb, err := name.ParseReference(b)
	return err == nil && ra.Name() == rb.Name()
}

// Verify checks that the lock's build args are ones a hermetic build takes
// (CheckBuildArgs) and that every image, URL and git repository the
// analysed Dockerfile uses is pinned by the lock. The analysis should come from
// AnalyzeDockerfile with the lock's BuildArgs, Target and Platform. Any
// unpinned input is reported (with its Dockerfile line) in an error wrapping
// ErrNotPinned. What no lock can allow (a BUILDKIT_* build arg, the
// findings CheckHermetic refuses) is refused first, wrapping
// ErrNotHermetic.
func (l *Lock) Verify(a *Analysis) error {
	if l == nil || a == nil {
		return fmt.Errorf("verifying lock: %w: nil lock or analysis", ErrInvalidLock)
	}
	if err := CheckBuildArgs(l.BuildArgs); err != nil {
		return err
	}
	if err := a.CheckHermetic(); err != nil {
		return err
	}
	var problems []string
	for _, use := range a.Images {
		found := false
		for _, im := range l.Images {
			if sameImage(im.Name, use.Name) {
				found = true
				break
			}
		}
		if !found {
			problems = append(problems, fmt.Sprintf("image %s (Dockerfile line %d, %s)", use.Name, use.Line, use.Instruction))
		}
	}
	for _, use := range a.URLs {
		var u *URL
		for i := range l.URLs {
			if l.URLs[i].URL == use.URL {
				u = &l.URLs[i]
				break
			}
		}
		switch {
		case u == nil:
			problems = append(problems, fmt.Sprintf("URL %s (Dockerfile line %d)", use.URL, use.Line))
		case use.Checksum != "" && use.Checksum != u.Digest:
			problems = append(problems, fmt.Sprintf("URL %s (Dockerfile line %d): --checksum %s differs from the locked %s", use.URL, use.Line, use.Checksum, u.Digest))
		}
	}
	for _, use := range a.Git {
		var g *GitSource
		for i := range l.Git {
			if l.Git[i].Remote == use.Remote && l.Git[i].Ref == use.Ref {
				g = &l.Git[i]
				break
			}
		}
		switch {
		case g == nil:
			problems = append(problems, fmt.Sprintf("git repository %s (Dockerfile line %d)", use.URL, use.Line))
		case use.Checksum != "" && !strings.HasPrefix(g.Commit, use.Checksum):
			problems = append(problems, fmt.Sprintf("git repository %s (Dockerfile line %d): checksum %s differs from the locked commit %s", use.URL, use.Line, use.Checksum, g.Commit))
		}
	}
	if len(problems) == 0 {
		return nil
	}
	if len(problems) > maxListed {
		problems = append(problems[:maxListed], fmt.Sprintf("and %d more", len(problems)-maxListed))
	}
	return wrapf(ErrNotPinned, "not pinned by the lock: %s; run `twinforge lock CONTEXT` to update the lock", strings.Join(problems, "; "))
}

// CheckHermetic refuses what a hermetic build cannot grant, whatever the
// lock says: RUN steps with a network or extra privileges, secrets or SSH
// agents from the host, and a "# syntax=" frontend image, which BuildKit
// would resolve before the lock's policy could pin it. Cache mounts are
// allowed: the builder gives every build a cache namespace of its own
// (BUILDKIT_CACHE_MOUNT_NS), so they start empty even on a daemon that has
// built before, a remote one included.
func (a *Analysis) CheckHermetic() error {
	var problems []string
	for _, f := range a.Findings {
		switch {
		case f.Kind == FindingNetwork && f.Value != "none":
			problems = append(problems, fmt.Sprintf("RUN --network=%s (Dockerfile line %d): build steps never get a network", f.Value, f.Line))
		case f.Kind == FindingSecurity && f.Value != "sandbox":
			problems = append(problems, fmt.Sprintf("RUN --security=%s (Dockerfile line %d): build steps never get extra privileges", f.Value, f.Line))
		case f.Kind == FindingMount && (f.Value == "secret" || f.Value == "ssh"):
			problems = append(problems, fmt.Sprintf("RUN --mount=type=%s (Dockerfile line %d): no host secrets or SSH agents are forwarded", f.Value, f.Line))
		case f.Kind == FindingSyntax:
			problems = append(problems, fmt.Sprintf("# syntax=%s (Dockerfile line %d): the built-in Dockerfile frontend is used; remove the directive", f.Value, f.Line))
		}
	}
	if len(problems) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %s", ErrNotHermetic, strings.Join(problems, "; "))
}
