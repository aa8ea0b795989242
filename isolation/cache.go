package isolation

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"time"
)

// Cache states, as Info.Cache.State reports them.
const (
	// CacheCold: the daemon started from nothing; no step could be
	// reused.
	CacheCold = "cold"
	// CacheWarm: the daemon started on the state an earlier daemon of the
	// same name and scope left; steps it built may be reused.
	CacheWarm = "warm"
	// CacheRemote: a remote daemon's own cache, which twinforge neither
	// keeps nor checks; steps may be reused from it.
	CacheRemote = "remote"
)

// CacheInfo says what a daemon's persistent cache held when it started.
type CacheInfo struct {
	// Scope is the tenant the cache belongs to (WithCache).
	Scope string `json:"scope"`
	// State is CacheCold or CacheWarm.
	State string `json:"state"`
	// Dir is the BuildKit root kept between runs; empty when the daemon
	// ran on a temporary root instead (Reset says why).
	Dir string `json:"dir,omitempty"`
	// Reset says why a cache that was there was not used: corrupted (and
	// discarded), or held by another build. Empty when nothing happened
	// to it.
	Reset string `json:"reset,omitempty"`
}

// WithCache keeps the daemon's BuildKit state (content store, snapshots,
// cache mounts: everything its steps could be reused from) between runs,
// in a directory of its own for this scope and this daemon's name:
// DIR/cache/<scope>/<name>, under the state directory. Two daemons of
// different names (a build and its rebuild) or different scopes (tenants)
// never share one, and only one daemon at a time uses each.
//
// Before the daemon starts, every blob of the content store is checked
// against its digest. A cache that fails the check, or that buildkitd will
// not start on, is discarded and the daemon starts cold; Info().Cache.Reset
// says so. A cache held by another running daemon is left to it and this
// daemon starts cold on a temporary root.
//
// The default is no cache: every daemon starts from nothing and its state
// is removed when it stops.
func WithCache(scope string) Option {
	return func(o *options) error {
		if strings.TrimSpace(scope) == "" {
			return errors.New("cache scope: empty; name the tenant, e.g. the source repository")
		}
		o.cacheScope = scope
		return nil
	}
}

// CacheDir is the directory a daemon named name keeps its cache in for
// scope, under stateDir.
func CacheDir(stateDir, scope, name string) string {
	return filepath.Join(stateDir, "cache", scopeKey(scope), name)
}

var unsafeScopeChars = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// scopeKey turns a scope (a repository URL, a tenant name) into one path
// element: a readable prefix and a hash, so that scopes that read alike
// never share a directory.
func scopeKey(scope string) string {
	sum := sha256.Sum256([]byte(scope))
	readable := strings.Trim(unsafeScopeChars.ReplaceAllString(scope, "_"), "_.")
	if len(readable) > 40 {
		readable = readable[len(readable)-40:]
	}
	if readable == "" {
		readable = "scope"
	}
	return readable + "-" + hex.EncodeToString(sum[:6])
}

// openCache takes the cache directory for the daemon being started. It
// returns the BuildKit root to use and the lock to hold while the daemon
// runs; root is "" when the cache was busy (info says so).
func openCache(o *options) (root string, lock *os.File, info *CacheInfo, err error) {
	dir := CacheDir(o.stateDir, o.cacheScope, o.name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", nil, nil, fmt.Errorf("creating cache directory: %w", err)
	}
	info = &CacheInfo{Scope: o.cacheScope, State: CacheCold, Dir: dir}
	lock, err = os.OpenFile(filepath.Join(dir, lockFile), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return "", nil, nil, fmt.Errorf("locking cache %s: %w", dir, err)
	}
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		lock.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			info.Dir = ""
			info.Reset = "in use by another build; this one ran cold"
			o.logger.Warn("cache in use by another build: starting cold", "name", o.name, "cache", dir)
			return "", nil, info, nil
		}
		return "", nil, nil, fmt.Errorf("locking cache %s: %w", dir, err)
	}
	root = filepath.Join(dir, "root")
	// What a crashed run left mounted there goes first.
	_ = unmountBelow(root)
	_ = detach(root)
	return root, lock, info, nil
}

// cacheImage is the XFS image of a cache kept on a file system of its own.
func cacheImage(cacheDir string) string { return filepath.Join(cacheDir, "root.img") }

// hasState reports whether a BuildKit root holds a worker's state.
func hasState(root string) bool {
	m, _ := filepath.Glob(filepath.Join(root, "runc-*"))
	return len(m) > 0
}

// checkCache decides whether the daemon starts warm: its root holds an
// earlier daemon's state and every blob of it matches its digest. A
// corrupted cache is discarded.
func (d *localDaemon) checkCache() error {
	if !hasState(d.root) {
		return nil
	}
	start := time.Now()
	if verr := verifyContent(d.root); verr != nil {
		d.cache.Reset = fmt.Sprintf("discarded: %v", verr)
		d.opts.logger.Warn("cache corrupted: discarding it and starting cold", "name", d.opts.name, "cache", d.cache.Dir, "err", verr)
		if err := d.resetCache(); err != nil {
			return fmt.Errorf("discarding corrupted cache %s: %w", d.cache.Dir, err)
		}
		return nil
	}
	d.cache.State = CacheWarm
	d.opts.logger.Debug("cache verified", "name", d.opts.name, "cache", d.cache.Dir, "took", time.Since(start))
	return nil
}

// resetCache empties the cache: its image made anew, or its root removed.
func (d *localDaemon) resetCache() error {
	if d.unmountRoot != nil && d.rootImage != "" {
		if err := d.unmountRoot(); err != nil {
			return err
		}
		d.unmountRoot = nil
		if err := os.Remove(d.rootImage); err != nil {
			return err
		}
		unmount, err := mountImage(d.rootImage, d.root)
		if err != nil {
			return err
		}
		d.unmountRoot = unmount
		return nil
	}
	if err := discard(d.root); err != nil {
		return err
	}
	return os.MkdirAll(d.root, 0o700)
}

// verifyContent checks every blob of every worker's content store under
// a BuildKit root against the digest it is filed under. Snapshots are
// what steps ran on and cannot be checked this way; a snapshot altered on
// one side changes that side's image only, which the rebuild's comparison
// then refuses.
func verifyContent(root string) error {
	stores, err := filepath.Glob(filepath.Join(root, "*", "content", "blobs", "sha256"))
	if err != nil {
		return err
	}
	for _, dir := range stores {
		entries, err := os.ReadDir(dir)
		if err != nil {
			return fmt.Errorf("reading content store %s: %w", dir, err)
		}
		for _, e := range entries {
			if !e.Type().IsRegular() {
				continue
			}
			if err := verifyBlob(filepath.Join(dir, e.Name()), e.Name()); err != nil {
				return err
			}
		}
	}
	return nil
}

func verifyBlob(path, want string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("reading blob sha256:%s: %w", want, err)
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return fmt.Errorf("reading blob sha256:%s: %w", want, err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != want {
		return fmt.Errorf("blob sha256:%.12s… (%d bytes) does not match its digest: truncated or altered", want, n)
	}
	return nil
}

// discard moves a cache root out of the way and removes it, unmounting
// whatever a crashed daemon left mounted in it.
func discard(root string) error {
	aside := root + ".discarded-" + time.Now().UTC().Format("20060102T150405.000000000")
	if err := os.Rename(root, aside); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return removeAll(aside)
}
