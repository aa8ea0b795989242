package verify

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	intoto "github.com/in-toto/attestation/go/v1"
	"github.com/sigstore/sigstore-go/pkg/bundle"
	"google.golang.org/protobuf/encoding/protojson"
)

// Rebuild verdicts: an independent rebuilder's signed statement that it
// rebuilt an image from its provenance alone and got the same digest
// (attest/verdict.md documents the predicate).
const (
	// PredicateRebuildVerdict is the predicate type of a rebuild verdict.
	PredicateRebuildVerdict = "https://twinforge.dev/attestations/rebuild/v1"
	// VerdictReproduced is the result of a verdict whose rebuild gave the
	// subject's digest. It is the only result a verdict is signed with.
	VerdictReproduced = "reproduced"
	// VerdictsDir is the directory, under an OCI layout's AttestationsDir,
	// that holds verdict bundles (*.sigstore.json).
	VerdictsDir = "verdicts"
)

// VerdictPredicate is the predicate of a rebuild verdict statement, whose
// subject is the rebuilt image (name and sha256 digest).
type VerdictPredicate struct {
	// Rebuilder is who rebuilt the image and with what.
	Rebuilder VerdictRebuilder `json:"rebuilder"`
	// Result is VerdictReproduced.
	Result string `json:"result"`
	// RebuiltDigest is the manifest digest the rebuild produced
	// ("sha256:<hex>"), equal to the subject's.
	RebuiltDigest string `json:"rebuiltDigest"`
	// Provenance identifies the provenance the rebuild followed.
	Provenance VerdictProvenance `json:"provenance"`
	// Inputs are what the rebuild used.
	Inputs VerdictInputs `json:"inputs"`
	// RebuiltOn is when the rebuild finished.
	RebuiltOn time.Time `json:"rebuiltOn"`
}

// VerdictRebuilder describes the rebuilding platform.
type VerdictRebuilder struct {
	// ID names the rebuilder (twinforge rebuild --rebuilder-id), a URI.
	ID string `json:"id"`
	// BuildKitVersion is the version of the rebuilding buildkitd.
	BuildKitVersion string `json:"buildkitVersion,omitempty"`
	// Runc is the rebuilding daemon's runc version line.
	Runc string `json:"runc,omitempty"`
	// Variations lists how the rebuilding daemon was deliberately varied
	// (snapshotter, CPU set, umask, time zone, hostname, ulimit).
	Variations []string `json:"variations,omitempty"`
}

// VerdictProvenance identifies a provenance statement.
type VerdictProvenance struct {
	// PredicateType is the provenance's predicate type.
	PredicateType string `json:"predicateType"`
	// Digest is the digest set of the signed statement's bytes (the DSSE
	// payload): {"sha256": "<hex>"}.
	Digest map[string]string `json:"digest"`
	// BuildType and BuilderID are copied from the provenance.
	BuildType string `json:"buildType,omitempty"`
	BuilderID string `json:"builderId,omitempty"`
	// Signer is who signed the provenance, as verified by the rebuilder.
	Signer SignerIdentity `json:"signer"`
}

// VerdictInputs are the inputs of a rebuild.
type VerdictInputs struct {
	// ResolvedDependencies are the provenance's resolvedDependencies,
	// copied as recorded (in-toto ResourceDescriptors).
	ResolvedDependencies []json.RawMessage `json:"resolvedDependencies"`
	// SourceCheckout is the source tree the rebuild built from.
	SourceCheckout SourceCheckout `json:"sourceCheckout"`
}

// SourceCheckout is the source tree a rebuild built from.
type SourceCheckout struct {
	// Kind is "git" or "tree", as the provenance's source.
	Kind string `json:"kind"`
	// Repository is where it was cloned from; empty for a local checkout
	// (--source) or a plain tree.
	Repository string `json:"repository,omitempty"`
	// Commit is the checked-out commit (HEAD) and Tree the git tree of
	// the build context at it.
	Commit string `json:"commit,omitempty"`
	Tree   string `json:"tree,omitempty"`
	// ContextDigest is twinforge's digest of the build context sent
	// (hermetic.ContextDigest), equal to the provenance's.
	ContextDigest string `json:"contextDigest"`
}

