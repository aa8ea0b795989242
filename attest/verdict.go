package attest

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	intoto "github.com/in-toto/attestation/go/v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/twinforge/twinforge/attest/verify"
)

// DefaultRebuilderID is the rebuilder id recorded when
// VerdictInfo.RebuilderID is empty: twinforge rebuild on a private local
// buildkitd.
const DefaultRebuilderID = "https://twinforge.dev/rebuilders/local/v1"

// VerdictInfo is everything RebuildVerdict records about one rebuild that
// reproduced an image.
type VerdictInfo struct {
	// Subject is the image: its name and the digest the provenance is
	// about, which the rebuild reproduced.
	Subject Subject
	// RebuiltDigest is the digest the rebuild produced; RebuildVerdict
	// refuses to vouch for anything but Subject.Digest.
	RebuiltDigest string
	// RebuilderID names the rebuilder. The default is DefaultRebuilderID.
	RebuilderID string
	// Rebuilder is the daemon that rebuilt the image; Variations how it
	// was varied.
	Rebuilder  Builder
	Variations []string
	// Provenance is the verified provenance statement the rebuild
	// followed, ProvenancePayload the exact bytes that were signed (the
	// DSSE payload) and ProvenanceSigner who signed them. Required.
	Provenance        *intoto.Statement
	ProvenancePayload []byte
	ProvenanceSigner  verify.SignerIdentity
	// Checkout is the source tree the rebuild built from.
	Checkout verify.SourceCheckout
	// RebuiltOn is when the rebuild finished. Required.
	RebuiltOn time.Time
}

// RebuildVerdict returns the statement an independent rebuilder signs when
// its rebuild of an image from the provenance alone gave the image's
// digest: an in-toto Statement v1 about the image with predicate type
// PredicateRebuildVerdict (verdict.md documents every field). There is no
// verdict for a rebuild that differs: it is an error.
func RebuildVerdict(info VerdictInfo) (*intoto.Statement, error) {
	if err := info.validate(); err != nil {
		return nil, fmt.Errorf("making rebuild verdict: %w", err)
	}
	prov, err := verify.ProvenancePredicate(info.Provenance)
	if err != nil {
		return nil, fmt.Errorf("making rebuild verdict: %w", err)
	}
	deps := make([]json.RawMessage, 0, len(prov.GetBuildDefinition().GetResolvedDependencies()))
	for _, rd := range prov.GetBuildDefinition().GetResolvedDependencies() {
		raw, err := protojson.Marshal(rd)
		if err != nil {
			return nil, fmt.Errorf("making rebuild verdict: copying resolved dependencies: %w", err)
		}
		deps = append(deps, raw)
	}
	sum := sha256.Sum256(info.ProvenancePayload)
	id := info.RebuilderID
	if id == "" {
		id = DefaultRebuilderID
	}
	pred := verify.VerdictPredicate{
		Rebuilder: verify.VerdictRebuilder{
			ID:              id,
			BuildKitVersion: info.Rebuilder.BuildKitVersion,
			Runc:            info.Rebuilder.Runc,
			Variations:      info.Variations,
		},
		Result:        verify.VerdictReproduced,
		RebuiltDigest: info.RebuiltDigest,
		Provenance: verify.VerdictProvenance{
			PredicateType: info.Provenance.GetPredicateType(),
			Digest:        map[string]string{"sha256": hex.EncodeToString(sum[:])},
			BuildType:     prov.GetBuildDefinition().GetBuildType(),
			BuilderID:     prov.GetRunDetails().GetBuilder().GetId(),
			Signer:        info.ProvenanceSigner,
		},
		Inputs:    verify.VerdictInputs{ResolvedDependencies: deps, SourceCheckout: info.Checkout},
		RebuiltOn: info.RebuiltOn.UTC().Truncate(time.Second),
	}
	raw, err := json.Marshal(pred)
	if err != nil {
		return nil, fmt.Errorf("making rebuild verdict: %w", err)
	}
	predicate := &structpb.Struct{}
	if err := protojson.Unmarshal(raw, predicate); err != nil {
		return nil, fmt.Errorf("making rebuild verdict: %w", err)
	}
	st := &intoto.Statement{
		Type: verify.StatementType,
		Subject: []*intoto.ResourceDescriptor{{
			Name:   info.Subject.Name,
			Digest: map[string]string{"sha256": strings.TrimPrefix(info.Subject.Digest, "sha256:")},
		}},
		PredicateType: verify.PredicateRebuildVerdict,
		Predicate:     predicate,
	}
	if err := st.Validate(); err != nil {
		return nil, fmt.Errorf("making rebuild verdict: invalid statement: %w", err)
	}
	return st, nil
}

func (info *VerdictInfo) validate() error {
	switch {
	case info.Subject.Name == "":
		return errors.New("subject has no name")
	case !sha256Digest.MatchString(info.Subject.Digest):
		return fmt.Errorf("subject digest %q: want sha256:<64 hex digits>", info.Subject.Digest)
	case info.RebuiltDigest != info.Subject.Digest:
		return fmt.Errorf("the rebuild gave %s, not %s: a verdict is only signed for a reproduced image", info.RebuiltDigest, info.Subject.Digest)
	case info.Provenance == nil || len(info.ProvenancePayload) == 0:
		return errors.New("no provenance")
	case !verify.SubjectHasDigest(info.Provenance, info.Subject.Digest):
		return fmt.Errorf("the provenance is not about %s", info.Subject.Digest)
	case info.RebuiltOn.IsZero():
		return errors.New("no rebuild time")
	}
	return nil
}
