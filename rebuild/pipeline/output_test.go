package pipeline

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/twinforge/twinforge/attest/verify"
	"github.com/twinforge/twinforge/builder"
	"github.com/twinforge/twinforge/distribute"
	"github.com/twinforge/twinforge/internal/golden"
	"github.com/twinforge/twinforge/isolation"
	"github.com/twinforge/twinforge/rebuild"
	"github.com/twinforge/twinforge/rebuild/imagediff"
)

func TestOutput(t *testing.T) {
	build := &builder.Result{Digest: "sha256:b", MediaType: "application/vnd.oci.image.manifest.v1+json", Platform: "linux/amd64",
		OCILayout: "out/hello", Duration: 2 * time.Second, Builder: isolation.Info{Name: "build", BuildKitVersion: "v0.26.0"}}
	rebuilt := &builder.Result{Digest: "sha256:r", OCILayout: "out/hello-rebuild", Duration: time.Second}
	proof := &rebuild.Result{Build: build, Rebuild: rebuilt, Strict: rebuilt, Strictness: rebuild.StrictWarn,
		Variations: []rebuild.Variation{{Name: "hostname", Build: "a", Rebuild: "b", Class: rebuild.Deciding}, {Name: "umask", Build: "0022", Rebuild: "0077", Class: rebuild.Pinned}},
		Warnings:   []rebuild.Warning{{Path: "/whoami", Variation: "umask", Message: "mode depends on the umask"}}}
	reproduced := &rebuild.Result{Build: build, Rebuild: build, Strictness: rebuild.StrictOff}
	push := &distribute.PushResult{Repository: "registry.example/team/hello", Digest: v1.Hash{Algorithm: "sha256", Hex: "b"}, Tag: "1.0",
		Referrers: []distribute.Referrer{{ArtifactType: distribute.SigstoreBundleType}}, ReferrersMode: "api"}
	signer := verify.SignerIdentity{Subject: "ci@example.test", Issuer: "https://issuer.example"}
	for _, tc := range []struct {
		name   string
		res    *Result
		method string
		err    error
	}{
		{"not-reproduced", &Result{Build: build}, "none", nil},
		{"reproduced-signed-pushed", &Result{Build: build, Proof: reproduced, BundleFiles: []string{"out/hello/attestations/provenance.sigstore.json"},
			SBOMFiles: []string{"out/hello/attestations/sbom.spdx.sigstore.json"}, Bundles: verify.Bundles{Provenance: nil}, Signer: signer, Push: push,
			Verdict: nil}, "keyless", nil},
		{"not-reproducible", &Result{Build: build, Proof: proof}, "key", &rebuild.DiffError{Report: &imagediff.Report{}}},
		{"strict-failure", &Result{Build: build, Proof: reproduced}, "key", &rebuild.StrictFailure{Build: build, Err: errors.New("step failed")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := NewOutput(tc.res, tc.method, tc.err)
			var text bytes.Buffer
			if err := out.WriteText(&text); err != nil {
				t.Fatal(err)
			}
			golden.Check(t, "output/"+tc.name+".txt", text.Bytes())
			doc, err := json.MarshalIndent(out, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			golden.Check(t, "output/"+tc.name+".json", append(doc, '\n'))
		})
	}
}

func TestIdentityString(t *testing.T) {
	for _, tc := range []struct {
		id   verify.SignerIdentity
		want string
	}{
		{verify.SignerIdentity{PublicKey: "abc"}, "key abc"},
		{verify.SignerIdentity{Subject: "s", Issuer: "i"}, "s (issuer i)"},
	} {
		if got := IdentityString(tc.id); got != tc.want {
			t.Errorf("IdentityString(%+v) = %q, want %q", tc.id, got, tc.want)
		}
	}
}
