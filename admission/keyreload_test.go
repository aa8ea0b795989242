package admission

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/sigstore/sigstore-go/pkg/bundle"

	"github.com/twinforge/twinforge/attest"
	"github.com/twinforge/twinforge/attest/verify"
)

// A policy's key file replaced (a compromised key rotated out) is seen by
// polling alone, like the policy itself: the image signed with the old key
// is denied from then on, cached or not, without a restart. Rebuilder keys
// count too.
func TestReplacedKeyFileRefusedWithoutRestart(t *testing.T) {
	for _, which := range []string{"identities", "rebuilders"} {
		t.Run(which, func(t *testing.T) {
			reg := newMemRegistry(t)
			builder, old, next := newTestKey(t), newTestKey(t), newTestKey(t)
			dir := t.TempDir()
			keyFile := filepath.Join(dir, "trusted.pub")
			copyFile(t, old.pub, keyFile)
			policy := filepath.Join(dir, "policy.yaml")
			var good pushed
			if which == "identities" {
				good = signedImage(t, reg.host, "team/app", "v1", old.signer(t))
				writeTestFile(t, policy, fmt.Sprintf("apiVersion: twinforge.dev/v2\nkind: Policy\nidentities:\n  - publicKey: %q\nrequireSignedTimestamp: false\nrequireTransparencyLog: false\n", keyFile))
			} else {
				good = imageWithVerdict(t, reg, "team/app", builder, old)
				writeTestFile(t, policy, fmt.Sprintf("apiVersion: twinforge.dev/v2\nkind: Policy\nidentities:\n  - publicKey: %q\nrequireSignedTimestamp: false\nrequireTransparencyLog: false\nrequireReproduced:\n  by:\n    - publicKey: %q\n", builder.pub, keyFile))
			}
			wh := newTestWebhook(t, Source{PolicyFile: policy}, WithPollInterval(20*time.Millisecond))
			if resp := decide(t, wh, "default", good.pinned); !resp.Allowed {
				t.Fatalf("before the rotation: %s", message(resp))
			}
			copyFile(t, next.pub, keyFile)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			for {
				resp := decide(t, wh, "default", good.pinned)
				if !resp.Allowed {
					t.Logf("after the rotation: %s", message(resp))
					return
				}
				if ctx.Err() != nil {
					t.Fatal("an image signed with the replaced key is still admitted: the key file was never read again")
				}
				time.Sleep(20 * time.Millisecond)
			}
		})
	}
}

// imageWithVerdict pushes an image whose provenance builder signed, with
// a rebuild verdict rebuilder signed.
func imageWithVerdict(t *testing.T, reg *memRegistry, repo string, builder, rebuilder testKey) pushed {
	t.Helper()
	ctx := context.Background()
	img, d, m := randomImage(t)
	name := reg.host + "/" + repo
	payload := provenance(t, name, d, true)
	bs, err := attest.SignBuild(ctx, builder.signer(t), payload, m)
	if err != nil {
		t.Fatal(err)
	}
	vb := signVerdict(t, rebuilder, name, d, payload, bs.Provenance)
	return push(t, reg.host, repo, "v1", img, bundleArtifacts(t, bs.Provenance, bs.Image, vb))
}

// signVerdict is a "reproduced" rebuild verdict about digest, following
// the provenance payload prov signed, signed by rebuilder.
func signVerdict(t *testing.T, rebuilder testKey, name, digest string, payload []byte, prov *bundle.Bundle) *bundle.Bundle {
	t.Helper()
	st, err := verify.ParseStatement(payload)
	if err != nil {
		t.Fatal(err)
	}
	info, err := verify.Describe(prov)
	if err != nil {
		t.Fatal(err)
	}
	v, err := attest.RebuildVerdict(attest.VerdictInfo{
		Subject: attest.Subject{Name: name, Digest: digest}, RebuiltDigest: digest,
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
	vb, err := rebuilder.signer(t).SignStatement(context.Background(), data)
	if err != nil {
		t.Fatal(err)
	}
	return vb
}

func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	writeTestFile(t, dst, string(data))
}