// ParseVerdict decodes the predicate of a rebuild verdict statement and
// checks its shape. It verifies nothing: Verify does, for verdicts it is
// given.
func ParseVerdict(st *intoto.Statement) (*VerdictPredicate, error) {
	if st.GetPredicateType() != PredicateRebuildVerdict {
		return nil, fmt.Errorf("parsing rebuild verdict: predicate type %q is not %s", st.GetPredicateType(), PredicateRebuildVerdict)
	}
	raw, err := protojson.Marshal(st.GetPredicate())
	if err != nil {
		return nil, fmt.Errorf("parsing rebuild verdict: %w", err)
	}
	var p VerdictPredicate
	if err := json.Unmarshal(raw, &p); err != nil {
		return nil, fmt.Errorf("parsing rebuild verdict: %w", err)
	}
	switch {
	case p.Rebuilder.ID == "":
		return nil, errors.New("parsing rebuild verdict: no rebuilder.id")
	case p.Result == "":
		return nil, errors.New("parsing rebuild verdict: no result")
	case !sha256Digest.MatchString(p.RebuiltDigest):
		return nil, fmt.Errorf("parsing rebuild verdict: rebuiltDigest %q: want sha256:<64 hex digits>", p.RebuiltDigest)
	}
	return &p, nil
}

// VerdictResult is what Verify made of one verdict bundle.
type VerdictResult struct {
	// Signer signed the verdict: verified when Counted, otherwise as the
	// bundle claims (empty when unreadable).
	Signer SignerIdentity `json:"signer,omitzero"`
	// RebuilderID and RebuiltOn are what the verdict says.
	RebuilderID string    `json:"rebuilderId,omitempty"`
	RebuiltOn   time.Time `json:"rebuiltOn,omitzero"`
	// Counted is true when the verdict counts towards the policy.
	Counted bool `json:"counted"`
	// Reason says why a verdict does not count.
	Reason string `json:"reason,omitempty"`
}

