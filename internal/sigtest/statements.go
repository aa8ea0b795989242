package sigtest

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strings"
	"time"
)

// Statement and predicate types, as twinforge writes them.
const (
	StatementType    = "https://in-toto.io/Statement/v1"
	SLSAProvenance   = "https://slsa.dev/provenance/v1"
	RebuildVerdict   = "https://twinforge.dev/attestations/rebuild/v1"
	DefaultBuilderID = "https://twinforge.dev/builders/local/v1"
	buildType        = "https://twinforge.dev/buildtypes/dockerfile/v1"
)

// Provenance describes an SLSA provenance statement to make.
type Provenance struct {
	// Digest is the subject's "sha256:<hex>"; Name its name (default
	// example.test/app).
	Digest, Name string
	// BuilderID defaults to DefaultBuilderID.
	BuilderID string
	// Repository and Ref are the source's (externalParameters.source).
	Repository, Ref string
	// RebuildDigest is the rebuild byproduct's digest, Reproduced what its
	// annotation claims. An empty RebuildDigest records no rebuild.
	RebuildDigest string
	Reproduced    bool
	// FinishedOn defaults to a minute ago.
	FinishedOn time.Time
}

// Statement is the provenance as signed JSON.
func (p Provenance) Statement() []byte {
	if p.Name == "" {
		p.Name = "example.test/app"
	}
	if p.BuilderID == "" {
		p.BuilderID = DefaultBuilderID
	}
	if p.FinishedOn.IsZero() {
		p.FinishedOn = time.Now().Add(-time.Minute)
	}
	source := map[string]any{"kind": "git"}
	if p.Repository != "" {
		source["repository"] = p.Repository
	}
	if p.Ref != "" {
		source["ref"] = p.Ref
	}
	run := map[string]any{
		"builder":  map[string]any{"id": p.BuilderID},
		"metadata": map[string]any{"startedOn": p.FinishedOn.Add(-time.Minute).UTC().Format(time.RFC3339), "finishedOn": p.FinishedOn.UTC().Format(time.RFC3339)},
	}
	if p.RebuildDigest != "" {
		run["byproducts"] = []any{map[string]any{
			"name": "rebuild", "digest": map[string]string{"sha256": hexOf(p.RebuildDigest)},
			"annotations": map[string]any{"reproduced": p.Reproduced},
		}}
	}
	return marshal(map[string]any{
		"_type":         StatementType,
		"subject":       []any{map[string]any{"name": p.Name, "digest": map[string]string{"sha256": hexOf(p.Digest)}}},
		"predicateType": SLSAProvenance,
		"predicate": map[string]any{
			"buildDefinition": map[string]any{"buildType": buildType, "externalParameters": map[string]any{"source": source}},
			"runDetails":      run,
		},
	})
}

// Verdict describes a rebuild verdict statement to make.
type Verdict struct {
	// Digest is the subject's, RebuiltDigest what the rebuild gave
	// (default Digest), Result its result (default "reproduced").
	Digest, RebuiltDigest, Result string
	// Provenance is the signed statement the rebuild followed (its sha256
	// is recorded); ProvenanceSigner who signed it.
	Provenance       []byte
	ProvenanceSigner Identity
	// RebuilderID defaults to https://rebuild.example.test/v1.
	RebuilderID string
}

// Statement is the verdict as signed JSON.
func (v Verdict) Statement() []byte {
	if v.RebuiltDigest == "" {
		v.RebuiltDigest = v.Digest
	}
	if v.Result == "" {
		v.Result = "reproduced"
	}
	if v.RebuilderID == "" {
		v.RebuilderID = "https://rebuild.example.test/v1"
	}
	sum := sha256.Sum256(v.Provenance)
	return marshal(map[string]any{
		"_type":         StatementType,
		"subject":       []any{map[string]any{"name": "example.test/app", "digest": map[string]string{"sha256": hexOf(v.Digest)}}},
		"predicateType": RebuildVerdict,
		"predicate": map[string]any{
			"rebuilder":     map[string]any{"id": v.RebuilderID},
			"result":        v.Result,
			"rebuiltDigest": v.RebuiltDigest,
			"provenance": map[string]any{
				"predicateType": SLSAProvenance,
				"digest":        map[string]string{"sha256": hex.EncodeToString(sum[:])},
				"signer":        map[string]any{"issuer": v.ProvenanceSigner.Issuer, "subject": v.ProvenanceSigner.Subject},
			},
			"inputs":    map[string]any{"resolvedDependencies": []any{}, "sourceCheckout": map[string]any{"kind": "git", "contextDigest": "sha256:" + strings.Repeat("0", 64)}},
			"rebuiltOn": time.Now().Add(-time.Minute).UTC().Format(time.RFC3339),
		},
	})
}

func hexOf(d string) string { return strings.TrimPrefix(d, "sha256:") }

func marshal(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // maps of strings
	}
	return b
}
