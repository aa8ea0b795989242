package verify

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	provenancepb "github.com/in-toto/attestation/go/predicates/provenance/v1"
	intoto "github.com/in-toto/attestation/go/v1"
	"google.golang.org/protobuf/encoding/protojson"
)

const (
	// StatementType is the in-toto Statement type twinforge signs.
	StatementType = intoto.StatementTypeUri
	// PredicateType is the SLSA Provenance v1 predicate type.
	PredicateType = "https://slsa.dev/provenance/v1"
	// PayloadType is the DSSE payload type of an in-toto statement.
	PayloadType = "application/vnd.in-toto+json"
	// RebuildByproduct is the name of the runDetails byproduct that records
	// the independent rebuild (see attest/buildtype.md).
	RebuildByproduct = "rebuild"
)

var sha256Digest = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)

// ParseStatement decodes an in-toto Statement v1 and checks its shape.
func ParseStatement(data []byte) (*intoto.Statement, error) {
	var st intoto.Statement
	if err := protojson.Unmarshal(data, &st); err != nil {
		return nil, fmt.Errorf("parsing in-toto statement: %w", err)
	}
	if err := st.Validate(); err != nil {
		return nil, fmt.Errorf("parsing in-toto statement: %w", err)
	}
	return &st, nil
}

// ProvenancePredicate decodes the SLSA Provenance v1 predicate of a
// statement. Unknown fields are ignored, as SLSA asks of consumers.
func ProvenancePredicate(st *intoto.Statement) (*provenancepb.Provenance, error) {
	if st.GetPredicateType() != PredicateType {
		return nil, fmt.Errorf("predicate type %q is not %s", st.GetPredicateType(), PredicateType)
	}
	raw, err := protojson.Marshal(st.GetPredicate())
	if err != nil {
		return nil, fmt.Errorf("decoding provenance: %w", err)
	}
	var p provenancepb.Provenance
	if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(raw, &p); err != nil {
		return nil, fmt.Errorf("decoding provenance: %w", err)
	}
	if err := p.Validate(); err != nil {
		return nil, fmt.Errorf("decoding provenance: %w", err)
	}
	return &p, nil
}

// SubjectHasDigest reports whether a statement is about the sha256 digest
// d ("sha256:<hex>").
func SubjectHasDigest(st *intoto.Statement, d string) bool {
	want := strings.TrimPrefix(d, "sha256:")
	return slices.ContainsFunc(st.GetSubject(), func(rd *intoto.ResourceDescriptor) bool {
		return rd.GetDigest()["sha256"] == want
	})
}
