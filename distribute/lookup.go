package distribute

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// ErrNotFound means the registry answered 404 for a manifest: the
// repository or the manifest does not exist. FetchManifest and Resolve wrap
// it.
var ErrNotFound = errNotFound

// Resolve returns the digest the tag ref points at, asking the registry with
// a HEAD request (no manifest is downloaded) through the same connection
// rules as FetchManifest. When the answer names no digest, the manifest is
// fetched and hashed instead. A missing tag or repository wraps ErrNotFound.
func Resolve(ctx context.Context, ref name.Tag, opts ...Option) (name.Digest, error) {
	o, err := makeOptions(opts...)
	if err != nil {
		return name.Digest{}, fmt.Errorf("resolving %s: %w", ref, err)
	}
	d, err := resolve(ctx, o, ref)
	if err != nil {
		return name.Digest{}, fmt.Errorf("resolving %s: %w", ref, explain(err))
	}
	return d, nil
}

func resolve(ctx context.Context, o *options, ref name.Tag) (name.Digest, error) {
	repo := ref.Context()
	if err := o.checkRegistry(repo.Registry); err != nil {
		return name.Digest{}, err
	}
	rc, err := o.repoClient(ctx, repo, transport.PullScope)
	if err != nil {
		return name.Digest{}, err
	}
	var digest string
	err = o.retry(ctx, func() error {
		resp, err := rc.do(ctx, http.MethodHead, rc.url("manifests", ref.TagStr()), manifestMediaTypes)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if resp.StatusCode == http.StatusNotFound {
			return fmt.Errorf("manifest %s: %w", ref.TagStr(), errNotFound)
		}
		if err := transport.CheckError(resp, http.StatusOK); err != nil {
			return err
		}
		digest = resp.Header.Get("Docker-Content-Digest")
		return nil
	})
	if err != nil {
		return name.Digest{}, err
	}
	if h, err := v1.NewHash(digest); err == nil {
		return repo.Digest(h.String()), nil
	}
	m, err := fetchManifest(ctx, o, ref)
	if err != nil {
		return name.Digest{}, err
	}
	return m.Ref, nil
}

// WithLoopbackHTTPUnsafe allows plain HTTP to registries on loopback hosts
// (127.0.0.0/8, ::1, localhost), as WithInsecureLoopbackUnsafe does, but
// naming any other registry is not an error: it is reached over HTTPS only,
// as without the option. It suits long-running readers (an admission
// webhook) that do not know in advance which registries they will be asked
// about. By default plain HTTP is refused for every host.
//
// Do not use this option unless you know what you are doing.
func WithLoopbackHTTPUnsafe() Option {
	return func(o *options) error {
		o.insecure, o.anyHostHTTPS = true, true
		return nil
	}
}

// WithReferrerFilter makes Referrers read only the listed referrers f keeps:
// f gets the listing (sorted by manifest digest, before any referrer
// manifest is fetched) and returns the descriptors to read; an error from f
// is returned by Referrers. By default every listed referrer is read.
func WithReferrerFilter(f func(listed []v1.Descriptor) ([]v1.Descriptor, error)) Option {
	return func(o *options) error {
		if f == nil {
			return errors.New("WithReferrerFilter: nil filter")
		}
		o.referrerFilter = f
		return nil
	}
}

// WithReferrerDataLimit makes Referrers skip the download of a referrer's
// layer larger than n bytes: that referrer is returned with Data nil (and its
// Layer set). By default layers up to 16 MiB are read and larger ones are an
// error.
func WithReferrerDataLimit(n int64) Option {
	return func(o *options) error {
		if n < 1 {
			return fmt.Errorf("WithReferrerDataLimit(%d): need at least 1 byte", n)
		}
		o.referrerLimit = n
		return nil
	}
}

// AuthCache keeps the authenticated connections to repositories (the
// registry's token, or the credentials it asks for) from one call to the
// next, so that a long-running reader does not authenticate again for each
// call. It holds at most a bounded number of repositories: when full, it
// starts afresh. Use one AuthCache with one set of options (transport,
// keychain, plain-HTTP policy, user agent) only. It is safe for concurrent
// use.
type AuthCache struct {
	max int
	mu  sync.Mutex
	m   map[string]http.RoundTripper
}

// NewAuthCache returns an AuthCache for at most n repositories (and
// scopes); n below 1 means 1.
func NewAuthCache(n int) *AuthCache {
	return &AuthCache{max: max(n, 1), m: map[string]http.RoundTripper{}}
}

// WithAuthCache makes calls reuse and keep authenticated connections in c.
// By default each call authenticates afresh.
func WithAuthCache(c *AuthCache) Option {
	return func(o *options) error {
		if c == nil {
			return errors.New("WithAuthCache: nil cache")
		}
		o.authCache = c
		return nil
	}
}

func authKey(repo name.Repository, scope string) string { return repo.Name() + " " + scope }

func (c *AuthCache) get(repo name.Repository, scope string) http.RoundTripper {
	if c == nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m[authKey(repo, scope)]
}

func (c *AuthCache) put(repo name.Repository, scope string, tr http.RoundTripper) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	key := authKey(repo, scope)
	if _, ok := c.m[key]; !ok && len(c.m) >= c.max {
		c.m = map[string]http.RoundTripper{}
	}
	c.m[key] = tr
}

// Len says how many repositories (and scopes) c holds.
func (c *AuthCache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m)
}
