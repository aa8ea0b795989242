package release

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/sigstore/sigstore-go/pkg/bundle"

	"github.com/twinforge/twinforge/attest/verify"
	"github.com/twinforge/twinforge/distribute"
)

// TargetFor describes the release of image (by digest) as tag: the
// manifest's size and media type from the registry and, unless provenance
// is given, the digest of the SLSA provenance statement attached to it
// (the one provenance bundle among its referrers; with several, give
// provenance). Nothing is verified: readers verify the provenance's
// signature with their policy, and the index binds which statement.
func TargetFor(ctx context.Context, image name.Digest, tag, provenance string, opts ...distribute.Option) (Target, error) {
	m, err := distribute.FetchManifest(ctx, image, opts...)
	if err != nil {
		return Target{}, err
	}
	t := Target{Repository: image.Context().RepositoryStr(), Tag: tag, Digest: image.DigestStr(), MediaType: string(m.MediaType), Size: int64(len(m.Raw)), Provenance: provenance}
	if provenance != "" {
		return t, nil
	}
	fetched, err := distribute.Referrers(ctx, image, opts...)
	if err != nil {
		return Target{}, err
	}
	found := map[string]bool{}
	for _, f := range fetched {
		if f.ArtifactType != verify.BundleArtifactType || f.Data == nil {
			continue
		}
		b, err := verify.ParseBundle(f.Data)
		if err != nil {
			continue
		}
		info, err := verify.Describe(b)
		if err != nil || info.Statement == nil || info.Statement.GetPredicateType() != verify.PredicateType || !verify.SubjectHasDigest(info.Statement, image.DigestStr()) {
			continue
		}
		d, err := verify.StatementDigest(b)
		if err == nil {
			found[d] = true
		}
	}
	var ds []string
	for d := range found {
		ds = append(ds, d)
	}
	sort.Strings(ds)
	switch len(ds) {
	case 0:
		return Target{}, fmt.Errorf("%s has no SLSA provenance attached: push it with its attestations (twinforge build --push), or name the statement's digest", image)
	case 1:
		t.Provenance = ds[0]
		return t, nil
	}
	return Target{}, fmt.Errorf("%s has %d provenance statements attached (%v): name the one to release", image, len(ds), ds)
}

// Check reads the index cfg names (one Refresh of a Client) and verifies
// that repository:tag is released as digest (with tag "", that some tag of
// repository is). It returns the release, whose Provenance the image's
// provenance must then match (VerifyProvenance).
func Check(ctx context.Context, cfg ClientConfig, repository, tag, digest string) (*Target, error) {
	c, err := NewClient(cfg)
	if err != nil {
		return nil, err
	}
	ix, err := c.Refresh(ctx)
	if err != nil {
		return nil, err
	}
	t, err := ix.Verify(repository, tag, digest, time.Now())
	if err != nil {
		return nil, fmt.Errorf("%s: %w", ix, err)
	}
	return t, nil
}

// IsRefusal reports whether err is a verdict about the index (an *Error),
// rather than a failure to read it.
func IsRefusal(err error) bool {
	var re *Error
	return errors.As(err, &re)
}

// ReleasedProvenance keeps the provenance bundles whose statement is the
// one t names: only that provenance counts for a released image. It fails,
// as VerifyProvenance does, when none is; with no provenance named it keeps
// them all.
func ReleasedProvenance(provs []*bundle.Bundle, t *Target) ([]*bundle.Bundle, error) {
	if t.Provenance == "" {
		return provs, nil
	}
	var out []*bundle.Bundle
	var seen []string
	for _, b := range provs {
		d, err := verify.StatementDigest(b)
		if err != nil {
			continue
		}
		if VerifyProvenance(t, d) == nil {
			out = append(out, b)
		} else {
			seen = append(seen, d)
		}
	}
	if len(out) == 0 {
		if len(seen) == 0 {
			seen = []string{"none"}
		}
		return nil, VerifyProvenance(t, strings.Join(seen, ", "))
	}
	return out, nil
}
