package admission

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/sigstore/sigstore-go/pkg/bundle"

	"github.com/twinforge/twinforge/attest/verify"
)

// Bounds on what a registry can make the webhook fetch.
const (
	// maxReferrers is how many possible bundle referrers of one image are
	// looked at; more is refused.
	maxReferrers = 32
	// maxBundleBytes bounds one bundle.
	maxBundleBytes = 1 << 20
	// maxPullers is how many repositories the registry client keeps
	// authentication state for before it starts afresh.
	maxPullers = 1024
)

// evidence is what the registry holds about one image digest.
type evidence struct {
	manifest []byte
	// provenance, images and verdicts are the bundles attached to the
	// image, sorted by what they hold (read from the bundle, not from the
	// unsigned annotations): SLSA provenance statements, message
	// signatures of the manifest, and rebuild verdicts. Nothing here is
	// trusted yet.
	provenance []*bundle.Bundle
	images     []*bundle.Bundle
	verdicts   []*bundle.Bundle
}

// registryClient resolves images and fetches their evidence.
type registryClient interface {
	// resolve returns the digest a tag points at.
	resolve(ctx context.Context, ref name.Tag) (name.Digest, error)
	// evidence fetches the manifest and the attached bundles of d.
	evidence(ctx context.Context, d name.Digest) (*evidence, error)
}

// remoteClient is the registryClient over go-containerregistry.
type remoteClient struct {
	opts []remote.Option

	mu     sync.Mutex
	puller *remote.Puller
	repos  map[string]struct{}
}

var _ registryClient = (*remoteClient)(nil)

func newRemoteClient(rt http.RoundTripper, kc authn.Keychain, insecureLoopback bool, userAgent string) (*remoteClient, error) {
	if rt == nil {
		rt = remote.DefaultTransport
	}
	c := &remoteClient{
		opts: []remote.Option{
			remote.WithTransport(&schemeGuard{inner: rt, allowLoopbackHTTP: insecureLoopback}),
			remote.WithAuthFromKeychain(kc),
			remote.WithUserAgent(userAgent),
			// One quick retry: the deadline is short and a denial can be
			// retried by the user.
			remote.WithRetryBackoff(remote.Backoff{Duration: 100 * time.Millisecond, Factor: 2, Steps: 2}),
		},
	}
	if _, err := c.pullerFor(name.Repository{}); err != nil {
		return nil, err
	}
	return c, nil
}

// pullerFor returns the shared puller (which keeps each repository's
// authentication), starting a fresh one when too many repositories were seen:
// image names come from users, so the state they cause must stay bounded.
func (c *remoteClient) pullerFor(repo name.Repository) (*remote.Puller, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	key := repo.Name()
	if _, ok := c.repos[key]; !ok && (c.puller == nil || len(c.repos) >= maxPullers) {
		p, err := remote.NewPuller(c.opts...)
		if err != nil {
			return nil, fmt.Errorf("registry client: %w", err)
		}
		c.puller, c.repos = p, map[string]struct{}{}
	}
	c.repos[key] = struct{}{}
	return c.puller, nil
}

func (c *remoteClient) resolve(ctx context.Context, ref name.Tag) (name.Digest, error) {
	p, err := c.pullerFor(ref.Context())
	if err != nil {
		return name.Digest{}, err
	}
	desc, err := p.Head(ctx, ref)
	if err != nil {
		return name.Digest{}, fmt.Errorf("resolving %s: %w", ref, err)
	}
	return ref.Context().Digest(desc.Digest.String()), nil
}

