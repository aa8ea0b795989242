package attest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sigstore/sigstore-go/pkg/bundle"

	"github.com/twinforge/twinforge/attest/verify"
)

// signerAs signs keylessly against a virtual stack as subject.
func signerAs(t testing.TB, v *virtualStack, subject string) Signer {
	t.Helper()
	s, err := NewKeylessSigner(context.Background(), KeylessConfig{
		FulcioURL: v.fulcio.URL, TSAURL: v.tsa.URL, IDToken: v.token(subject, "sigstore", time.Hour), TrustedRoot: v.trusted,
	}, WithRetries(0))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// verdictInfo is a verdict for the provenance statement of digest.
func verdictInfo(t testing.TB, digest string) VerdictInfo {
	t.Helper()
	payload := statementFor(t, digest, true)
	st, err := verify.ParseStatement(payload)
	if err != nil {
		t.Fatal(err)
	}
	return VerdictInfo{
		Subject:           Subject{Name: "registry.example.test/team/hello", Digest: digest},
		RebuiltDigest:     digest,
		RebuilderID:       "https://rebuilder.example.test/v1",
		Rebuilder:         Builder{BuildKitVersion: "v0.34.2", Runc: "runc version 1.1.15+ds1", Snapshotter: "native"},
		Variations:        []string{"snapshotter=native", "umask=027"},
		Provenance:        st,
		ProvenancePayload: payload,
		ProvenanceSigner:  verify.SignerIdentity{Issuer: "https://oidc.example.test", Subject: testSubject},
		Checkout:          verify.SourceCheckout{Kind: "git", Commit: "7d3b69493aecdf48986c136bccbd1aedc40dcdd7", Tree: "6a36d5bfb7af47d8f36a3711ecbf67e040eea412", ContextDigest: "sha256:6fcc59f0206bec21bc26c8271c97cec7ae9bd7b366a8a0729d337a3b69e71020"},
		RebuiltOn:         time.Date(2026, 11, 25, 14, 2, 11, 0, time.UTC),
	}
}

func TestRebuildVerdictStatement(t *testing.T) {
	info := verdictInfo(t, testDigest)
	st, err := RebuildVerdict(info)
	if err != nil {
		t.Fatal(err)
	}
	if st.GetPredicateType() != verify.PredicateRebuildVerdict || len(st.GetSubject()) != 1 || "sha256:"+st.GetSubject()[0].GetDigest()["sha256"] != testDigest {
		t.Fatalf("statement = %v", st)
	}
	// What is signed round-trips through the parser a verifier uses.
	data, err := MarshalStatement(st)
	if err != nil {
		t.Fatal(err)
	}
	back, err := verify.ParseStatement(data)
	if err != nil {
		t.Fatal(err)
	}
	p, err := verify.ParseVerdict(back)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(info.ProvenancePayload)
	prov, _ := verify.ProvenancePredicate(info.Provenance)
	switch {
	case p.Result != verify.VerdictReproduced, p.RebuiltDigest != testDigest, p.Rebuilder.ID != info.RebuilderID,
		p.Rebuilder.BuildKitVersion != "v0.34.2", p.Rebuilder.Runc != info.Rebuilder.Runc, len(p.Rebuilder.Variations) != 2:
		t.Errorf("rebuilder/result = %+v", p)
	case p.Provenance.Digest["sha256"] != hex.EncodeToString(sum[:]), p.Provenance.BuildType != BuildType,
		p.Provenance.BuilderID != testBuilderID, p.Provenance.Signer != info.ProvenanceSigner:
		t.Errorf("provenance = %+v", p.Provenance)
	case len(p.Inputs.ResolvedDependencies) != len(prov.GetBuildDefinition().GetResolvedDependencies()),
		p.Inputs.SourceCheckout != info.Checkout, !p.RebuiltOn.Equal(info.RebuiltOn):
		t.Errorf("inputs = %+v", p.Inputs)
	}
	if !bytes.Contains(data, []byte(`"name":"source"`)) || !bytes.Contains(data, []byte(`"gitCommit"`)) {
		t.Errorf("the provenance's resolved dependencies are not copied:\n%s", data)
	}

	refusals := []struct {
		name string
		edit func(*VerdictInfo)
		want string
	}{
		{"rebuild differs", func(i *VerdictInfo) { i.RebuiltDigest = otherDigest }, "only signed for a reproduced image"},
		{"provenance about another image", func(i *VerdictInfo) { i.Subject.Digest, i.RebuiltDigest = otherDigest, otherDigest }, "not about"},
		{"no provenance", func(i *VerdictInfo) { i.Provenance = nil }, "no provenance"},
		{"no time", func(i *VerdictInfo) { i.RebuiltOn = time.Time{} }, "no rebuild time"},
		{"no subject name", func(i *VerdictInfo) { i.Subject.Name = "" }, "no name"},
	}
	for _, tt := range refusals {
		t.Run(tt.name, func(t *testing.T) {
			i := verdictInfo(t, testDigest)
			tt.edit(&i)
			if _, err := RebuildVerdict(i); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error = %v, want %q", err, tt.want)
			}
		})
	}
}

