package attest

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	protobundle "github.com/sigstore/protobuf-specs/gen/pb-go/bundle/v1"
	"github.com/sigstore/sigstore-go/pkg/bundle"
	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore-go/pkg/sign"
	"google.golang.org/protobuf/proto"

	"github.com/twinforge/twinforge/attest/verify"
)

const testSubject = "ci@example.test"

// virtualSigner signs keylessly against a virtual stack with its TSA.
func virtualSigner(t testing.TB, v *virtualStack) Signer {
	t.Helper()
	s, err := NewKeylessSigner(context.Background(), KeylessConfig{
		FulcioURL:   v.fulcio.URL,
		TSAURL:      v.tsa.URL,
		IDToken:     v.token(testSubject, "sigstore", time.Hour),
		TrustedRoot: v.trusted,
	}, WithRetries(0))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// virtualPolicy trusts the stack's identity; the virtual stack has no log.
func virtualPolicy(t testing.TB, v *virtualStack, extra ...string) *verify.Policy {
	return mustPolicy(t, policyDoc([]string{certIdentity(v.issuer, testSubject)}, append([]string{"requireTransparencyLog: false"}, extra...)...))
}

func TestKeylessSignVerifyVirtual(t *testing.T) {
	v := newVirtualStack(t)
	dir, digest, manifest := testLayout(t)
	bs := signBoth(t, virtualSigner(t, v), digest, manifest, true)
	if err := verify.WriteBundles(dir, bs); err != nil {
		t.Fatal(err)
	}
	read, err := verify.ReadBundles(dir)
	if err != nil {
		t.Fatal(err)
	}
	got, err := verify.ReadManifest(dir, digest)
	if err != nil || !bytes.Equal(got, manifest) {
		t.Fatalf("ReadManifest = %v", err)
	}
	res, err := verify.Verify(context.Background(), verify.Request{
		Digest: digest, ImageManifest: got, Provenance: read.Provenance, Image: read.Image,
		TrustedRoot: v.trusted, Policy: virtualPolicy(t, v, "maxAge: 1h",
			"sourceRepositories: [https://git.example.test/team/*]", "builderIDs: ['"+testBuilderID+"']"),
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Identity != (verify.SignerIdentity{Issuer: v.issuer, Subject: testSubject}) || !res.ImageSigned || res.ImageIdentity != res.Identity {
		t.Errorf("identities = %+v / %+v", res.Identity, res.ImageIdentity)
	}
	if !res.Reproduced || res.BuilderID != testBuilderID || res.SourceRepository != "https://git.example.test/team/hello.git" || res.BuildType != BuildType {
		t.Errorf("result = %+v", res)
	}
	if len(res.Timestamps) != 1 || res.Timestamps[0].Kind != "timestamp-authority" || time.Since(res.Timestamps[0].Time) > time.Hour {
		t.Errorf("timestamps = %+v", res.Timestamps)
	}
	if res.Statement == nil || res.Provenance == nil {
		t.Error("no statement in result")
	}
	// Without the manifest, the image signature is checked over the digest.
	if _, err := verify.Verify(context.Background(), verify.Request{Digest: digest, Provenance: read.Provenance, Image: read.Image, TrustedRoot: v.trusted, Policy: virtualPolicy(t, v)}); err != nil {
		t.Errorf("verify without manifest: %v", err)
	}
}

// mutate returns a changed copy of a bundle.
func mutate(t testing.TB, b *bundle.Bundle, f func(*protobundle.Bundle)) *bundle.Bundle {
	t.Helper()
	pb := proto.Clone(b.Bundle).(*protobundle.Bundle)
	f(pb)
	nb, err := bundle.NewBundle(pb)
	if err != nil {
		t.Fatal(err)
	}
	return nb
}

// certOnlyBundle signs with a virtual Fulcio certificate only: no
// timestamp, no log entry.
func certOnlyBundle(t testing.TB, v *virtualStack, content sign.Content) *bundle.Bundle {
	t.Helper()
	kp, err := sign.NewEphemeralKeypair(nil)
	if err != nil {
		t.Fatal(err)
	}
	pb, err := sign.Bundle(content, kp, sign.BundleOptions{
		CertificateProvider:        sign.NewFulcio(&sign.FulcioOptions{BaseURL: v.fulcio.URL}),
		CertificateProviderOptions: &sign.CertificateProviderOptions{IDToken: v.token(testSubject, "sigstore", time.Hour)},
	})
	if err != nil {
		t.Fatal(err)
	}
	b, err := bundle.NewBundle(pb)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestVerifyRefusals(t *testing.T) {
	ctx := context.Background()
	v := newVirtualStack(t)
	other := newVirtualStack(t)
	_, digest, manifest := testLayout(t)
	_, otherDigestReal, otherManifest := testLayout(t)
	signer := virtualSigner(t, v)
	good := signBoth(t, signer, digest, manifest, true)
	notReproduced := signBoth(t, signer, digest, manifest, false)
	otherImage := signBoth(t, signer, otherDigestReal, otherManifest, true)
	foreign := signBoth(t, virtualSigner(t, other), digest, manifest, true)

	v.mu.Lock()
	v.notBefore = func() time.Time { return time.Now().Add(-20 * time.Minute) } // expired 10 minutes ago
	v.mu.Unlock()
	expired := certOnlyBundle(t, v, &sign.DSSEData{Data: statementFor(t, digest, true), PayloadType: verify.PayloadType})
	v.mu.Lock()
	v.notBefore = time.Now
	v.mu.Unlock()
	current := certOnlyBundle(t, v, &sign.DSSEData{Data: statementFor(t, digest, true), PayloadType: verify.PayloadType})

	signProvenance := func(edit func(*BuildInfo)) verify.Bundles {
		b, err := signer.SignStatement(ctx, statementWith(t, digest, edit))
		if err != nil {
			t.Fatal(err)
		}
		return verify.Bundles{Provenance: b}
	}
	// Provenance written before strict variations were recorded, and
	// provenance of a build that did not vary the pinned ones.
	unrecorded := signProvenance(func(info *BuildInfo) {
		info.Rebuild.StrictVariations, info.Rebuild.Decided, info.Rebuild.Warned, info.Rebuild.Warnings = "", nil, nil, nil
	})
	strictOff := signProvenance(func(info *BuildInfo) {
		info.Rebuild.StrictVariations, info.Rebuild.Warned, info.Rebuild.Warnings = "off", nil, nil
	})
	strictPolicy := virtualPolicy(t, v, "requireStrictVariations: true")

	lax := []string{"requireSignedTimestamp: false"}
	tests := []struct {
		name     string
		req      verify.Request
		policy   *verify.Policy
		check    string
		contains string
	}{
		{name: "unsigned", req: verify.Request{}, check: verify.CheckSignature, contains: "image is not signed"},
		{name: "tampered statement", req: verify.Request{Provenance: mutate(t, good.Provenance, func(pb *protobundle.Bundle) {
			env := pb.GetDsseEnvelope()
			env.Payload = bytes.Replace(env.Payload, []byte(testBuilderID), []byte("https://evil.test/builder"), 1)
		}), Image: good.Image}, check: verify.CheckSignature},
		{name: "tampered image signature", req: verify.Request{Provenance: good.Provenance, Image: mutate(t, good.Image, func(pb *protobundle.Bundle) {
			pb.GetMessageSignature().Signature[10] ^= 0xff
		})}, check: verify.CheckSignature},
		{name: "provenance for another digest", req: verify.Request{Provenance: otherImage.Provenance, Image: good.Image}, check: verify.CheckSubject, contains: "not " + digest},
		{name: "image signature for another digest", req: verify.Request{Provenance: good.Provenance, Image: otherImage.Image}, check: verify.CheckSubject},
		{name: "manifest of another image", req: verify.Request{ImageManifest: otherManifest, Provenance: good.Provenance, Image: good.Image}, check: verify.CheckSubject},
		{name: "bundles swapped", req: verify.Request{Provenance: good.Image, Image: good.Provenance}, check: verify.CheckBundle},
		{name: "no provenance", req: verify.Request{Image: good.Image}, check: verify.CheckProvenance},
		{name: "wrong identity", req: verify.Request{Provenance: good.Provenance},
			policy: mustPolicy(t, policyDoc([]string{certIdentity(v.issuer, "someone-else@example.test")}, "requireTransparencyLog: false")),
			check:  verify.CheckIdentity, contains: testSubject},
		{name: "wrong issuer", req: verify.Request{Provenance: good.Provenance},
			policy: mustPolicy(t, policyDoc([]string{certIdentity("https://other-issuer.test", testSubject)}, "requireTransparencyLog: false")),
			check:  verify.CheckIdentity},
		{name: "subject regexp is anchored", req: verify.Request{Provenance: good.Provenance},
			policy: mustPolicy(t, policyDoc([]string{"  - issuer: " + v.issuer + "\n    subjectRegExp: ci@example"}, "requireTransparencyLog: false")),
			check:  verify.CheckIdentity},
		{name: "untrusted root", req: verify.Request{Provenance: foreign.Provenance, Image: foreign.Image}, check: verify.CheckCertificate},
		{name: "untrusted timestamp authority", req: verify.Request{Provenance: mutate(t, good.Provenance, func(pb *protobundle.Bundle) {
			pb.VerificationMaterial.TimestampVerificationData = foreign.Provenance.VerificationMaterial.TimestampVerificationData
		})}, check: verify.CheckTimestamp},
		{name: "no signed timestamp", req: verify.Request{Provenance: current}, check: verify.CheckTimestamp, contains: "requires one"},
		{name: "expired certificate without timestamp", req: verify.Request{Provenance: expired},
			policy: virtualPolicy(t, v, lax...), check: verify.CheckTimestamp, contains: "valid only from"},
		{name: "no log entry", req: verify.Request{Provenance: good.Provenance},
			policy: mustPolicy(t, policyDoc([]string{certIdentity(v.issuer, testSubject)})), check: verify.CheckTransparencyLog},
		{name: "source repository", req: verify.Request{Provenance: good.Provenance},
			policy: virtualPolicy(t, v, "sourceRepositories: [https://git.example.test/other/*, 'regexp:https://git\\.example\\.test/team/hello-.*']"),
			check:  verify.CheckSourceRepositories, contains: "hello.git"},
		{name: "builder id", req: verify.Request{Provenance: good.Provenance},
			policy: virtualPolicy(t, v, "builderIDs: [https://builders.example.test/*]"), check: verify.CheckBuilderIDs},
		// The builder's own record of its rebuild proves nothing:
		// requireReproduced wants rebuilders' verdicts, even for a
		// provenance that says it was reproduced.
		{name: "reproduced by nobody", req: verify.Request{Provenance: good.Provenance},
			policy: virtualPolicy(t, v, "requireReproduced: {by: [{issuer: "+v.issuer+", subject: rebuilder@example.test}]}"), check: verify.CheckReproduced, contains: "no rebuild verdicts"},
		{name: "strict: not recorded", req: verify.Request{Provenance: unrecorded.Provenance},
			policy: strictPolicy, check: verify.CheckStrictVariations, contains: "does not say"},
		{name: "strict: not varied", req: verify.Request{Provenance: strictOff.Provenance},
			policy: strictPolicy, check: verify.CheckStrictVariations, contains: "--strict-variations"},
		{name: "strict: changed by the umask", req: verify.Request{Provenance: good.Provenance},
			policy: strictPolicy, check: verify.CheckStrictVariations, contains: "mode depends on the umask"},
		{name: "strict: not reproduced", req: verify.Request{Provenance: notReproduced.Provenance},
			policy: strictPolicy, check: verify.CheckStrictVariations, contains: "no rebuild"},
		{name: "too old", req: verify.Request{Provenance: good.Provenance, Now: time.Now().Add(2 * time.Hour)},
			policy: virtualPolicy(t, v, "maxAge: 1h"), check: verify.CheckMaxAge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := tt.req
			req.Digest = digest
			req.TrustedRoot = v.trusted
			req.Policy = tt.policy
			if req.Policy == nil {
				req.Policy = virtualPolicy(t, v)
			}
			_, err := verify.Verify(ctx, req)
			wantCheck(t, err, tt.check)
			if tt.contains != "" && !strings.Contains(err.Error(), tt.contains) {
				t.Errorf("error %q does not mention %q", err, tt.contains)
			}
		})
	}

	// The controls: what the refusals above change, unchanged, passes.
	controls := []struct {
		name   string
		req    verify.Request
		policy *verify.Policy
	}{
		{"valid certificate without timestamp under a lax policy", verify.Request{Provenance: current}, virtualPolicy(t, v, lax...)},
		{"not reproduced, not required", verify.Request{Provenance: notReproduced.Provenance}, virtualPolicy(t, v)},
		{"regexp identity", verify.Request{Provenance: good.Provenance}, mustPolicy(t, policyDoc([]string{"  - issuerRegExp: https://oidc\\.virtual\\.test\n    subjectRegExp: .*@example\\.test"}, "requireTransparencyLog: false"))},
		{"second identity matches", verify.Request{Provenance: good.Provenance}, mustPolicy(t, policyDoc([]string{certIdentity("https://x.test", "y"), certIdentity(v.issuer, testSubject)}, "requireTransparencyLog: false"))},
		{"foreign bundle with the root that made it", verify.Request{Provenance: foreign.Provenance, TrustedRoot: other.trusted}, mustPolicy(t, policyDoc([]string{certIdentity(other.issuer, testSubject)}, "requireTransparencyLog: false"))},
	}
	for _, c := range controls {
		t.Run("control/"+c.name, func(t *testing.T) {
			req := c.req
			req.Digest = digest
			if req.TrustedRoot == nil {
				req.TrustedRoot = v.trusted
			}
			req.Policy = c.policy
			if _, err := verify.Verify(ctx, req); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestVerifyRequestErrors(t *testing.T) {
	v := newVirtualStack(t)
	p := virtualPolicy(t, v)
	tests := []struct {
		name string
		req  verify.Request
	}{
		{"no policy", verify.Request{Digest: testDigest, TrustedRoot: v.trusted}},
		{"bad digest", verify.Request{Digest: "latest", TrustedRoot: v.trusted, Policy: p}},
		{"no trusted root for certificates", verify.Request{Digest: testDigest, Policy: p}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := verify.Verify(context.Background(), tt.req)
			var ve *verify.VerificationError
			if err == nil || errors.As(err, &ve) {
				t.Fatalf("want a request error, got %v", err)
			}
		})
	}
}

func TestVerificationErrorUnwrap(t *testing.T) {
	_, err := verify.Verify(context.Background(), verify.Request{Digest: testDigest, TrustedRoot: &root.BaseTrustedMaterial{}, Policy: mustPolicy(t, policyDoc([]string{certIdentity("i", "s")}))})
	if !errors.Is(err, verify.ErrNotSigned) {
		t.Fatalf("errors.Is(ErrNotSigned) fails for %v", err)
	}
}

// A certificate issued for one repository (as Fulcio issues them for
// GitHub Actions tokens) cannot vouch for provenance naming another: a
// caller that controls the lock cannot choose the source it claims.
func TestVerifySourceRepositoryMatchesCertificate(t *testing.T) {
	ctx := context.Background()
	v := newVirtualStack(t)
	_, digest, manifest := testLayout(t)
	signerFor := func(repo string) Signer {
		s, err := NewKeylessSigner(ctx, KeylessConfig{
			FulcioURL: v.fulcio.URL, TSAURL: v.tsa.URL, TrustedRoot: v.trusted,
			IDToken: v.tokenWith(testSubject, "sigstore", time.Hour, map[string]any{"source_repository_uri": repo}),
		}, WithRetries(0))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	tests := []struct {
		name, certRepo string
		refused        bool
	}{
		{"certificate for the provenance's repository", "https://git.example.test/team/hello", false},
		{"certificate for another repository", "https://git.example.test/evil/hello", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bs := signBoth(t, signerFor(tt.certRepo), digest, manifest, true)
			res, err := verify.Verify(ctx, verify.Request{Digest: digest, ImageManifest: manifest, Provenance: bs.Provenance, Image: bs.Image,
				TrustedRoot: v.trusted, Policy: virtualPolicy(t, v)})
			if !tt.refused {
				if err != nil {
					t.Fatal(err)
				}
				if res.Identity.SourceRepository != tt.certRepo {
					t.Errorf("identity's source repository = %q, want %q", res.Identity.SourceRepository, tt.certRepo)
				}
				return
			}
			wantCheck(t, err, verify.CheckSourceRepositories)
			if !strings.Contains(err.Error(), tt.certRepo) {
				t.Errorf("refusal does not name the certificate's repository: %v", err)
			}
		})
	}
}

// A policy that requires strict variations accepts a build the pinned
// variations did not change; provenance that predates them still verifies
// where strict variations are not required.
func TestVerifyStrictVariations(t *testing.T) {
	ctx := context.Background()
	v := newVirtualStack(t)
	_, digest, _ := testLayout(t)
	signer := virtualSigner(t, v)
	sign := func(edit func(*BuildInfo)) *bundle.Bundle {
		b, err := signer.SignStatement(ctx, statementWith(t, digest, edit))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	clean := sign(func(info *BuildInfo) {
		info.Rebuild.StrictVariations, info.Rebuild.Warnings = "fail", nil
		info.Rebuild.Decided = append(info.Rebuild.Decided, "umask", "tz")
		info.Rebuild.Warned = nil
	})
	res, err := verify.Verify(ctx, verify.Request{Digest: digest, Provenance: clean, TrustedRoot: v.trusted,
		Policy: virtualPolicy(t, v, "requireStrictVariations: true")})
	if err != nil {
		t.Fatal(err)
	}
	if res.StrictVariations != "fail" || !slices.Contains(res.DecidingVariations, "umask") || len(res.VariationWarnings) != 0 {
		t.Errorf("result = %+v", res)
	}

	old := sign(func(info *BuildInfo) {
		info.Rebuild.StrictVariations, info.Rebuild.Decided, info.Rebuild.Warned, info.Rebuild.Warnings = "", nil, nil, nil
	})
	res, err = verify.Verify(ctx, verify.Request{Digest: digest, Provenance: old, TrustedRoot: v.trusted,
		Policy: virtualPolicy(t, v)})
	if err != nil {
		t.Fatalf("provenance without strict variations no longer verifies: %v", err)
	}
	if !res.Reproduced || res.StrictVariations != "" {
		t.Errorf("result = %+v", res)
	}
}
