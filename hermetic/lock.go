package hermetic

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	"golang.org/x/mod/module"

	"github.com/twinforge/twinforge/hermetic/gomod"
)

// SchemaVersion is the only lock schema version this package reads and writes.
const SchemaVersion = 1

// DefaultFileName is the name of the lock file, normally at the context root.
const DefaultFileName = "twinforge.lock"

// Source kinds.
const (
	SourceKindGit  = "git"
	SourceKindTree = "tree"
)

// Location prefixes of [Image.Location].
const (
	LocationOCILayout = "oci-layout:"
	LocationRegistry  = "registry:"
)

var (
	// ErrUnsupportedSchema is returned when a lock has a schemaVersion this
	// package does not understand.
	ErrUnsupportedSchema = errors.New("unsupported lock schema version")
	// ErrInvalidLock is returned when a lock is syntactically or semantically
	// invalid.
	ErrInvalidLock = errors.New("invalid lock")
	// ErrDirtyTree is returned by Create when the git work tree has
	// uncommitted changes and AllowDirty is not set.
	ErrDirtyTree = errors.New("git work tree is dirty")
	// ErrImageNotFound is returned by Create when a base image can be neither
	// mapped to an OCI layout nor resolved in a registry.
	ErrImageNotFound = errors.New("base image not found")
	// ErrLockMismatch is returned by Check when the tree differs from the lock.
	ErrLockMismatch = errors.New("tree does not match lock")
	// ErrNotPinned is returned by Verify when the Dockerfile uses an input the
	// lock does not pin.
	ErrNotPinned = errors.New("input not pinned by lock")
	// ErrNotHermetic is returned when the Dockerfile asks for something a
	// hermetic build cannot grant: network, privileges, host secrets or SSH
	// agents, or a frontend image resolved outside the lock.
	ErrNotHermetic = errors.New("Dockerfile is not hermetic")
)

// Lock is the content of a twinforge.lock file.
type Lock struct {
	SchemaVersion int               `json:"schemaVersion"`
	Source        Source            `json:"source"`
	Dockerfile    File              `json:"dockerfile"` // Path relative to context (slash), Digest of its bytes
	BuildArgs     map[string]string `json:"buildArgs,omitempty"`
	Target        string            `json:"target,omitempty"`
	Platform      string            `json:"platform"`         // e.g. "linux/amd64"
	Images        []Image           `json:"images,omitempty"` // sorted by Name
	URLs          []URL             `json:"urls,omitempty"`   // sorted by URL
	Git           []GitSource       `json:"git,omitempty"`    // sorted by Remote+Ref
	// Files lists every entry of the build context that is sent to BuildKit
	// (directories, regular files and symlinks), sorted by Path. Its
	// canonical hash is Source.Digest; it lets Check name what changed.
	Files           []File `json:"files,omitempty"`
	SourceDateEpoch int64  `json:"sourceDateEpoch"`
	BuildKitVersion string `json:"buildkitVersion"`
	// GoModules lists every module version the context's go.sum files pin
	// (those sent to BuildKit), with their hashes and, when vendored, the
	// hash of the vendored files; sorted by go.sum, path and version.
	GoModules []gomod.Module `json:"goModules,omitempty"`
	// GoSumDB records the Go checksum database tree head the modules were
	// last proven in (lock --verify-modules); the next proof must be
	// consistent with it.
	GoSumDB *GoSumDB `json:"goSumDB,omitempty"`
}

// GoSumDB is the state of the Go checksum database a lock's modules were
// proven against.
type GoSumDB struct {
	// Name is the database's name, e.g. sum.golang.org.
	Name string `json:"name"`
	// TreeSize and TreeHash identify the tree the records are included in.
	TreeSize int64  `json:"treeSize"`
	TreeHash string `json:"treeHash"`
	// TreeHead is the database's signed tree head (a signed note).
	TreeHead string `json:"treeHead"`
}

