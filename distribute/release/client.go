package release

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/theupdateframework/go-tuf/v2/metadata"
	"github.com/theupdateframework/go-tuf/v2/metadata/config"
	"github.com/theupdateframework/go-tuf/v2/metadata/fetcher"
	"github.com/theupdateframework/go-tuf/v2/metadata/trustedmetadata"
	"github.com/theupdateframework/go-tuf/v2/metadata/updater"

	"github.com/twinforge/twinforge/distribute"
	"github.com/twinforge/twinforge/internal/tuffetch"
)

// OCIScheme prefixes a release repository that is an OCI artifact:
// "oci://REGISTRY/REPOSITORY[:TAG]" (the tag defaults to IndexTag).
const OCIScheme = "oci://"

// maxMetadataBytes bounds one metadata file a reader downloads.
const maxMetadataBytes = 5 << 20

// ClientConfig says where a reader finds a release index and what it
// trusts.
type ClientConfig struct {
	// URL is the release repository: the base URL its metadata is served
	// at ("https://releases.example/repository", where timestamp.json is),
	// or an OCI artifact, "oci://REGISTRY/REPOSITORY[:TAG]", as
	// PushIndex and Replicate write it to each region. Required.
	URL string
	// InitialRoot is the root.json trusted first, given out of band.
	// Required unless StateDir holds a root this reader trusted before;
	// the reader then follows root rotations from the newer of the two.
	InitialRoot []byte
	// StateDir keeps what this reader trusted of this repository (the
	// region's newest root, timestamp and snapshot), so that it refuses
	// older ones later: rollback protection. Keep one per region. The
	// default is <user cache dir>/twinforge/release/<hash of URL>.
	StateDir string
	// HTTPClient fetches metadata over HTTP. The default has a 30 second
	// timeout.
	HTTPClient *http.Client
	// Registry configures how an OCI artifact is read (plain HTTP to
	// loopback, CA, credentials), as for package distribute.
	Registry []distribute.Option
}

// Client reads a release index, verified with go-tuf's client: root
// rotations, timestamp, snapshot and targets in order, each against its
// threshold of signatures, its expiry and the versions this reader
// trusted before; then every team's delegated role. It keeps the last
// index that verified (Current) and is safe for concurrent use.
type Client struct {
	cfg     ClientConfig
	mu      sync.Mutex // one refresh at a time: state on disk
	current atomic.Pointer[Index]
}

// NewClient checks cfg; no request is made before Refresh.
func NewClient(cfg ClientConfig) (*Client, error) {
	if cfg.URL == "" {
		return nil, errors.New("release index: no repository URL")
	}
	if strings.HasPrefix(cfg.URL, OCIScheme) {
		if _, err := ociRef(cfg.URL); err != nil {
			return nil, err
		}
	} else if u, err := url.Parse(cfg.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("release repository %q: want http(s)://HOST/PATH or %sREGISTRY/REPOSITORY[:TAG]", cfg.URL, OCIScheme)
	}
	if cfg.StateDir == "" {
		base, err := os.UserCacheDir()
		if err != nil {
			return nil, fmt.Errorf("choosing a release state directory: %w", err)
		}
		sum := sha256.Sum256([]byte(cfg.URL))
		cfg.StateDir = filepath.Join(base, "twinforge", "release", hex.EncodeToString(sum[:8]))
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 30 * time.Second}
	}
	if len(cfg.InitialRoot) > 0 {
		if _, err := metadata.Root().FromBytes(cfg.InitialRoot); err != nil {
			return nil, fmt.Errorf("initial release root: %w", err)
		}
	}
	return &Client{cfg: cfg}, nil
}

// StateDir is where the client keeps its trusted state.
func (c *Client) StateDir() string { return c.cfg.StateDir }

// Current is the last index that verified, nil before the first Refresh
// that succeeded. An index still expires: Index.Lookup refuses it then.
func (c *Client) Current() *Index { return c.current.Load() }

// Refresh reads the index again and verifies it. On success it becomes
// Current; on failure Current stays what it was, and the error is an
// *Error naming the failed check (stale, rollback, under threshold, ...)
// or wraps ErrUnavailable.
func (c *Client) Refresh(ctx context.Context) (*Index, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ix, _, err := c.refresh(ctx, c.cfg.StateDir, nil)
	if err != nil {
		return nil, fmt.Errorf("release index %s: %w", c.cfg.URL, err)
	}
	c.current.Store(ix)
	return ix, nil
}

// source reads metadata files from the repository.
type source interface {
	fetcher.Fetcher
	base() string
}

func (c *Client) newSource(ctx context.Context) (source, error) {
	if strings.HasPrefix(c.cfg.URL, OCIScheme) {
		ref, err := ociRef(c.cfg.URL)
		if err != nil {
			return nil, err
		}
		files, err := PullIndex(ctx, ref, c.cfg.Registry...)
		if err != nil {
			return nil, err
		}
		return &filesSource{url: c.cfg.URL, files: files}, nil
	}
	return &httpSource{HTTP: tuffetch.HTTP{Ctx: ctx, Client: c.cfg.HTTPClient}, url: c.cfg.URL}, nil
}