// Verify counts verified "reproduced" verdicts about the image from
// distinct trusted rebuilders, and nothing else.
func TestVerifyRebuildVerdicts(t *testing.T) {
	ctx := context.Background()
	v := newVirtualStack(t)
	dir, digest, manifest := testLayout(t)
	_, otherImage, _ := testLayout(t)
	bs := signBoth(t, virtualSigner(t, v), digest, manifest, true)

	sign := func(subject string, info VerdictInfo, edit func([]byte) []byte) *bundle.Bundle {
		t.Helper()
		st, err := RebuildVerdict(info)
		if err != nil {
			t.Fatal(err)
		}
		data, err := MarshalStatement(st)
		if err != nil {
			t.Fatal(err)
		}
		if edit != nil {
			data = edit(data)
		}
		b, err := signerAs(t, v, subject).SignStatement(ctx, data)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	// Verdicts follow the provenance verified: its signed bytes and signer.
	followed := func(edit func(*VerdictInfo)) VerdictInfo {
		t.Helper()
		i := verdictInfo(t, digest)
		info, err := verify.Describe(bs.Provenance)
		if err != nil {
			t.Fatal(err)
		}
		if i.Provenance, err = verify.ParseStatement(info.Payload); err != nil {
			t.Fatal(err)
		}
		i.ProvenancePayload, i.ProvenanceSigner = info.Payload, info.Signer
		if edit != nil {
			edit(&i)
		}
		return i
	}
	a := sign("a@rebuild.test", followed(nil), nil)
	a2 := sign("a@rebuild.test", followed(nil), nil)
	b := sign("b@rebuild.test", followed(nil), nil)
	c := sign("c@rebuild.test", followed(nil), nil)
	mallory := sign("mallory@rebuild.test", followed(nil), nil)
	other := sign("b@rebuild.test", verdictInfo(t, otherImage), nil)
	failed := sign("b@rebuild.test", followed(nil), func(d []byte) []byte {
		return bytes.Replace(d, []byte(`"result":"reproduced"`), []byte(`"result":"differs"`), 1)
	})
	// About the same image, but following another provenance of it, or
	// naming another signer of this one.
	otherProvenance := sign("b@rebuild.test", verdictInfo(t, digest), nil)
	otherSigner := sign("b@rebuild.test", followed(func(i *VerdictInfo) { i.ProvenanceSigner.Subject = "someone@example.test" }), nil)
	// The builder vouching for its own build.
	self := sign(testSubject, followed(nil), nil)

	provByRebuilder, err := signerAs(t, v, "a@rebuild.test").SignStatement(ctx, statementFor(t, digest, true))
	if err != nil {
		t.Fatal(err)
	}

	// Rebuilders a and b, each an identity of its own; c is a second
	// subject of b's.
	policy := func(count int) *verify.Policy {
		return virtualPolicy(t, v, "requireReproduced:", "  count: "+string(rune('0'+count)), "  by:",
			"    - issuer: "+v.issuer, "      subject: a@rebuild.test",
			"    - issuer: "+v.issuer, "      subjectRegExp: '[bc]@rebuild\\.test'")
	}
	// One rebuilder entry that names the builder too.
	lax := virtualPolicy(t, v, "requireReproduced:", "  count: 1", "  by:",
		"    - issuer: "+v.issuer, "      subjectRegExp: '.*@(rebuild|example)\\.test'")
	tests := []struct {
		name     string
		verdicts []*bundle.Bundle
		count    int
		counted  int
		reasons  []string // of the refusal, or of verdicts not counted
	}{
		{"none", nil, 1, 0, []string{"no rebuild verdicts"}},
		{"one", []*bundle.Bundle{a}, 1, 1, nil},
		{"two distinct", []*bundle.Bundle{a, b}, 2, 2, nil},
		{"the same rebuilder twice", []*bundle.Bundle{a, a2}, 2, 1, []string{"1 of the 2", "same rebuilder"}},
		{"two subjects of one party", []*bundle.Bundle{b, c}, 2, 1, []string{"1 of the 2", "one party counts once"}},
		{"two subjects of one party and another", []*bundle.Bundle{b, c, a}, 2, 2, nil},
		{"the builder vouching for itself", []*bundle.Bundle{self}, 1, 0, []string{testSubject}},
		{"another provenance of the image", []*bundle.Bundle{otherProvenance}, 1, 0, []string{"another provenance"}},
		{"another signer of the provenance", []*bundle.Bundle{otherSigner}, 1, 0, []string{"someone@example.test"}},
		{"an untrusted rebuilder", []*bundle.Bundle{a, mallory}, 2, 1, []string{"mallory@rebuild.test", "identity"}},
		{"a verdict about another image", []*bundle.Bundle{a, other}, 2, 1, []string{"subject"}},
		{"a verdict that is not reproduced", []*bundle.Bundle{a, failed}, 2, 1, []string{`"differs"`}},
		{"untrusted ones do not block", []*bundle.Bundle{mallory, other, a}, 1, 1, nil},
		{"a provenance is no verdict", []*bundle.Bundle{provByRebuilder}, 1, 0, []string{"predicate type"}},
	}
	// A rebuilder entry the builder matches names no independent party,
	// whoever of it signs.
	if _, err := verify.Verify(ctx, verify.Request{Digest: digest, Provenance: bs.Provenance, Verdicts: []*bundle.Bundle{self, a}, TrustedRoot: v.trusted, Policy: lax}); err == nil ||
		!strings.Contains(err.Error(), "also match the provenance's signer") {
		t.Errorf("a rebuilder identity that names the builder counted: %v", err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := verify.Verify(ctx, verify.Request{Digest: digest, ImageManifest: manifest, Provenance: bs.Provenance, Image: bs.Image,
				Verdicts: tt.verdicts, TrustedRoot: v.trusted, Policy: policy(tt.count)})
			if tt.counted < tt.count {
				wantCheck(t, err, verify.CheckReproduced)
				for _, r := range tt.reasons {
					if !strings.Contains(err.Error(), r) {
						t.Errorf("refusal %q does not mention %q", err, r)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(res.ReproducedBy) != tt.counted || len(res.RebuildVerdicts) != len(tt.verdicts) {
				t.Errorf("reproduced by %v, verdicts %+v", res.ReproducedBy, res.RebuildVerdicts)
			}
			for _, vr := range res.RebuildVerdicts {
				if vr.Counted && (vr.RebuilderID != "https://rebuilder.example.test/v1" || vr.Reason != "") {
					t.Errorf("counted verdict = %+v", vr)
				}
				if !vr.Counted && vr.Reason == "" {
					t.Errorf("uncounted verdict without a reason: %+v", vr)
				}
			}
		})
	}

	// Without requireReproduced, verdicts are not looked at.
	res, err := verify.Verify(ctx, verify.Request{Digest: digest, Provenance: bs.Provenance, Verdicts: []*bundle.Bundle{mallory}, TrustedRoot: v.trusted, Policy: virtualPolicy(t, v)})
	if err != nil || len(res.RebuildVerdicts) != 0 {
		t.Errorf("verdicts looked at without the policy asking: %v %+v", err, res)
	}

	// Beside a layout, verdicts are files of their own.
	if got, err := verify.ReadVerdicts(dir); err != nil || len(got) != 0 {
		t.Fatalf("ReadVerdicts of a layout without verdicts = %v, %v", got, err)
	}
	pa, err := verify.WriteVerdict(dir, a)
	if err != nil {
		t.Fatal(err)
	}
	pb, err := verify.WriteVerdict(dir, b)
	if err != nil || pa == pb || filepath.Dir(pa) != filepath.Join(dir, verify.AttestationsDir, verify.VerdictsDir) {
		t.Fatalf("WriteVerdict = %s, %s, %v", pa, pb, err)
	}
	if again, err := verify.WriteVerdict(dir, a); err != nil || again != pa {
		t.Errorf("writing the same verdict again = %s, %v", again, err)
	}
	got, err := verify.ReadVerdicts(dir)
	if err != nil || len(got) != 2 {
		t.Fatalf("ReadVerdicts = %d, %v", len(got), err)
	}
	if _, err := verify.Verify(ctx, verify.Request{Digest: digest, Provenance: bs.Provenance, Verdicts: got, TrustedRoot: v.trusted, Policy: policy(2)}); err != nil {
		t.Errorf("verdicts read back: %v", err)
	}
	if _, err := verify.WriteVerdict(t.TempDir(), a); err == nil {
		t.Error("WriteVerdict into a directory that is no layout succeeded")
	}
}