// Source describes where the build context comes from.
type Source struct {
	// Kind is "git" or "tree".
	Kind       string `json:"kind"`
	Repository string `json:"repository,omitempty"` // git: remote "origin" URL if any
	Commit     string `json:"commit,omitempty"`     // git: HEAD commit
	Tree       string `json:"tree,omitempty"`       // git: tree hash of the context directory at HEAD
	Ref        string `json:"ref,omitempty"`        // git: symbolic ref if on a branch (refs/heads/main)
	Dirty      bool   `json:"dirty,omitempty"`      // only when AllowDirty was used and the tree was dirty
	Digest     string `json:"digest"`               // content digest of the context; what Check compares
}

// File is one file of the context (or the Dockerfile).
//
// Digest is "sha256:<hex>" of the content for regular files,
// "symlink:<target>" for symbolic links and "directory" for directories.
// Mode is the octal permission bits (including setuid/setgid/sticky), e.g.
// "0755"; it is empty for the Lock.Dockerfile entry.
type File struct {
	Path   string `json:"path"`
	Digest string `json:"digest"`
	Mode   string `json:"mode,omitempty"`
}

// Image is a pinned container image.
type Image struct {
	Name     string `json:"name"`     // as written in FROM after ARG expansion
	Digest   string `json:"digest"`   // manifest (or index) digest
	Location string `json:"location"` // "oci-layout:<path relative to the lock dir>" or "registry:<name@digest>"
}

// URL is a pinned remote file (ADD <url>).
type URL struct {
	URL    string `json:"url"`
	Digest string `json:"digest"` // sha256 of the content
}

// GitSource is a pinned remote git repository (ADD <git url>).
type GitSource struct {
	Remote string `json:"remote"`
	Ref    string `json:"ref,omitempty"`
	Commit string `json:"commit"`
}

const (
	digestDirectory = "directory"
	prefixSymlink   = "symlink:"
	prefixSHA256    = "sha256:"
)

// Parse decodes and validates a lock. Unknown fields are rejected.
func Parse(data []byte) (*Lock, error) {
	// Read the schema version first so that a future lock with new fields
	// reports "unsupported schema" rather than "unknown field".
	var probe struct {
		SchemaVersion *int `json:"schemaVersion"`
	}
	if err := json.Unmarshal(data, &probe); err == nil && probe.SchemaVersion != nil && *probe.SchemaVersion != SchemaVersion {
		return nil, fmt.Errorf("%w: schemaVersion %d (supported: %d)", ErrUnsupportedSchema, *probe.SchemaVersion, SchemaVersion)
	}

	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var l Lock
	if err := dec.Decode(&l); err != nil {
		return nil, decodeError(data, dec, err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		line, col := lineCol(data, dec.InputOffset())
		return nil, fmt.Errorf("%w: line %d:%d: unexpected data after the lock object", ErrInvalidLock, line, col)
	}
	if err := l.validate(); err != nil {
		return nil, err
	}
	return &l, nil
}

func decodeError(data []byte, dec *json.Decoder, err error) error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		line, col := lineCol(data, syn.Offset)
		return fmt.Errorf("%w: line %d:%d: %v", ErrInvalidLock, line, col, err)
	case errors.As(err, &typ):
		line, col := lineCol(data, typ.Offset)
		field := typ.Field
		if field == "" {
			field = "(top level)"
		}
		return fmt.Errorf("%w: line %d:%d: field %s: cannot use JSON %s as %s", ErrInvalidLock, line, col, field, typ.Value, typ.Type)
	case errors.Is(err, io.EOF):
		return fmt.Errorf("%w: empty lock file", ErrInvalidLock)
	case errors.Is(err, io.ErrUnexpectedEOF):
		line, col := lineCol(data, int64(len(data)))
		return fmt.Errorf("%w: line %d:%d: unexpected end of JSON", ErrInvalidLock, line, col)
	default:
		// Unknown fields carry no offset: locate the first such key.
		off := dec.InputOffset()
		if m := unknownFieldRe.FindStringSubmatch(err.Error()); m != nil {
			if loc := regexp.MustCompile(`"` + regexp.QuoteMeta(m[1]) + `"\s*:`).FindIndex(data); loc != nil {
				off = int64(loc[0])
			}
		}
		line, col := lineCol(data, off)
		return fmt.Errorf("%w: line %d:%d: %v", ErrInvalidLock, line, col, err)
	}
}

