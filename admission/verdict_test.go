package admission

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twinforge/twinforge/attest"
	"github.com/twinforge/twinforge/attest/verify"
	"github.com/twinforge/twinforge/distribute"
)

// TestRebuildVerdicts: a policy that requires independent rebuild verdicts
// is enforced as `twinforge verify` enforces it: the verdicts attached to
// the image as referrers count, when signed by a trusted rebuilder.
func TestRebuildVerdicts(t *testing.T) {
	ctx := context.Background()
	reg := newMemRegistry(t)
	builder, rebuilder := newTestKey(t), newTestKey(t)
	dir := t.TempDir()
	policy := dir + "/policy.yaml"
	writeTestFile(t, policy, fmt.Sprintf(`apiVersion: twinforge.dev/v2
kind: Policy
identities:
  - publicKey: %q
requireReproduced:
  by:
    - publicKey: %q
requireSignedTimestamp: false
requireTransparencyLog: false
`, builder.pub, rebuilder.pub))

	// pushWithVerdict pushes a signed image, with a verdict signed by
	// verdictKey when it is set.
	pushWithVerdict := func(repo string, verdictKey *testKey) pushed {
		img, d, m := randomImage(t)
		name := reg.host + "/" + repo
		payload := provenance(t, name, d, true)
		bs, err := attest.SignBuild(ctx, builder.signer(t), payload, m)
		if err != nil {
			t.Fatal(err)
		}
		arts := bundleArtifacts(t, bs.Provenance, bs.Image)
		if verdictKey != nil {
			st, err := verify.ParseStatement(payload)
			if err != nil {
				t.Fatal(err)
			}
			info, err := verify.Describe(bs.Provenance)
			if err != nil {
				t.Fatal(err)
			}
			v, err := attest.RebuildVerdict(attest.VerdictInfo{
				Subject: attest.Subject{Name: name, Digest: d}, RebuiltDigest: d,
				Rebuilder:  attest.Builder{BuildKitVersion: "v0.34.2", Snapshotter: "native"},
				Provenance: st, ProvenancePayload: payload, ProvenanceSigner: info.Signer,
				RebuiltOn: time.Now(),
			})
			if err != nil {
				t.Fatal(err)
			}
			data, err := attest.MarshalStatement(v)
			if err != nil {
				t.Fatal(err)
			}
			vb, err := verdictKey.signer(t).SignStatement(ctx, data)
			if err != nil {
				t.Fatal(err)
			}
			arts = append(arts, bundleArtifacts(t, vb)...)
		}
		return push(t, reg.host, repo, "v1", img, arts)
	}
	verified := pushWithVerdict("team/verified", &rebuilder)
	selfVouched := pushWithVerdict("team/self", &builder)
	none := pushWithVerdict("team/none", nil)

	wh := newTestWebhook(t, Source{PolicyFile: policy})
	if resp := decide(t, wh, "default", verified.tag); !resp.Allowed {
		t.Fatalf("an image with a trusted rebuild verdict was denied: %s", message(resp))
	}
	for _, p := range []pushed{selfVouched, none} {
		resp := decide(t, wh, "default", p.tag)
		if resp.Allowed || !strings.Contains(message(resp), `check "`+verify.CheckReproduced+`"`) {
			t.Fatalf("%s: allowed %v: %s", p.tag, resp.Allowed, message(resp))
		}
	}
}

// bundleArtifacts are bundles as referrers, annotated as twinforge pushes
// them.
func bundleArtifacts(t testing.TB, bundles ...interface{ MarshalJSON() ([]byte, error) }) []distribute.Artifact {
	t.Helper()
	var out []distribute.Artifact
	for _, b := range bundles {
		data, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, distribute.Artifact{ArtifactType: verify.BundleArtifactType, Data: data})
	}
	return out
}
