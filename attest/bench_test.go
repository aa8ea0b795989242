package attest

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"

	"github.com/twinforge/twinforge/internal/testenv"

	"github.com/twinforge/twinforge/attest/verify"
	"github.com/twinforge/twinforge/internal/sigstack"
)

// BenchmarkProvenanceAndKeylessSign measures what `twinforge build` adds
// after the build: the provenance statement, then both keyless signatures
// (SignBuild: concurrently) against the real stack (Fulcio certificate,
// RFC 3161 timestamp and Rekor v2 entry for each, and each bundle's
// self-verification). Rekor v2 answers once the entry is in a checkpoint,
// so its batching and checkpoint interval bound the latency.
func BenchmarkProvenanceAndKeylessSign(b *testing.B) {
	st := realStack(b)
	ctx := context.Background()
	s, err := NewKeylessSigner(ctx, KeylessConfig{
		FulcioURL: st.FulcioURL(), TSAURL: st.TSAURL(), RekorURL: st.RekorURL(),
		IDToken:     realToken(b, st, sigstack.Claims{Subject: realEmail, Email: realEmail, Expiry: time.Hour}),
		TrustedRoot: st.TrustedRoot(),
	})
	if err != nil {
		b.Fatal(err)
	}
	_, digest, manifest := testLayout(b)
	info := fixtureBuildInfo(b)
	info.Subject.Digest, info.Rebuild.Digest = digest, digest
	b.ResetTimer()
	for b.Loop() {
		stmt, err := Provenance(info)
		if err != nil {
			b.Fatal(err)
		}
		data, err := MarshalStatement(stmt)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := SignBuild(ctx, s, data, manifest); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyOffline measures Verify of real keyless bundles (Fulcio
// certificate, TSA timestamp, Rekor v2 inclusion proof) against a trusted
// root, with no network.
func BenchmarkVerifyOffline(b *testing.B) {
	st := realStack(b)
	_, digest, manifest := testLayout(b)
	bs := signBoth(b, realSigner(b, st), digest, manifest, true)
	tr, err := verify.LoadTrustedRootJSON(st.TrustedRootJSON())
	if err != nil {
		b.Fatal(err)
	}
	req := verify.Request{
		Digest: digest, ImageManifest: manifest, Provenance: bs.Provenance, Image: bs.Image,
		TrustedRoot: tr, Policy: realPolicy(b, st, "maxAge: 1h"),
	}
	ctx := context.Background()
	b.ResetTimer()
	for b.Loop() {
		if _, err := verify.Verify(ctx, req); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkProvenanceAndKeylessSignTSA is the provenance and keyless
// signing with the services cosign attest-blob can use against this stack
// (Fulcio and the timestamp authority; cosign v2.6.5 cannot write DSSE
// entries to a Rekor v2 log): the like-for-like comparison with
// BenchmarkCosignAttestBlob. Target: ≤ 100 ms.
func BenchmarkProvenanceAndKeylessSignTSA(b *testing.B) {
	st := realStack(b)
	ctx := context.Background()
	s, err := NewKeylessSigner(ctx, KeylessConfig{
		FulcioURL: st.FulcioURL(), TSAURL: st.TSAURL(),
		IDToken:     realToken(b, st, sigstack.Claims{Subject: realEmail, Email: realEmail, Expiry: time.Hour}),
		TrustedRoot: st.TrustedRoot(),
	})
	if err != nil {
		b.Fatal(err)
	}
	_, digest, _ := testLayout(b)
	info := fixtureBuildInfo(b)
	info.Subject.Digest, info.Rebuild.Digest = digest, digest
	b.ResetTimer()
	for b.Loop() {
		stmt, err := Provenance(info)
		if err != nil {
			b.Fatal(err)
		}
		data, err := MarshalStatement(stmt)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := s.SignStatement(ctx, data); err != nil {
			b.Fatal(err)
		}
	}
}

// cosignFiles writes what cosign needs to attest the same statement: the
// predicate, the subject (the manifest) and a signing configuration of the
// stack without its log.
func cosignFiles(b *testing.B, st *sigstack.Stack) (dir, predicate, subject, signingConfig string) {
	b.Helper()
	dir = b.TempDir()
	_, digest, manifest := testLayout(b)
	info := fixtureBuildInfo(b)
	info.Subject.Digest, info.Rebuild.Digest = digest, digest
	stmt, err := Provenance(info)
	if err != nil {
		b.Fatal(err)
	}
	pred, err := protojson.Marshal(stmt.GetPredicate())
	if err != nil {
		b.Fatal(err)
	}
	var cfg map[string]any
	if err := json.Unmarshal(st.SigningConfigJSON(), &cfg); err != nil {
		b.Fatal(err)
	}
	delete(cfg, "rekorTlogUrls")
	cfgJSON, _ := json.Marshal(cfg)
	predicate, subject, signingConfig = filepath.Join(dir, "predicate.json"), filepath.Join(dir, "manifest.json"), filepath.Join(dir, "signing_config.json")
	for p, data := range map[string][]byte{predicate: pred, subject: manifest, signingConfig: cfgJSON, filepath.Join(dir, "trusted_root.json"): st.TrustedRootJSON()} {
		if err := os.WriteFile(p, data, 0o600); err != nil {
			b.Fatal(err)
		}
	}
	return dir, predicate, subject, signingConfig
}

// BenchmarkCosignAttestBlob runs `cosign attest-blob` (the cosign built from
// the pinned module) on the same predicate and subject, keyless through
// the same Fulcio and timestamp authority, in the same run.
func BenchmarkCosignAttestBlob(b *testing.B) {
	st := realStack(b)
	cosign := testenv.Binary(b, "cosign")
	dir, predicate, subject, signingConfig := cosignFiles(b, st)
	token := realToken(b, st, sigstack.Claims{Subject: realEmail, Email: realEmail, Expiry: time.Hour})
	b.ResetTimer()
	for b.Loop() {
		out, err := exec.Command(cosign, "attest-blob", "--predicate", predicate, "--type", "slsaprovenance1",
			"--bundle", filepath.Join(dir, "att.bundle"), "--new-bundle-format", "--signing-config", signingConfig,
			"--trusted-root", filepath.Join(dir, "trusted_root.json"), "--identity-token", token, "--yes", subject).CombinedOutput()
		if err != nil {
			b.Fatalf("cosign attest-blob: %v\n%s", err, out)
		}
	}
}

// BenchmarkCosignVerifyBlobAttestation runs `cosign verify-blob-attestation`
// offline on a bundle twinforge signed (certificate, timestamp and Rekor v2
// entry), against BenchmarkVerifyOffline.
func BenchmarkCosignVerifyBlobAttestation(b *testing.B) {
	st := realStack(b)
	cosign := testenv.Binary(b, "cosign")
	dir := b.TempDir()
	_, digest, manifest := testLayout(b)
	bs := signBoth(b, realSigner(b, st), digest, manifest, true)
	bundleJSON, err := protojson.Marshal(bs.Provenance)
	if err != nil {
		b.Fatal(err)
	}
	bundlePath, subject, root := filepath.Join(dir, "provenance.sigstore.json"), filepath.Join(dir, "manifest.json"), filepath.Join(dir, "trusted_root.json")
	for p, data := range map[string][]byte{bundlePath: bundleJSON, subject: manifest, root: st.TrustedRootJSON()} {
		if err := os.WriteFile(p, data, 0o600); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for b.Loop() {
		out, err := exec.Command(cosign, "verify-blob-attestation", "--bundle", bundlePath, "--new-bundle-format",
			"--trusted-root", root, "--certificate-identity", realEmail, "--certificate-oidc-issuer", st.OIDCIssuer(),
			"--type", "slsaprovenance1", "--insecure-ignore-sct", "--use-signed-timestamps", subject).CombinedOutput()
		if err != nil {
			b.Fatalf("cosign verify-blob-attestation: %v\n%s", err, out)
		}
	}
}