var unknownFieldRe = regexp.MustCompile(`unknown field "([^"]*)"`)

// lineCol converts a byte offset into 1-based line and column numbers.
func lineCol(data []byte, off int64) (int, int) {
	if off < 0 {
		off = 0
	}
	if off > int64(len(data)) {
		off = int64(len(data))
	}
	before := data[:off]
	line := bytes.Count(before, []byte("\n")) + 1
	col := int(off) - (bytes.LastIndexByte(before, '\n') + 1) + 1
	return line, col
}

// Load reads and parses the lock file at path.
func Load(path string) (*Lock, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("reading lock %s: %w (run `twinforge lock CONTEXT` to create it)", path, err)
		}
		return nil, fmt.Errorf("reading lock %s: %w", path, err)
	}
	l, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return l, nil
}

// Marshal validates the lock and encodes it deterministically: slices
// sorted, two-space indentation, trailing newline.
func (l *Lock) Marshal() ([]byte, error) {
	if l == nil {
		return nil, fmt.Errorf("marshalling lock: %w: nil lock", ErrInvalidLock)
	}
	c := *l
	c.Images = slices.Clone(l.Images)
	c.URLs = slices.Clone(l.URLs)
	c.Git = slices.Clone(l.Git)
	c.Files = slices.Clone(l.Files)
	c.GoModules = slices.Clone(l.GoModules)
	c.sortSlices()
	if len(c.BuildArgs) == 0 {
		c.BuildArgs = nil
	}
	if err := c.validate(); err != nil {
		return nil, fmt.Errorf("marshalling lock: %w", err)
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(&c); err != nil {
		return nil, fmt.Errorf("marshalling lock: %w", err)
	}
	return buf.Bytes(), nil
}

func (l *Lock) sortSlices() {
	slices.SortFunc(l.Images, func(a, b Image) int { return strings.Compare(a.Name, b.Name) })
	slices.SortFunc(l.URLs, func(a, b URL) int { return strings.Compare(a.URL, b.URL) })
	slices.SortFunc(l.Git, func(a, b GitSource) int {
		if c := strings.Compare(a.Remote, b.Remote); c != 0 {
			return c
		}
		return strings.Compare(a.Ref, b.Ref)
	})
	slices.SortFunc(l.Files, func(a, b File) int { return strings.Compare(a.Path, b.Path) })
	slices.SortFunc(l.GoModules, func(a, b gomod.Module) int {
		if c := strings.Compare(a.GoSum, b.GoSum); c != 0 {
			return c
		}
		if c := strings.Compare(a.Path, b.Path); c != 0 {
			return c
		}
		return strings.Compare(a.Version, b.Version)
	})
}

// sentinelError reads as its own message but matches a sentinel with
// errors.Is, so messages need not repeat the sentinel's text.
type sentinelError struct {
	msg      string
	sentinel error
}

func (e *sentinelError) Error() string { return e.msg }
func (e *sentinelError) Unwrap() error { return e.sentinel }

func wrapf(sentinel error, format string, args ...any) error {
	return &sentinelError{msg: fmt.Sprintf(format, args...), sentinel: sentinel}
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidLock, fmt.Sprintf(format, args...))
}