// checkRebuildVerdicts counts the verdicts that verify, are signed by one
// of the rebuilder identities, are about the image, say "reproduced" and
// vouch for the provenance being checked (its digest and its signer), and
// refuses when they come from fewer distinct rebuilder identities than the
// policy's count.
//
// What counts is policy identities, not certificate subjects: one party
// whose several subjects match one rebuilder entry counts once, and one
// signer counts for one entry at most. The builder is never its own
// rebuilder: a verdict signed by the provenance's signer does not count,
// and neither does a rebuilder entry the provenance's signer matches.
func checkRebuildVerdicts(res *Result, v *bundleVerifier, verdicts []*bundle.Bundle, req *verdictRequirement) error {
	if req == nil {
		return nil
	}
	rv := *v
	rv.identities = req.identities
	builder := v.builder
	// The rebuilder entries the builder itself matches name no
	// independent party.
	builderEntries := map[int]bool{}
	for _, i := range matchingIdentities(req.identities, builder.summary, builder.identity.PublicKey) {
		builderEntries[i] = true
	}
	provDigest := sha256.Sum256(builder.payload)
	provHex := hex.EncodeToString(provDigest[:])

	// The signers whose verdicts may count, and the rebuilder entries each
	// may count for.
	type candidate struct {
		signer  SignerIdentity
		entries []int
		results []int // indexes into res.RebuildVerdicts
	}
	var candidates []*candidate
	bySigner := map[SignerIdentity]*candidate{}
	for _, b := range verdicts {
		vr := VerdictResult{}
		if info, err := Describe(b); err == nil {
			vr.Signer = info.Signer
		}
		br, err := rv.verify(b, "verdict", nil)
		if err != nil {
			vr.Reason = err.Error()
			var ve *VerificationError
			if errors.As(err, &ve) {
				vr.Reason = ve.Check + ": " + ve.Err.Error()
			}
			res.RebuildVerdicts = append(res.RebuildVerdicts, vr)
			continue
		}
		vr.Signer = br.identity
		pred, err := ParseVerdict(br.statement)
		if err != nil {
			vr.Reason = err.Error()
			res.RebuildVerdicts = append(res.RebuildVerdicts, vr)
			continue
		}
		vr.RebuilderID, vr.RebuiltOn = pred.Rebuilder.ID, pred.RebuiltOn
		entries := slices.DeleteFunc(slices.Clone(br.matched), func(i int) bool { return builderEntries[i] })
		switch {
		case pred.Result != VerdictReproduced:
			vr.Reason = fmt.Sprintf("result %q, not %s", pred.Result, VerdictReproduced)
		case pred.RebuiltDigest != res.Digest:
			vr.Reason = fmt.Sprintf("the rebuild gave %s, not %s", pred.RebuiltDigest, res.Digest)
		case pred.Provenance.Digest["sha256"] != provHex:
			vr.Reason = fmt.Sprintf("it vouches for another provenance (sha256:%s), not the one verified (sha256:%s)", pred.Provenance.Digest["sha256"], provHex)
		case pred.Provenance.Signer.who() != builder.identity.who():
			vr.Reason = fmt.Sprintf("it vouches for a provenance signed by %s, not by %s", pred.Provenance.Signer, builder.identity)
		case br.identity.who() == builder.identity.who():
			vr.Reason = "it is signed by the provenance's own signer: a builder is not its own rebuilder"
		case len(entries) == 0:
			vr.Reason = "the rebuilder identities it matches also match the provenance's signer: a builder is not its own rebuilder"
		default:
			c := bySigner[br.identity.who()]
			if c == nil {
				c = &candidate{signer: br.identity}
				bySigner[br.identity.who()] = c
				candidates = append(candidates, c)
			}
			for _, e := range entries {
				if !slices.Contains(c.entries, e) {
					c.entries = append(c.entries, e)
				}
			}
			c.results = append(c.results, len(res.RebuildVerdicts))
		}
		res.RebuildVerdicts = append(res.RebuildVerdicts, vr)
	}

	// Each rebuilder entry counts once, each signer once: the most
	// verdicts that can count so is a maximum matching of signers to
	// entries (augmenting paths; both sides are small).
	entryOf := map[int]int{} // entry -> candidate
	var augment func(c int, seen map[int]bool) bool
	augment = func(c int, seen map[int]bool) bool {
		for _, e := range candidates[c].entries {
			if seen[e] {
				continue
			}
			seen[e] = true
			if other, taken := entryOf[e]; !taken || augment(other, seen) {
				entryOf[e] = c
				return true
			}
		}
		return false
	}
	counted := map[int]bool{}
	for c := range candidates {
		augment(c, map[int]bool{})
	}
	for _, c := range entryOf {
		counted[c] = true
	}
	for ci, c := range candidates {
		for k, ri := range c.results {
			switch {
			case counted[ci] && k == 0:
				res.RebuildVerdicts[ri].Counted = true
			case counted[ci]:
				res.RebuildVerdicts[ri].Reason = "another verdict of the same rebuilder counted already"
			default:
				res.RebuildVerdicts[ri].Reason = "the rebuilder identities it matches are counted for other signers already: one party counts once"
			}
		}
		if counted[ci] {
			res.ReproducedBy = append(res.ReproducedBy, c.signer)
		}
	}
	if len(res.ReproducedBy) >= req.count {
		return nil
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%d of the %d rebuild verdicts required from distinct trusted rebuilders (%s)", len(res.ReproducedBy), req.count, strings.Join(describeIdentities(req.identities), "; "))
	switch len(verdicts) {
	case 0:
		b.WriteString(": the image has no rebuild verdicts")
	default:
		fmt.Fprintf(&b, "; %d verdict%s looked at:", len(verdicts), plural(len(verdicts)))
		for _, vr := range res.RebuildVerdicts {
			who := vr.Signer.String()
			if vr.Signer == (SignerIdentity{}) {
				who = "unknown signer"
			}
			if vr.Counted {
				fmt.Fprintf(&b, " [%s: counted]", who)
			} else {
				fmt.Fprintf(&b, " [%s: %s]", who, vr.Reason)
			}
		}
	}
	return refuse(CheckReproduced, errors.New(b.String()))
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}
