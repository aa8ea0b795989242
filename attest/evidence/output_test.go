package evidence

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twinforge/twinforge/attest/verify"
	"github.com/twinforge/twinforge/distribute/release"
	"github.com/twinforge/twinforge/internal/golden"
)

func TestReportText(t *testing.T) {
	signer := verify.SignerIdentity{Subject: "ci@example.test", Issuer: "https://issuer.example"}
	res := &verify.Result{Digest: "sha256:aa", Identity: signer, ImageSigned: true, ImageIdentity: signer, TransparencyLogEntries: 1,
		Timestamps: []verify.VerifiedTimestamp{{Time: time.Unix(1764078001, 0), Kind: "rfc3161", URI: "https://tsa.example"}},
		BuildType:  "https://twinforge.dev/build/v1", BuilderID: "https://ci.example", SourceRepository: "https://git.example/hello", SourceRef: "refs/heads/main",
		Reproduced: true, RebuildDigest: "sha256:aa", FinishedOn: time.Unix(1764078000, 0),
		RebuildVerdicts: []verify.VerdictResult{{Counted: true, Signer: signer, RebuilderID: "https://rebuild.example/v1", RebuiltOn: time.Unix(1764079000, 0)}, {}},
		ReproducedBy:    []verify.SignerIdentity{signer}}
	for _, tc := range []struct {
		name string
		rep  Report
	}{
		{"released", Report{Verified: true, Image: "registry.example/team/hello@sha256:aa", ResolvedFrom: "registry.example/team/hello:1.0", Policy: "policy.yaml",
			RequiredVerdicts: 1, Release: &release.Target{Repository: "team/hello", Tag: "1.0", Role: "team"}, Result: res}},
		{"unsigned-image", Report{Verified: true, Image: "out/hello", Policy: "policy.yaml", Result: &verify.Result{Digest: "sha256:bb", TransparencyLogEntries: 2}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var b bytes.Buffer
			if err := tc.rep.WriteText(&b); err != nil {
				t.Fatal(err)
			}
			golden.Check(t, "report-"+tc.name+".txt", b.Bytes())
		})
	}
}

func TestCheckSettings(t *testing.T) {
	dir := t.TempDir()
	policy := filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(policy, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		check Check
		want  string
	}{
		{"root and TUF", Check{TrustedRootFile: "root.json", TUFURL: "https://tuf.example"}, "give --trusted-root or --tuf-url, not both"},
		{"TUF without root", Check{TUFURL: "https://tuf.example"}, "--tuf-url needs --tuf-root: the initial root.json to trust"},
		{"TUF cache alone", Check{TUFCacheDir: dir}, "--tuf-root and --tuf-cache go with --tuf-url"},
		{"missing policy", Check{PolicyFile: filepath.Join(dir, "nope")}, ""},
		{"policy that does not parse", Check{PolicyFile: policy}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.check.Run(context.Background())
			if !errors.Is(err, ErrInvalidRequest) || !strings.HasPrefix(err.Error(), tc.want) || strings.Contains(err.Error(), ErrInvalidRequest.Error()) {
				t.Fatalf("Run error = %v; want one wrapping ErrInvalidRequest starting %q, its message unchanged", err, tc.want)
			}
		})
	}
}
