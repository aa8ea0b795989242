package evidence

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/sigstore/sigstore-go/pkg/bundle"

	"github.com/twinforge/twinforge/attest/verify"
	"github.com/twinforge/twinforge/distribute"
)

// Bounds on what a registry can make a reader fetch.
const (
	// MaxReferrers is how many possible bundle referrers of one image are
	// read; more is an error. Every one is read before any is verified
	// (its signer is inside), so the bound is generous: junk pushed beside
	// the real bundles is set aside by signer (Evidence.Verify), not
	// counted against a small limit.
	MaxReferrers = 256
	// MaxBundleBytes bounds one bundle.
	MaxBundleBytes = 1 << 20
)

// ErrTooManyReferrers is wrapped by the error of Registry for an image with
// more than MaxReferrers possible bundle referrers.
var ErrTooManyReferrers = errors.New("too many signature referrers")

// Source finds an image's evidence.
type Source interface {
	// Evidence finds the evidence of the image the source names; digest,
	// when not empty, is the image wanted ("sha256:..."): it must agree
	// with the source, and picks the image of a layout holding several.
	Evidence(ctx context.Context, digest string) (*Evidence, error)
}

// Open picks the source image names: an existing directory is an OCI
// layout; a reference with a registry host (REGISTRY/REPOSITORY@sha256:...
// or :TAG) an image in a registry, reached with opts. Anything else is an
// error wrapping ErrInvalidRequest: a mistyped layout is never looked up on
// Docker Hub.
func Open(image string, opts ...distribute.Option) (Source, error) {
	fi, err := os.Stat(image)
	switch {
	case err == nil && fi.IsDir():
		return Layout(image), nil
	case err == nil:
		return nil, fmt.Errorf("%w: %s is a file: give an OCI layout directory", ErrInvalidRequest, image)
	case LooksLikeReference(image):
		ref, rerr := name.ParseReference(image, name.StrictValidation)
		if rerr != nil {
			return nil, fmt.Errorf("%w: image reference %q: %v; give REGISTRY/REPOSITORY@sha256:... or REGISTRY/REPOSITORY:TAG", ErrInvalidRequest, image, rerr)
		}
		return Registry(ref, opts...), nil
	}
	return nil, fmt.Errorf("%w: OCI layout %s: %w", ErrInvalidRequest, image, errors.Unwrap(err))
}

// LooksLikeReference says whether s names an image in a registry: a host
// (with a dot or a port, or localhost) before the first slash. Anything
// else is taken for a path.
func LooksLikeReference(s string) bool {
	if strings.HasPrefix(s, ".") || strings.HasPrefix(s, "/") || strings.HasPrefix(s, "~") {
		return false
	}
	host, _, ok := strings.Cut(s, "/")
	return ok && (strings.ContainsAny(host, ".:") || host == "localhost")
}

// Layout is an OCI layout directory with its attestations beside it.
type Layout string

var _ Source = Layout("")

// Evidence reads the layout's image (the one it holds, or digest), its
// provenance and image bundles, its rebuild verdicts and its SBOM
// attestations.
func (l Layout) Evidence(_ context.Context, digest string) (*Evidence, error) {
	dir := string(l)
	if digest == "" {
		d, err := verify.ImageDigest(dir)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrInvalidRequest, err)
		}
		digest = d
	}
	h, err := v1.NewHash(digest)
	if err != nil {
		return nil, fmt.Errorf("%w: digest %q: %v", ErrInvalidRequest, digest, err)
	}
	manifest, err := verify.ReadManifest(dir, digest)
	if err != nil {
		return nil, err
	}
	bundles, err := verify.ReadBundles(dir)
	if err != nil {
		return nil, err
	}
	verdicts, err := verify.ReadVerdicts(dir)
	if err != nil {
		return nil, err
	}
	sboms, err := verify.ReadSBOMs(dir)
	if err != nil {
		return nil, err
	}
	ev := &Evidence{Where: dir, Digest: h, Manifest: manifest, Verdicts: verdicts, SBOMs: sboms}
	if bundles.Provenance != nil {
		ev.Provenance = []*bundle.Bundle{bundles.Provenance}
	}
	if bundles.Image != nil {
		ev.Images = []*bundle.Bundle{bundles.Image}
	}
	return ev, nil
}

// registry is an image in a registry with its bundles attached as
// referrers.
type registry struct {
	ref  name.Reference
	opts []distribute.Option
}

// Registry is the image ref names in its registry, reached with opts.
func Registry(ref name.Reference, opts ...distribute.Option) Source {
	return &registry{ref: ref, opts: opts}
}

// Evidence fetches the image manifest (a tag resolved to its digest, a
// digest checked against the bytes) and the bundles among its referrers.
func (r *registry) Evidence(ctx context.Context, digest string) (*Evidence, error) {
	if d, ok := r.ref.(name.Digest); ok && digest != "" && d.DigestStr() != digest {
		return nil, fmt.Errorf("%w: %s names %s, not %s", ErrInvalidRequest, r.ref, d.DigestStr(), digest)
	}
	m, err := distribute.FetchManifest(ctx, r.ref, r.opts...)
	if err != nil {
		return nil, err
	}
	h, err := v1.NewHash(m.Ref.DigestStr())
	if err != nil {
		return nil, err
	}
	ev := &Evidence{Where: m.Ref.String(), Digest: h, Manifest: m.Raw, Repository: r.ref.Context().RepositoryStr()}
	if t, ok := r.ref.(name.Tag); ok {
		ev.ResolvedFrom = r.ref.String()
		ev.Tag = t.TagStr()
		if digest != "" && digest != h.String() {
			return nil, fmt.Errorf("%w: %s points at %s, not %s", ErrInvalidRequest, r.ref, h, digest)
		}
	}
	fetched, err := distribute.Referrers(ctx, m.Ref, append(append([]distribute.Option(nil), r.opts...),
		distribute.WithReferrerFilter(bundleCandidates),
		distribute.WithReferrerDataLimit(MaxBundleBytes))...)
	if err != nil {
		return nil, err
	}
	for _, f := range fetched {
		if b := bundleOf(f); b != nil {
			ev.add(b)
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
	if len(candidates) > MaxReferrers {
		return nil, fmt.Errorf("%w: %d, at most %d are read", ErrTooManyReferrers, len(candidates), MaxReferrers)
	}
	return candidates, nil
}

// bundleOf returns the bundle one referrer holds, or nil for a referrer
// that is not a Sigstore bundle manifest or a malformed bundle, which the
// evidence then lacks (an image with no usable bundle is "not signed").
// Whatever a bundle claims is checked by verify.Verify, not here.
func bundleOf(f distribute.Fetched) *bundle.Bundle {
	// f.ArtifactType is the manifest's artifactType, or its config's media
	// type when it has none.
	if f.Layer == nil || f.Layer.MediaType != types.MediaType(verify.BundleArtifactType) || f.Layer.Size > MaxBundleBytes ||
		f.ArtifactType != verify.BundleArtifactType || len(f.Data) > MaxBundleBytes || f.Data == nil {
		return nil
	}
	b, err := verify.ParseBundle(f.Data)
	if err != nil {
		return nil
	}
	return b
}
