package evidence

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/sigstore/sigstore-go/pkg/bundle"
	"github.com/sigstore/sigstore-go/pkg/root"

	"github.com/twinforge/twinforge/attest/verify"
)

// MaxCandidates bounds the provenance/signature pairs Verify tries, however
// many bundles a registry attaches to an image.
const MaxCandidates = 16

// ErrInvalidRequest is wrapped by errors about what was asked for rather
// than what was found: a digest that contradicts the reference, a layout
// holding several images and none named.
var ErrInvalidRequest = errors.New("invalid evidence request")

// Evidence is what is stored about one image: its manifest and the bundles
// found with it, sorted by what they hold. None of it is trusted until
// Verify says so.
type Evidence struct {
	// Where names the image as it was found: the layout directory, or the
	// registry reference by digest.
	Where string
	// Digest is the image manifest's digest, Manifest its bytes.
	Digest   v1.Hash
	Manifest []byte
	// ResolvedFrom is the tag reference a registry image was named by, if
	// any.
	ResolvedFrom string
	// Repository and Tag name a registry image as a release index does:
	// the repository path without the registry host, and the tag it was
	// named by ("" when named by digest). Both are empty for a layout.
	Repository, Tag string
	// Provenance are the bundles of SLSA provenance statements, Images the
	// message signatures of the manifest, Verdicts the rebuild verdicts.
	Provenance []*bundle.Bundle
	Images     []*bundle.Bundle
	Verdicts   []*bundle.Bundle
	// SBOMs are the SBOM attestations about the image.
	SBOMs []*bundle.Bundle
}

// Name names the image for messages: where it is, with its digest.
func (e *Evidence) Name() string {
	if strings.HasSuffix(e.Where, "@"+e.Digest.String()) {
		return e.Where
	}
	return e.Where + " (" + e.Digest.String() + ")"
}

// Candidates are the pairs of a provenance and an image bundle Verify
// tries, in order: each provenance bundle with each image bundle (or with
// none when there is none), at most MaxCandidates. Without provenance the
// one candidate is the first image bundle alone, which Verify refuses with
// the reason.
func (e *Evidence) Candidates() []verify.Bundles {
	return candidates(e.Provenance, e.Images)
}

func candidates(provs, imgs []*bundle.Bundle) []verify.Bundles {
	if len(imgs) == 0 {
		imgs = []*bundle.Bundle{nil}
	}
	if len(provs) == 0 {
		return []verify.Bundles{{Image: imgs[0]}}
	}
	var out []verify.Bundles
	for _, p := range provs {
		for _, i := range imgs {
			if len(out) == MaxCandidates {
				return out
			}
			out = append(out, verify.Bundles{Provenance: p, Image: i})
		}
	}
	return out
}

// Verified is evidence that verified: the result and the bundles it holds.
type Verified struct {
	*verify.Result
	Bundles verify.Bundles
}

// Verify verifies each candidate pair in turn, with the rebuild verdicts,
// against the trusted root and the policy, and returns the first pair that
// verifies. When none does, the error is the first candidate's refusal (a
// *verify.VerificationError), wrapped with the number of pairs tried when
// there were several; an error of another kind (an unusable request) is
// returned at once.
//
// Anyone who may push to a repository may attach bundles: those signed by
// the policy's identities go first, so that junk beside them neither
// exhausts the tries nor pairs a good provenance with a bad image
// signature; only when none is are the others tried, for the reason of
// the refusal. An image signature is optional: when none is the policy's,
// none is verified. Verdicts count only when signed by the policy's
// rebuilders.
func (e *Evidence) Verify(ctx context.Context, tm root.TrustedMaterial, policy *verify.Policy) (*Verified, error) {
	if policy == nil {
		return nil, errors.New("verifying evidence: no policy")
	}
	signed := func(b *bundle.Bundle) bool { return policy.SignedByPolicyIdentity(b, tm) }
	provs, imgs := preferred(e.Provenance, signed), preferred(e.Images, signed)
	if len(e.Images) > 0 && !slices.ContainsFunc(e.Images, signed) {
		imgs = nil
	}
	verdicts := slices.DeleteFunc(slices.Clone(e.Verdicts), func(b *bundle.Bundle) bool { return !policy.SignedByRebuilder(b, tm) })
	candidates := candidates(provs, imgs)
	var first error
	for _, b := range candidates {
		res, err := verify.Verify(ctx, verify.Request{
			Digest:        e.Digest.String(),
			ImageManifest: e.Manifest,
			Provenance:    b.Provenance,
			Image:         b.Image,
			Verdicts:      verdicts,
			SBOMs:         e.SBOMs,
			TrustedRoot:   tm,
			Policy:        policy,
		})
		if err == nil {
			return &Verified{Result: res, Bundles: b}, nil
		}
		var ve *verify.VerificationError
		if !errors.As(err, &ve) {
			return nil, err
		}
		if first == nil {
			first = err
		}
	}
	if len(candidates) > 1 {
		return nil, fmt.Errorf("none of %d provenance/signature pairs verifies; the first: %w", len(candidates), first)
	}
	return nil, first
}

// preferred keeps the bundles keep accepts, or all of them when it accepts
// none.
func preferred(bundles []*bundle.Bundle, keep func(*bundle.Bundle) bool) []*bundle.Bundle {
	out := slices.DeleteFunc(slices.Clone(bundles), func(b *bundle.Bundle) bool { return !keep(b) })
	if len(out) == 0 {
		return bundles
	}
	return out
}

// add sorts one bundle in by what it holds: a message signature, a SLSA
// provenance statement, a rebuild verdict or an SBOM attestation; anything
// else is left out.
func (e *Evidence) add(b *bundle.Bundle) bool {
	info, err := verify.Describe(b)
	if err != nil {
		return false
	}
	switch {
	case info.MessageDigest != "":
		e.Images = append(e.Images, b)
	case info.Statement != nil && info.Statement.GetPredicateType() == verify.PredicateType:
		e.Provenance = append(e.Provenance, b)
	case info.Statement != nil && info.Statement.GetPredicateType() == verify.PredicateRebuildVerdict:
		e.Verdicts = append(e.Verdicts, b)
	case info.Statement != nil && verify.IsSBOMPredicate(info.Statement.GetPredicateType()):
		e.SBOMs = append(e.SBOMs, b)
	default:
		return false
	}
	return true
}
