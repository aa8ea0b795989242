package admission

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/sigstore/sigstore-go/pkg/bundle"

	"github.com/twinforge/twinforge/attest/verify"
	"github.com/twinforge/twinforge/distribute"
)

// Bounds on what a registry can make the webhook fetch.
const (
	// maxReferrers is how many possible bundle referrers of one image are
	// read; more is refused. Every one is read before any is verified (its
	// signer is inside), so the bound is generous: junk pushed beside the
	// real bundles is set aside by signer (webhook.verify), not counted
	// against a small limit.
	maxReferrers = 256
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
	sboms      []*bundle.Bundle
}

// registryClient resolves images and fetches their evidence.
type registryClient interface {
	// resolve returns the digest a tag points at.
	resolve(ctx context.Context, ref name.Tag) (name.Digest, error)
	// evidence fetches the manifest and the attached bundles of d.
	evidence(ctx context.Context, d name.Digest) (*evidence, error)
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
		distribute.WithUserAgent("twinforge-admission"),
		// Each repository's authentication is kept, bounded: image names
		// come from users, so the state they cause must stay bounded.
		distribute.WithAuthCache(distribute.NewAuthCache(maxPullers)),
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
	return &remoteClient{opts: opts}, nil
}

func (c *remoteClient) resolve(ctx context.Context, ref name.Tag) (name.Digest, error) {
	d, err := distribute.Resolve(ctx, ref, c.opts...)
	if err != nil {
		return name.Digest{}, registryError(err)
	}
	return d, nil
}

func (c *remoteClient) evidence(ctx context.Context, d name.Digest) (*evidence, error) {
	// Fetched by digest, the manifest is checked against it.
	m, err := distribute.FetchManifest(ctx, d, c.opts...)
	if err != nil {
		return nil, registryError(err)
	}
	ev := &evidence{manifest: m.Raw}
	fetched, err := distribute.Referrers(ctx, d, slices.Concat(c.opts, []distribute.Option{
		distribute.WithReferrerFilter(bundleCandidates),
		distribute.WithReferrerDataLimit(maxBundleBytes),
	})...)
	if err != nil {
		return nil, registryError(err)
	}
	for _, f := range fetched {
		b := bundleOf(f)
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
		case info.Statement != nil && verify.IsSBOMPredicate(info.Statement.GetPredicateType()):
			ev.sboms = append(ev.sboms, b)
		}
	}
	return ev, nil
}

// bundleCandidates keeps the listed referrers that may be bundles. No
// server-side filter: registries disagree on what a referrer's artifactType
// is (go-containerregistry's reports the config media type), so each
// manifest says for itself.
func bundleCandidates(listed []v1.Descriptor) ([]v1.Descriptor, error) {
	var candidates []v1.Descriptor
	for _, desc := range listed {
		if desc.ArtifactType == "" || desc.ArtifactType == verify.BundleArtifactType || desc.ArtifactType == string(types.OCIEmptyJSON) {
			candidates = append(candidates, desc)
		}
	}
	if len(candidates) > maxReferrers {
		return nil, fmt.Errorf("%w: %d, at most %d are read", errTooManyReferrers, len(candidates), maxReferrers)
	}
	return candidates, nil
}

// bundleOf returns the bundle one referrer holds. It returns nil for a
// referrer that is not a twinforge bundle manifest, or a malformed bundle,
// which the verification then lacks (an image with no usable bundle is "not
// signed"). Whatever a bundle claims is checked by verify.Verify, not here.
func bundleOf(f distribute.Fetched) *bundle.Bundle {
	// f.ArtifactType is the manifest's artifactType, or its config's media
	// type when it has none.
	if f.Layer == nil || f.Layer.MediaType != types.MediaType(verify.BundleArtifactType) || f.Layer.Size > maxBundleBytes ||
		f.ArtifactType != verify.BundleArtifactType || len(f.Data) > maxBundleBytes {
		return nil
	}
	b, err := verify.ParseBundle(f.Data)
	if err != nil {
		return nil
	}
	return b
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
