package attest

import (
	"context"
	"testing"
	"time"

	"github.com/twinforge/twinforge/internal/sigstack"
)

// BenchmarkProvenanceAndKeylessSign measures what `twinforge build` adds
// after the build: the provenance statement, then both keyless signatures
// (SignBuild: concurrently) against the real stack (Fulcio certificate,
// RFC 3161 timestamp and Rekor v2 entry for each, and each bundle's
// self-verification). Rekor v2 answers once the entry is in a checkpoint:
// with the stack's 1s checkpoint interval that wait dominates.
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
	tr, err := LoadTrustedRootJSON(st.TrustedRootJSON())
	if err != nil {
		b.Fatal(err)
	}
	req := VerifyRequest{
		Digest: digest, ImageManifest: manifest, Provenance: bs.Provenance, Image: bs.Image,
		TrustedRoot: tr, Policy: realPolicy(b, st, "requireReproduced: true", "maxAge: 1h"),
	}
	ctx := context.Background()
	b.ResetTimer()
	for b.Loop() {
		if _, err := Verify(ctx, req); err != nil {
			b.Fatal(err)
		}
	}
}
