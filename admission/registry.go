package admission

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"

	"github.com/twinforge/twinforge/attest/evidence"
	"github.com/twinforge/twinforge/distribute"
)

// maxPullers is how many repositories the registry client keeps
// authentication state for before it starts afresh.
const maxPullers = 1024

// registryClient resolves images and fetches their evidence.
type registryClient interface {
	// resolve returns the digest a tag points at. pull, when not nil, holds
	// credentials tried before the client's own (a pod's pull secrets).
	resolve(ctx context.Context, ref name.Tag, pull authn.Keychain) (name.Digest, error)
	// evidence fetches the manifest and the attached bundles of d.
	evidence(ctx context.Context, d name.Digest, pull authn.Keychain) (*evidence.Evidence, error)
}

// remoteClient is the registryClient over package distribute, which checks
// every manifest and blob against its digest and refuses plain HTTP (but to
// loopback registries, when allowed).
type remoteClient struct {
	opts []distribute.Option
}

var _ registryClient = (*remoteClient)(nil)

func newRemoteClient(registry []distribute.Option, insecureLoopback bool) (*remoteClient, error) {
	opts := []distribute.Option{
		distribute.WithUserAgent(userAgent),
		// One quick retry: the deadline is short and a denial can be
		// retried by the user.
		distribute.WithRetryBackoff(distribute.Backoff{Duration: 100 * time.Millisecond, Factor: 2, Steps: 2}),
	}
	opts = append(opts, registry...)
	if insecureLoopback {
		// Plain HTTP to loopback registries only; the others stay
		// HTTPS-only and are still reached.
		opts = append(opts, distribute.WithLoopbackHTTPUnsafe())
	}
	// Each repository's authentication is kept, bounded: image names come
	// from users, so the state they cause must stay bounded.
	puller, err := distribute.NewPuller(maxPullers, opts...)
	if err != nil {
		return nil, fmt.Errorf("registry client: %w", err)
	}
	return &remoteClient{opts: append(opts, distribute.WithPuller(puller))}, nil
}

// with is the client's options, with pull's credentials first. Those
// requests do not share the Puller: what one pod's credentials opened must
// not serve another pod.
func (c *remoteClient) with(pull authn.Keychain) []distribute.Option {
	if pull == nil {
		return c.opts
	}
	return append(slices.Clip(c.opts), distribute.WithKeychainFirst(pull))
}

func (c *remoteClient) resolve(ctx context.Context, ref name.Tag, pull authn.Keychain) (name.Digest, error) {
	d, err := distribute.Resolve(ctx, ref, c.with(pull)...)
	if err != nil {
		return name.Digest{}, registryError(err)
	}
	return d, nil
}

func (c *remoteClient) evidence(ctx context.Context, d name.Digest, pull authn.Keychain) (*evidence.Evidence, error) {
	// Fetched by digest, the manifest is checked against it; the bundles
	// are bounded in number and size (evidence.MaxReferrers,
	// evidence.MaxBundleBytes).
	ev, err := evidence.Registry(d, c.with(pull)...).Evidence(ctx, "")
	if err != nil {
		return nil, registryError(err)
	}
	return ev, nil
}

// registryError marks distribute's errors with admission's sentinels, so
// that classify maps them to the denial reasons.
func registryError(err error) error {
	switch {
	case errors.Is(err, distribute.ErrNotFound):
		return fmt.Errorf("%w: %w", ErrImageNotFound, err)
	case errors.Is(err, distribute.ErrInsecure):
		return &markedError{mark: ErrInsecure, err: err}
	}
	return err
}

// markedError is err, which also matches mark with errors.Is.
type markedError struct {
	mark, err error
}

func (e *markedError) Error() string   { return e.err.Error() }
func (e *markedError) Unwrap() []error { return []error{e.mark, e.err} }

// userAgent is what the webhook calls itself to registries and to the API
// server.
const userAgent = "twinforge-admission"