func (l *Lock) validate() error {
	if l.SchemaVersion != SchemaVersion {
		if l.SchemaVersion == 0 {
			return invalid("field schemaVersion is missing")
		}
		return fmt.Errorf("%w: schemaVersion %d (supported: %d)", ErrUnsupportedSchema, l.SchemaVersion, SchemaVersion)
	}
	if err := validateSource(&l.Source); err != nil {
		return err
	}
	if err := validateRelPath(l.Dockerfile.Path); err != nil {
		return invalid("field dockerfile.path: %v", err)
	}
	if !validSHA256(l.Dockerfile.Digest) {
		return invalid("field dockerfile.digest %q: want sha256:<64 lowercase hex>", l.Dockerfile.Digest)
	}
	for k := range l.BuildArgs {
		if k == "" || strings.ContainsAny(k, "= \t\n") {
			return invalid("field buildArgs: invalid name %q", k)
		}
	}
	if err := validatePlatform(l.Platform); err != nil {
		return invalid("field platform: %v", err)
	}
	if l.SourceDateEpoch < 0 {
		return invalid("field sourceDateEpoch: negative value %d", l.SourceDateEpoch)
	}
	seen := map[string]bool{}
	for i, im := range l.Images {
		if im.Name == "" {
			return invalid("field images[%d].name is empty", i)
		}
		if _, err := name.ParseReference(im.Name); err != nil {
			return invalid("field images[%d].name %q: %v", i, im.Name, err)
		}
		if im.Digest == "" {
			return invalid("image %q is an unpinned reference: field images[%d].digest is empty", im.Name, i)
		}
		if !validSHA256(im.Digest) {
			return invalid("image %q: field images[%d].digest %q: want sha256:<64 lowercase hex>", im.Name, i, im.Digest)
		}
		switch {
		case strings.HasPrefix(im.Location, LocationOCILayout):
			p := strings.TrimPrefix(im.Location, LocationOCILayout)
			if p == "" || strings.Contains(p, "\\") {
				return invalid("image %q: field images[%d].location %q: want oci-layout:<slash-separated path>", im.Name, i, im.Location)
			}
		case strings.HasPrefix(im.Location, LocationRegistry):
			d, err := name.NewDigest(strings.TrimPrefix(im.Location, LocationRegistry))
			if err != nil {
				return invalid("image %q: field images[%d].location %q: %v", im.Name, i, im.Location, err)
			}
			if d.DigestStr() != im.Digest {
				return invalid("image %q: field images[%d].location %q does not carry digest %s", im.Name, i, im.Location, im.Digest)
			}
		default:
			return invalid("image %q: field images[%d].location %q: want oci-layout:PATH or registry:NAME@DIGEST", im.Name, i, im.Location)
		}
		if seen[im.Name] {
			return invalid("image %q is listed twice", im.Name)
		}
		seen[im.Name] = true
	}
	seen = map[string]bool{}
	for i, u := range l.URLs {
		pu, err := url.Parse(u.URL)
		if err != nil || (pu.Scheme != "http" && pu.Scheme != "https") || pu.Host == "" {
			return invalid("field urls[%d].url %q: want an absolute http(s) URL", i, u.URL)
		}
		if !validSHA256(u.Digest) {
			return invalid("URL %s is not pinned: field urls[%d].digest %q: want sha256:<64 lowercase hex>", u.URL, i, u.Digest)
		}
		if seen[u.URL] {
			return invalid("URL %s is listed twice", u.URL)
		}
		seen[u.URL] = true
	}
	seen = map[string]bool{}
	for i, g := range l.Git {
		if g.Remote == "" {
			return invalid("field git[%d].remote is empty", i)
		}
		if !validCommit(g.Commit) {
			return invalid("git source %s#%s is not pinned: field git[%d].commit %q: want a full hex commit hash", g.Remote, g.Ref, i, g.Commit)
		}
		k := g.Remote + "#" + g.Ref
		if seen[k] {
			return invalid("git source %s is listed twice", k)
		}
		seen[k] = true
	}
	seen = map[string]bool{}
	for i, m := range l.GoModules {
		if err := module.Check(m.Path, m.Version); err != nil {
			return invalid("field goModules[%d]: %v", i, err)
		}
		if m.Sum == "" && m.GoModSum == "" {
			return invalid("Go module %s: field goModules[%d] has no hash", m, i)
		}
		for _, h := range []string{m.Sum, m.GoModSum, m.Vendored} {
			if h != "" && !strings.HasPrefix(h, "h1:") {
				return invalid("Go module %s: field goModules[%d]: hash %q: want h1:<base64>", m, i, h)
			}
		}
		if m.Vendored != "" && m.Sum == "" {
			return invalid("Go module %s: field goModules[%d] is vendored but has no module hash", m, i)
		}
		if err := validateRelPath(m.GoSum); err != nil || path.Base(m.GoSum) != "go.sum" {
			return invalid("Go module %s: field goModules[%d].goSum %q: want the path of a go.sum in the context", m, i, m.GoSum)
		}
		k := m.GoSum + " " + m.String()
		if seen[k] {
			return invalid("Go module %s is listed twice for %s", m, m.GoSum)
		}
		seen[k] = true
	}
	if db := l.GoSumDB; db != nil && (db.Name == "" || db.TreeHead == "" || db.TreeSize < 1) {
		return invalid("field goSumDB: want name, treeSize and treeHead of the checksum database")
	}
	if len(l.Files) > 0 {
		for i, f := range l.Files {
			if err := validateRelPath(f.Path); err != nil {
				return invalid("field files[%d].path: %v", i, err)
			}
			if i > 0 && l.Files[i-1].Path >= f.Path {
				return invalid("field files[%d].path %q: files must be sorted and unique", i, f.Path)
			}
			switch {
			case f.Digest == digestDirectory, validSHA256(f.Digest):
			case strings.HasPrefix(f.Digest, prefixSymlink) && len(f.Digest) > len(prefixSymlink):
			default:
				return invalid("field files[%d].digest %q (%s): want sha256:<hex>, symlink:<target> or directory", i, f.Digest, f.Path)
			}
			if m, err := strconv.ParseUint(f.Mode, 8, 32); err != nil || m > 0o7777 {
				return invalid("field files[%d].mode %q (%s): want octal permission bits", i, f.Mode, f.Path)
			}
		}
		if d := filesDigest(l.Files); d != l.Source.Digest {
			return invalid("field source.digest %s does not match the files listed in the lock (%s); the lock was edited by hand", l.Source.Digest, d)
		}
	}
	return nil
}