// refresh runs the TUF client workflow with the state in stateDir and
// builds the index; record, when set, gets every metadata file that was
// read and verified.
func (c *Client) refresh(ctx context.Context, stateDir string, record map[string][]byte) (*Index, *metadata.Metadata[metadata.RootType], error) {
	src, err := c.newSource(ctx)
	if err != nil {
		return nil, nil, err
	}
	var f fetcher.Fetcher = src
	if record != nil {
		f = &recordingFetcher{inner: src, base: src.base(), files: record}
	}
	metaDir := filepath.Join(stateDir, "metadata")
	trusted := c.cfg.InitialRoot
	if cached, err := os.ReadFile(filepath.Join(metaDir, "root.json")); err == nil && (len(trusted) == 0 || newerRoot(cached, trusted)) {
		trusted = cached
	}
	if len(trusted) == 0 {
		return nil, nil, fmt.Errorf("no trusted root: give the index's root.json (--release-root) the first time a region is read")
	}
	cfg, err := config.New(src.base(), trusted)
	if err != nil {
		return nil, nil, err
	}
	cfg.LocalMetadataDir = metaDir
	cfg.LocalTargetsDir = filepath.Join(stateDir, "targets")
	cfg.Fetcher = f
	cfg.PrefixTargetsWithHash = true
	up, err := updater.New(cfg)
	if err != nil {
		return nil, nil, classify(metadata.ROOT, err)
	}
	if err := up.Refresh(); err != nil {
		return nil, nil, classify(failedRole(err), err)
	}
	set := up.GetTrustedMetadataSet()
	ix := &Index{
		URL:              c.cfg.URL,
		RootVersion:      set.Root.Signed.Version,
		TimestampVersion: set.Timestamp.Signed.Version,
		SnapshotVersion:  set.Snapshot.Signed.Version,
		top:              map[string]*Target{},
	}
	ix.expires = earliest(set.Root.Signed.Expires, set.Timestamp.Signed.Expires, set.Snapshot.Signed.Expires, set.Targets[metadata.TARGETS].Signed.Expires)
	top := set.Targets[metadata.TARGETS]
	for path, tf := range top.Signed.Targets {
		t, err := targetFrom(path, metadata.TARGETS, tf)
		if err != nil {
			return nil, nil, refusef(CheckIntegrity, metadata.TARGETS, "%v", err)
		}
		ix.top[path] = t
	}
	if d := top.Signed.Delegations; d != nil {
		if d.SuccinctRoles != nil {
			return nil, nil, refusef(CheckDelegation, metadata.TARGETS, "succinct hash-bin delegations are not used by release indexes")
		}
		for _, role := range d.Roles {
			ix.teams = append(ix.teams, loadTeam(&set, f, src.base(), role))
		}
	}
	for _, t := range ix.teams {
		if t.err == nil && !t.expires.IsZero() {
			ix.expires = earliest(ix.expires, t.expires)
		}
	}
	return ix, set.Root, nil
}

// loadTeam fetches and verifies one team's role, as go-tuf's updater does
// for delegated roles (length and hashes from the snapshot, the team's
// threshold of its delegated keys, version, expiry). A role that fails is
// kept with its error: it refuses the paths it covers, no others.
func loadTeam(set *trustedmetadata.TrustedMetadata, f fetcher.Fetcher, base string, role metadata.DelegatedRole) *teamIndex {
	t := &teamIndex{name: role.Name, role: role, targets: map[string]*Target{}}
	if len(role.KeyIDs) < role.Threshold || len(role.KeyIDs) == 0 {
		t.err = refusef(CheckThreshold, role.Name, "team %s has %d keys for a threshold of %d (a key was revoked): its releases are refused until it signs them with new keys", role.Name, len(role.KeyIDs), role.Threshold)
		return t
	}
	mf, ok := set.Snapshot.Signed.Meta[role.Name+".json"]
	if !ok {
		return t // nothing released yet
	}
	length := mf.Length
	if length <= 0 || length > maxMetadataBytes {
		length = maxMetadataBytes
	}
	u := strings.TrimSuffix(base, "/") + "/" + fmt.Sprintf("%d.%s.json", mf.Version, url.PathEscape(role.Name))
	data, err := f.DownloadFile(u, length, 0)
	if err != nil {
		t.err = classify(role.Name, err)
		return t
	}
	md, err := set.UpdateDelegatedTargets(data, role.Name, metadata.TARGETS)
	if err != nil {
		t.err = classify(role.Name, err)
		return t
	}
	t.expires = md.Signed.Expires
	for path, tf := range md.Signed.Targets {
		if ok, _ := role.IsDelegatedPath(path); !ok {
			t.outside = append(t.outside, path)
		}
		tg, err := targetFrom(path, role.Name, tf)
		if err != nil {
			t.err = refusef(CheckIntegrity, role.Name, "%v", err)
			return t
		}
		t.targets[path] = tg
	}
	sort.Strings(t.outside)
	return t
}

