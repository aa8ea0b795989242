package distribute

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sync"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// ErrNotFound means the registry answered 404 for a manifest: the
// repository or the manifest does not exist. FetchManifest and Resolve wrap
// it.
var ErrNotFound = errors.New("not found")

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
	p, err := o.pullerFor(repo)
	if err != nil {
		return name.Digest{}, err
	}
	desc, err := p.Head(ctx, ref)
	var terr *transport.Error
	var uerr *url.Error
	switch {
	case err == nil:
		return repo.Digest(desc.Digest.String()), nil
	case errors.As(err, &terr), errors.As(err, &uerr):
		return name.Digest{}, notFound(err, "manifest "+ref.TagStr())
	}
	// The registry answered without a header go-containerregistry needs
	// (the digest, the media type or the length): the manifest says.
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

// Puller reads from registries with the options it was made with, and
// keeps each repository's authentication (the registry's token, or the
// credentials it asks for) from one call to the next, so that a
// long-running reader does not authenticate again for each call: a
// go-containerregistry remote.Puller, which calls given WithPuller reuse
// (remote.Reuse). It holds at most a bounded number of repositories: when
// full, it starts afresh with a new remote.Puller, since image names come
// from users and the state they cause must stay bounded. It is safe for
// concurrent use.
type Puller struct {
	o   *options
	max int

	mu    sync.Mutex
	cur   *remote.Puller
	repos map[string]bool
}

// NewPuller returns a Puller for at most n repositories (n below 1 means
// 1) that reaches registries as opts say.
func NewPuller(n int, opts ...Option) (*Puller, error) {
	o, err := makeOptions(opts...)
	if err != nil {
		return nil, fmt.Errorf("making a puller: %w", err)
	}
	return &Puller{o: o, max: max(n, 1)}, nil
}

// WithPuller makes reads (Resolve, FetchManifest, Referrers, Image,
// PullFiles) go through p, reusing the authentication it keeps, with p's
// transport, CA, keychain, retries and user agent: give p the options the
// calls get. Read-backs after a write never use it: they are made afresh.
// By default each call authenticates afresh.
func WithPuller(p *Puller) Option {
	return func(o *options) error {
		if p == nil {
			return errors.New("WithPuller: nil puller")
		}
		o.puller = p
		return nil
	}
}

// get is the remote.Puller for repo.
func (p *Puller) get(repo name.Repository) (*remote.Puller, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.repos[repo.Name()] {
		return p.cur, nil
	}
	if p.cur == nil || len(p.repos) >= p.max {
		cur, err := remote.NewPuller(p.o.connection()...)
		if err != nil {
			return nil, err
		}
		p.cur, p.repos = cur, map[string]bool{}
	}
	p.repos[repo.Name()] = true
	return p.cur, nil
}

// Len says how many repositories p holds.
func (p *Puller) Len() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.repos)
}

// pullerFor is the remote.Puller reads of repo go through: the shared one
// (WithPuller), or else a new one for this call, so that the call's
// requests share one authentication.
func (o *options) pullerFor(repo name.Repository) (*remote.Puller, error) {
	if o.puller != nil {
		return o.puller.get(repo)
	}
	return remote.NewPuller(o.connection()...)
}

// notFound marks a 404 answer about what with ErrNotFound.
func notFound(err error, what string) error {
	if hasStatus(err, http.StatusNotFound) {
		return fmt.Errorf("%s: %w: %w", what, ErrNotFound, err)
	}
	return err
}