func (c *remoteClient) evidence(ctx context.Context, d name.Digest) (*evidence, error) {
	p, err := c.pullerFor(d.Context())
	if err != nil {
		return nil, err
	}
	// go-containerregistry checks a manifest fetched by digest against it.
	desc, err := p.Get(ctx, d)
	if err != nil {
		return nil, fmt.Errorf("fetching manifest %s: %w", d, err)
	}
	ev := &evidence{manifest: desc.Manifest}

	// No server-side filter: registries disagree on what a referrer's
	// artifactType is (go-containerregistry's reports the config media
	// type), so each manifest says for itself.
	idx, err := remote.Referrers(d, remote.Reuse(p), remote.WithContext(ctx))
	if err != nil {
		return nil, fmt.Errorf("listing referrers of %s: %w", d, err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, fmt.Errorf("listing referrers of %s: %w", d, err)
	}
	var candidates []v1.Descriptor
	for _, desc := range im.Manifests {
		if desc.ArtifactType == "" || desc.ArtifactType == verify.BundleArtifactType || desc.ArtifactType == string(types.OCIEmptyJSON) {
			candidates = append(candidates, desc)
		}
	}
	if len(candidates) > maxReferrers {
		return nil, fmt.Errorf("%s: %w: %d, at most %d are read", d, errTooManyReferrers, len(candidates), maxReferrers)
	}
	for _, ref := range candidates {
		b, err := c.bundle(ctx, p, d, ref)
		if err != nil {
			return nil, err
		}
		if b == nil {
			continue
		}
		info, err := verify.Describe(b)
		if err != nil {
			continue
		}
		switch {
		case info.MessageDigest != "":
			ev.images = append(ev.images, b)
		case info.Statement != nil && info.Statement.GetPredicateType() == verify.PredicateType:
			ev.provenance = append(ev.provenance, b)
		case info.Statement != nil && info.Statement.GetPredicateType() == verify.PredicateRebuildVerdict:
			ev.verdicts = append(ev.verdicts, b)
		}
	}
	return ev, nil
}

// bundle fetches the bundle one referrer holds. It returns nil for a referrer
// that is not a twinforge bundle manifest, or a malformed bundle, which the
// verification then lacks (an image with no usable bundle is "not signed").
// Whatever a bundle claims is checked by verify.Verify, not here.
func (c *remoteClient) bundle(ctx context.Context, p *remote.Puller, subject name.Digest, desc v1.Descriptor) (*bundle.Bundle, error) {
	rd, err := p.Get(ctx, subject.Context().Digest(desc.Digest.String()))
	if err != nil {
		return nil, fmt.Errorf("fetching referrer %s: %w", desc.Digest, err)
	}
	var m v1.Manifest
	if err := json.Unmarshal(rd.Manifest, &m); err != nil {
		return nil, nil
	}
	if m.Subject == nil || m.Subject.Digest.String() != subject.DigestStr() || len(m.Layers) != 1 ||
		m.Layers[0].MediaType != types.MediaType(verify.BundleArtifactType) || m.Layers[0].Size > maxBundleBytes ||
		(m.ArtifactType != verify.BundleArtifactType && !(m.ArtifactType == "" && m.Config.MediaType == types.MediaType(verify.BundleArtifactType))) {
		return nil, nil
	}
	l, err := p.Layer(ctx, subject.Context().Digest(m.Layers[0].Digest.String()))
	if err != nil {
		return nil, fmt.Errorf("fetching bundle %s: %w", m.Layers[0].Digest, err)
	}
	rc, err := l.Compressed() // the blob as stored, checked against its digest
	if err != nil {
		return nil, fmt.Errorf("fetching bundle %s: %w", m.Layers[0].Digest, err)
	}
	defer rc.Close()
	data, err := io.ReadAll(io.LimitReader(rc, maxBundleBytes+1))
	if err != nil {
		return nil, fmt.Errorf("reading bundle %s: %w", m.Layers[0].Digest, err)
	}
	if len(data) > maxBundleBytes {
		return nil, nil
	}
	b, err := verify.ParseBundle(data)
	if err != nil {
		return nil, nil
	}
	return b, nil
}

// schemeGuard refuses plain-HTTP requests unless they go to a loopback host
// and the webhook allows it. go-containerregistry falls back to HTTP on its
// own for loopback, RFC 1918 and .local hosts; this is where that stops.
type schemeGuard struct {
	inner             http.RoundTripper
	allowLoopbackHTTP bool
}

func (g *schemeGuard) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.URL.Scheme != "https" {
		if !g.allowLoopbackHTTP {
			return nil, fmt.Errorf("%w: refusing plain HTTP to %s (allowed for loopback registries only with --insecure-registry-loopback)", ErrInsecure, r.URL.Host)
		}
		if !isLoopback(r.URL.Host) {
			return nil, fmt.Errorf("%w: refusing plain HTTP to %s", ErrInsecure, r.URL.Host)
		}
	}
	return g.inner.RoundTrip(r)
}

// isLoopback says whether a host (with or without port) is a loopback
// address or localhost.
func isLoopback(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	return ip != nil && ip.IsLoopback()
}

// notFound reports whether a registry error says the repository or manifest
// does not exist.
func notFound(err error) bool {
	var terr *transport.Error
	return errors.As(err, &terr) && (terr.StatusCode == http.StatusNotFound || hasCode(terr, transport.NameUnknownErrorCode, transport.ManifestUnknownErrorCode))
}