// failedRole guesses the role a go-tuf Refresh error is about, for the
// message: go-tuf's errors name it only in their text.
func failedRole(err error) string {
	msg := err.Error()
	for _, role := range []string{metadata.TIMESTAMP, metadata.SNAPSHOT, metadata.TARGETS, metadata.ROOT} {
		if strings.Contains(msg, role) {
			return role
		}
	}
	return ""
}

func earliest(ts ...time.Time) time.Time {
	var out time.Time
	for _, t := range ts {
		if out.IsZero() || t.Before(out) {
			out = t
		}
	}
	return out
}

// newerRoot reports whether candidate is a root of a higher version than
// current.
func newerRoot(candidate, current []byte) bool {
	c, err := metadata.Root().FromBytes(candidate)
	if err != nil {
		return false
	}
	cur, err := metadata.Root().FromBytes(current)
	if err != nil {
		return false
	}
	return c.Signed.Version > cur.Signed.Version
}

// ociRef parses "oci://REGISTRY/REPOSITORY[:TAG]".
func ociRef(s string) (name.Tag, error) {
	rest := strings.TrimPrefix(s, OCIScheme)
	ref, err := name.ParseReference(rest, name.WithDefaultTag(IndexTag))
	if err != nil {
		return name.Tag{}, fmt.Errorf("release repository %q: %v", s, err)
	}
	tag, ok := ref.(name.Tag)
	if !ok {
		return name.Tag{}, fmt.Errorf("release repository %q: name the index by tag, not digest: it moves with every release", s)
	}
	return tag, nil
}

// httpSource reads metadata over HTTP(S), bound to one refresh's context.
type httpSource struct {
	tuffetch.HTTP
	url string
}

func (s *httpSource) base() string { return strings.TrimSuffix(s.url, "/") }

// filesSource serves the files of an index artifact.
type filesSource struct {
	url   string
	files map[string][]byte
}

var _ fetcher.Fetcher = (*filesSource)(nil)

func (s *filesSource) base() string { return strings.TrimSuffix(s.url, "/") }

func (s *filesSource) DownloadFile(u string, maxLength int64, _ time.Duration) ([]byte, error) {
	name, err := url.PathUnescape(strings.TrimPrefix(u, s.base()+"/"))
	if err != nil {
		return nil, err
	}
	data, ok := s.files[name]
	if !ok {
		return nil, &metadata.ErrDownloadHTTP{StatusCode: http.StatusNotFound, URL: u}
	}
	if int64(len(data)) > maxLength {
		return nil, &metadata.ErrDownloadLengthMismatch{Msg: fmt.Sprintf("%s is longer than %d bytes", name, maxLength)}
	}
	return data, nil
}

// recordingFetcher keeps what it fetched, by file name.
type recordingFetcher struct {
	inner fetcher.Fetcher
	base  string
	files map[string][]byte
}

func (f *recordingFetcher) DownloadFile(u string, maxLength int64, timeout time.Duration) ([]byte, error) {
	data, err := f.inner.DownloadFile(u, maxLength, timeout)
	if err == nil {
		name, _ := url.PathUnescape(strings.TrimPrefix(u, strings.TrimSuffix(f.base, "/")+"/"))
		f.files[name] = data
	}
	return data, err
}

// ReaderSettings say where a reader finds a release index, as the flags
// --release-repo, --release-root and --release-state of twinforge's
// reading commands set them.
type ReaderSettings struct {
	// URL (release-repo) is ClientConfig.URL; empty reads no index.
	URL string
	// RootFile (release-root) holds ClientConfig.InitialRoot.
	RootFile string
	// StateDir (release-state) is ClientConfig.StateDir.
	StateDir string
}

// Config is the configuration of a Client that reads the index s names
// through registry, or nil when s names none. The files s names are read
// now; errors wrap ErrInvalidSetting.
func (s ReaderSettings) Config(registry []distribute.Option) (*ClientConfig, error) {
	if s.URL == "" {
		if s.RootFile != "" || s.StateDir != "" {
			return nil, settingErrorf("release-root", " and --release-state go with --release-repo")
		}
		return nil, nil
	}
	cfg := &ClientConfig{URL: s.URL, StateDir: s.StateDir, Registry: registry}
	if s.RootFile != "" {
		data, err := os.ReadFile(s.RootFile)
		if err != nil {
			return nil, settingErrorf("release-root", ": %w", err)
		}
		cfg.InitialRoot = data
	}
	return cfg, nil
}
