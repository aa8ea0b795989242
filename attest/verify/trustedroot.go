package verify

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
	"time"

	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore-go/pkg/tuf"
	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/twinforge/twinforge/internal/tuffetch"
)

// TrustedRootTarget is the TUF target holding a Sigstore trusted root.
const TrustedRootTarget = "trusted_root.json"

// LoadTrustedRoot reads a Sigstore trusted root (trusted_root.json: the
// Fulcio CAs, timestamp authorities, Rekor logs and CT logs to trust).
func LoadTrustedRoot(path string) (*root.TrustedRoot, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading trusted root: %w", err)
	}
	tr, err := root.NewTrustedRootFromJSON(data)
	if err != nil {
		return nil, fmt.Errorf("trusted root %s: %w", path, err)
	}
	return tr, nil
}

// TUFConfig locates a TUF repository that distributes a trusted root.
type TUFConfig struct {
	// MetadataURL is the repository's metadata base URL (where 1.root.json
	// and timestamp.json are). Required.
	MetadataURL string
	// CacheDir keeps the verified metadata and targets between runs, in
	// the subdirectory sigstore-go's TUF client names after MetadataURL.
	// The default is <user cache dir>/twinforge/tuf/<hash of MetadataURL>.
	CacheDir string
	// InitialRoot is the root.json the client trusts first (shipped out of
	// band). Required. A newer root already verified into CacheDir is used
	// in its place; the client then follows root rotations from there.
	InitialRoot []byte
	// Target is the target file to fetch. The default is TrustedRootTarget.
	Target string
	// HTTPClient fetches metadata and targets. The default is a client with
	// a 30 second timeout.
	HTTPClient *http.Client
}

// TrustedRootFromTUF updates the TUF metadata from cfg's repository (root
// rotations, timestamp, snapshot, targets, each verified by the roles the
// previous trusted root names) and returns the trusted root target it
// then downloads and checks against the targets metadata.
func TrustedRootFromTUF(ctx context.Context, cfg TUFConfig) (*root.TrustedRoot, error) {
	data, err := fetchTUFTarget(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("getting trusted root from TUF repository %s: %w", cfg.MetadataURL, err)
	}
	tr, err := root.NewTrustedRootFromJSON(data)
	if err != nil {
		return nil, fmt.Errorf("trusted root from TUF repository %s: %w", cfg.MetadataURL, err)
	}
	return tr, nil
}

func fetchTUFTarget(ctx context.Context, cfg TUFConfig) ([]byte, error) {
	if cfg.MetadataURL == "" {
		return nil, errors.New("no metadata URL")
	}
	if _, err := url.Parse(cfg.MetadataURL); err != nil {
		return nil, fmt.Errorf("metadata URL: %w", err)
	}
	if len(cfg.InitialRoot) == 0 {
		return nil, errors.New("no initial root.json: TUF needs a root of trust given out of band")
	}
	if cfg.Target == "" {
		cfg.Target = TrustedRootTarget
	}
	if cfg.CacheDir == "" {
		base, err := os.UserCacheDir()
		if err != nil {
			return nil, fmt.Errorf("choosing a TUF cache directory: %w", err)
		}
		sum := sha256.Sum256([]byte(cfg.MetadataURL))
		cfg.CacheDir = filepath.Join(base, "twinforge", "tuf", hex.EncodeToString(sum[:8]))
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 30 * time.Second}
	}
	trusted := cfg.InitialRoot
	if _, err := (&metadata.Metadata[metadata.RootType]{}).FromBytes(trusted); err != nil {
		return nil, fmt.Errorf("initial root: %w", err)
	}
	// sigstore-go's client starts from the root it is given; one verified
	// into the cache by an earlier run is newer and is trusted instead, so
	// that a rotation once followed is never walked back.
	metaDir := filepath.Join(cfg.CacheDir, tuf.URLToPath(cfg.MetadataURL))
	if cached, err := os.ReadFile(filepath.Join(metaDir, "root.json")); err == nil && newerRoot(cached, trusted) {
		trusted = cached
	}
	opts := &tuf.Options{
		Root: trusted, CachePath: cfg.CacheDir, RepositoryBaseURL: cfg.MetadataURL,
		Fetcher: &tuffetch.HTTP{Ctx: ctx, Client: cfg.HTTPClient}, Context: ctx,
	}
	c, err := tuf.New(opts)
	if err != nil {
		return nil, fmt.Errorf("updating TUF metadata: %w", err)
	}
	data, err := c.GetTarget(cfg.Target)
	if err != nil {
		return nil, fmt.Errorf("downloading target %s: %w", cfg.Target, err)
	}
	return data, nil
}

// newerRoot reports whether candidate is a root.json of a higher version
// than current (both parse; signatures were checked when it was cached).
func newerRoot(candidate, current []byte) bool {
	c, err := (&metadata.Metadata[metadata.RootType]{}).FromBytes(candidate)
	if err != nil {
		return false
	}
	cur, err := (&metadata.Metadata[metadata.RootType]{}).FromBytes(current)
	if err != nil {
		return false
	}
	return c.Signed.Version > cur.Signed.Version
}

// LoadTrustedRootJSON parses a Sigstore trusted root.
func LoadTrustedRootJSON(data []byte) (*root.TrustedRoot, error) {
	tr, err := root.NewTrustedRootFromJSON(data)
	if err != nil {
		return nil, fmt.Errorf("parsing trusted root: %w", err)
	}
	return tr, nil
}