func validateSource(s *Source) error {
	if !validSHA256(s.Digest) {
		return invalid("field source.digest %q: want sha256:<64 lowercase hex>", s.Digest)
	}
	switch s.Kind {
	case SourceKindGit:
		if !validCommit(s.Commit) {
			return invalid("field source.commit %q: want a full hex commit hash", s.Commit)
		}
		if !validCommit(s.Tree) {
			return invalid("field source.tree %q: want a full hex tree hash", s.Tree)
		}
		if s.Ref != "" && !strings.HasPrefix(s.Ref, "refs/") {
			return invalid("field source.ref %q: want a full ref name (refs/...)", s.Ref)
		}
	case SourceKindTree:
		if s.Commit != "" || s.Tree != "" || s.Ref != "" || s.Repository != "" || s.Dirty {
			return invalid("field source: git fields set on a source of kind %q", s.Kind)
		}
	case "":
		return invalid("field source.kind is missing")
	default:
		return invalid("field source.kind %q: want %q or %q", s.Kind, SourceKindGit, SourceKindTree)
	}
	return nil
}

func validatePlatform(p string) error {
	parts := strings.Split(p, "/")
	if p == "" {
		return errors.New("missing (want os/arch[/variant], e.g. linux/amd64)")
	}
	if len(parts) < 2 || len(parts) > 3 || slices.Contains(parts, "") {
		return fmt.Errorf("%q: want os/arch[/variant], e.g. linux/amd64", p)
	}
	return nil
}

func validateRelPath(p string) error {
	switch {
	case p == "":
		return errors.New("empty path")
	case strings.Contains(p, "\\"):
		return fmt.Errorf("%q: want a slash-separated path", p)
	case path.IsAbs(p):
		return fmt.Errorf("%q: want a path relative to the context", p)
	case path.Clean(p) != p || p == "." || p == ".." || strings.HasPrefix(p, "../"):
		return fmt.Errorf("%q: want a clean path inside the context", p)
	}
	return nil
}

func isLowerHex(s string) bool {
	for _, c := range s {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

func validSHA256(d string) bool {
	h, ok := strings.CutPrefix(d, prefixSHA256)
	return ok && len(h) == 64 && isLowerHex(h)
}

// validCommit accepts SHA-1 (40) and SHA-256 (64) git object names.
func validCommit(c string) bool {
	return (len(c) == 40 || len(c) == 64) && isLowerHex(c)
}

func sha256Digest(b []byte) string {
	s := sha256.Sum256(b)
	return prefixSHA256 + hex.EncodeToString(s[:])
}
