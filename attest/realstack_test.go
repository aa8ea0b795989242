package attest

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	protobundle "github.com/sigstore/protobuf-specs/gen/pb-go/bundle/v1"

	"github.com/twinforge/twinforge/attest/verify"
	"github.com/twinforge/twinforge/internal/sigstack"
	"github.com/twinforge/twinforge/internal/testenv"
)

// The real Sigstore stack (OIDC issuer, Fulcio, timestamp authority, Rekor
// v2) is started once for the package's tests and stopped by TestMain.
var (
	stackOnce sync.Once
	stack     *sigstack.Stack
	stackDir  string
	stackErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if stack != nil {
		if err := stack.Close(); err != nil {
			os.Stderr.WriteString(err.Error() + "\n")
			if code == 0 {
				code = 1
			}
		}
	}
	if stackDir != "" && code == 0 {
		os.RemoveAll(stackDir) // kept for its logs when something failed
	}
	os.Exit(code)
}

// realStack returns the shared stack; it skips under -short and fails when
// the stack cannot run (binaries missing: `make sigstore-tools`).
func realStack(t testing.TB) *sigstack.Stack {
	t.Helper()
	if testing.Short() {
		t.Skip("needs the real Sigstore stack; skipped with -short")
	}
	stackOnce.Do(func() {
		dir, err := os.MkdirTemp("", "twinforge-attest-sigstack-")
		if err != nil {
			stackErr = err
			return
		}
		stackDir = dir
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		stack, stackErr = sigstack.Start(ctx, dir)
	})
	if stackErr != nil {
		t.Fatalf("starting the Sigstore stack: %v", stackErr)
	}
	return stack
}

const realEmail = "builder@twinforge.test"

func realToken(t testing.TB, st *sigstack.Stack, c sigstack.Claims) string {
	t.Helper()
	if c.Subject == "" {
		c.Subject, c.Email = realEmail, realEmail
	}
	tok, err := st.IDToken(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func realSigner(t testing.TB, st *sigstack.Stack) Signer {
	t.Helper()
	s, err := NewKeylessSigner(context.Background(), KeylessConfig{
		FulcioURL:   st.FulcioURL(),
		TSAURL:      st.TSAURL(),
		RekorURL:    st.RekorURL(),
		IDToken:     realToken(t, st, sigstack.Claims{}),
		TrustedRoot: st.TrustedRoot(),
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func realPolicy(t testing.TB, st *sigstack.Stack, extra ...string) *verify.Policy {
	return mustPolicy(t, policyDoc([]string{certIdentity(st.OIDCIssuer(), realEmail)}, extra...))
}

// TestRealKeylessEndToEnd signs with real Fulcio, TSA and Rekor v2, stores
// the bundles beside a layout, and verifies them offline from the trusted
// root file alone, with the default (strict) policy.
func TestRealKeylessEndToEnd(t *testing.T) {
	st := realStack(t)
	dir, digest, manifest := testLayout(t)
	bs := signBoth(t, realSigner(t, st), digest, manifest, true)
	if err := verify.WriteBundles(dir, bs); err != nil {
		t.Fatal(err)
	}
	trPath := filepath.Join(t.TempDir(), "trusted_root.json")
	if err := os.WriteFile(trPath, st.TrustedRootJSON(), 0o644); err != nil {
		t.Fatal(err)
	}
	tr, err := verify.LoadTrustedRoot(trPath)
	if err != nil {
		t.Fatal(err)
	}
	read, err := verify.ReadBundles(dir)
	if err != nil {
		t.Fatal(err)
	}
	m, err := verify.ReadManifest(dir, digest)
	if err != nil {
		t.Fatal(err)
	}
	// Offline: no network needed from here on.
	res, err := verify.Verify(context.Background(), verify.Request{
		Digest: digest, ImageManifest: m, Provenance: read.Provenance, Image: read.Image,
		TrustedRoot: tr, Policy: realPolicy(t, st, "maxAge: 1h", "builderIDs: ['"+testBuilderID+"']"),
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Identity.Subject != realEmail || res.Identity.Issuer != st.OIDCIssuer() {
		t.Errorf("identity = %+v", res.Identity)
	}
	if res.TransparencyLogEntries != 1 || len(res.Timestamps) != 1 || !res.ImageSigned || !res.Reproduced {
		t.Errorf("result = %+v", res)
	}
	// The bundles name the stack's log and TSA.
	for name, b := range map[string]*verify.Bundles{"provenance": &bs} {
		if len(b.Provenance.GetVerificationMaterial().GetTlogEntries()) != 1 {
			t.Errorf("%s: no tlog entry", name)
		}
	}
	// Another identity is refused.
	_, err = verify.Verify(context.Background(), verify.Request{Digest: digest, Provenance: read.Provenance, TrustedRoot: tr,
		Policy: mustPolicy(t, policyDoc([]string{certIdentity(st.OIDCIssuer(), "intruder@twinforge.test")}))})
	wantCheck(t, err, verify.CheckIdentity)
	// A tampered log entry is refused by the log check.
	tampered := mutate(t, read.Provenance, func(pb *protobundle.Bundle) {
		pb.VerificationMaterial.TlogEntries[0].InclusionProof.Hashes = append(pb.VerificationMaterial.TlogEntries[0].InclusionProof.Hashes, make([]byte, 32))
	})
	_, err = verify.Verify(context.Background(), verify.Request{Digest: digest, Provenance: tampered, TrustedRoot: tr, Policy: realPolicy(t, st)})
	wantCheck(t, err, verify.CheckTransparencyLog)
}

// TestRealKeylessRekorOnly signs without a timestamp authority: Rekor v2
// gives no signed time, so only a policy that does not require a signed
// timestamp accepts the bundles, and only while the certificate is valid.
func TestRealKeylessRekorOnly(t *testing.T) {
	st := realStack(t)
	ctx := context.Background()
	s, err := NewKeylessSigner(ctx, KeylessConfig{FulcioURL: st.FulcioURL(), RekorURL: st.RekorURL(), IDToken: realToken(t, st, sigstack.Claims{}), TrustedRoot: st.TrustedRoot()})
	if err != nil {
		t.Fatal(err)
	}
	_, digest, manifest := testLayout(t)
	bs, err := SignBuild(ctx, s, statementFor(t, digest, true), manifest)
	if err != nil {
		t.Fatal(err)
	}
	req := verify.Request{Digest: digest, ImageManifest: manifest, Provenance: bs.Provenance, Image: bs.Image, TrustedRoot: st.TrustedRoot(), Policy: realPolicy(t, st)}
	_, err = verify.Verify(ctx, req)
	wantCheck(t, err, verify.CheckTimestamp)
	req.Policy = realPolicy(t, st, "requireSignedTimestamp: false")
	res, err := verify.Verify(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if res.TransparencyLogEntries != 1 || len(res.Timestamps) != 0 {
		t.Errorf("result = %+v", res)
	}
	req.Now = time.Now().Add(time.Hour) // the certificate has expired by then
	_, err = verify.Verify(ctx, req)
	wantCheck(t, err, verify.CheckTimestamp)
}

func TestRealTokensRefused(t *testing.T) {
	st := realStack(t)
	ctx := context.Background()
	cfg := func(tok string) KeylessConfig {
		return KeylessConfig{FulcioURL: st.FulcioURL(), TSAURL: st.TSAURL(), RekorURL: st.RekorURL(), IDToken: tok, TrustedRoot: st.TrustedRoot()}
	}
	_, digest, _ := testLayout(t)
	stmt := statementFor(t, digest, true)

	// Refused before Fulcio is asked.
	for _, tt := range []struct {
		name, contains string
		claims         sigstack.Claims
	}{
		{"expired", "expired", sigstack.Claims{Subject: realEmail, Email: realEmail, Expiry: -time.Minute}},
		{"wrong audience", "audience", sigstack.Claims{Subject: realEmail, Email: realEmail, Audience: "kubernetes"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewKeylessSigner(ctx, cfg(realToken(t, st, tt.claims)))
			if !errors.Is(err, ErrInvalidIDToken) || !strings.Contains(err.Error(), tt.contains) {
				t.Fatalf("error = %v", err)
			}
			t.Logf("refused: %v", err)
		})
	}

	// Fulcio itself refuses what gets past the signer's own checks: a
	// token for another audience the signer was told to accept, and a
	// token that expires between the check and the request is covered by
	// the same path.
	t.Run("Fulcio refuses a foreign audience", func(t *testing.T) {
		s, err := NewKeylessSigner(ctx, cfg(realToken(t, st, sigstack.Claims{Subject: realEmail, Email: realEmail, Audience: "kubernetes"})), WithAudience("kubernetes"), WithRetries(0))
		if err != nil {
			t.Fatal(err)
		}
		_, err = s.SignStatement(ctx, stmt)
		if err == nil || !strings.Contains(err.Error(), "Fulcio at "+st.FulcioURL()) {
			t.Fatalf("error = %v", err)
		}
		t.Logf("refused: %v", err)
	})
	t.Run("Fulcio refuses a token from another issuer", func(t *testing.T) {
		v := newVirtualStack(t)
		s, err := NewKeylessSigner(ctx, cfg(v.token(realEmail, "sigstore", time.Hour)), WithRetries(0))
		if err != nil {
			t.Fatal(err)
		}
		_, err = s.SignStatement(ctx, stmt)
		if err == nil || !strings.Contains(err.Error(), "Fulcio at "+st.FulcioURL()) {
			t.Fatalf("error = %v", err)
		}
		t.Logf("refused: %v", err)
	})
}

func TestRealServicesUnreachable(t *testing.T) {
	st := realStack(t)
	ctx := context.Background()
	_, digest, _ := testLayout(t)
	stmt := statementFor(t, digest, true)
	closed := httptest.NewServer(http.NotFoundHandler())
	closedURL := closed.URL
	closed.Close()
	tests := []struct {
		name     string
		cfg      KeylessConfig
		contains []string
	}{
		{"Fulcio at a closed port", KeylessConfig{FulcioURL: closedURL, TSAURL: st.TSAURL(), RekorURL: st.RekorURL()}, []string{"Fulcio at " + closedURL, "connection refused"}},
		{"Fulcio URL names another service", KeylessConfig{FulcioURL: st.TSAURL(), TSAURL: st.TSAURL(), RekorURL: st.RekorURL()}, []string{"Fulcio at " + st.TSAURL()}},
		{"TSA at a closed port", KeylessConfig{FulcioURL: st.FulcioURL(), TSAURL: closedURL, RekorURL: st.RekorURL()}, []string{"timestamp authority at " + closedURL}},
		{"Rekor at a closed port", KeylessConfig{FulcioURL: st.FulcioURL(), TSAURL: st.TSAURL(), RekorURL: closedURL}, []string{"Rekor at " + closedURL}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.cfg.IDToken = realToken(t, st, sigstack.Claims{})
			tt.cfg.TrustedRoot = st.TrustedRoot()
			s, err := NewKeylessSigner(ctx, tt.cfg, WithRetries(0))
			if err != nil {
				t.Fatal(err)
			}
			dir, _, _ := testLayout(t)
			b, err := s.SignStatement(ctx, stmt)
			if err == nil || b != nil {
				t.Fatal("signed with a service missing")
			}
			for _, c := range tt.contains {
				if !strings.Contains(err.Error(), c) {
					t.Errorf("error %q does not mention %q", err, c)
				}
			}
			t.Logf("refused: %v", err)
			if _, err := os.Stat(filepath.Join(dir, verify.AttestationsDir)); !errors.Is(err, os.ErrNotExist) {
				t.Error("something was written")
			}
		})
	}

	t.Run("stack stopped", func(t *testing.T) {
		own, err := sigstack.Start(ctx, t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		s, err := NewKeylessSigner(ctx, KeylessConfig{
			FulcioURL: own.FulcioURL(), TSAURL: own.TSAURL(), RekorURL: own.RekorURL(),
			IDToken: realToken(t, own, sigstack.Claims{}), TrustedRoot: own.TrustedRoot(),
		}, WithRetries(0))
		if err != nil {
			t.Fatal(err)
		}
		// Sign once while it runs: the bundles verify after it is gone.
		_, d, m := testLayout(t)
		bs, err := SignBuild(ctx, s, statementFor(t, d, true), m)
		if err != nil {
			t.Fatal(err)
		}
		tr := own.TrustedRoot()
		if err := own.Close(); err != nil {
			t.Fatal(err)
		}
		if _, err := verify.Verify(ctx, verify.Request{Digest: d, ImageManifest: m, Provenance: bs.Provenance, Image: bs.Image, TrustedRoot: tr,
			Policy: mustPolicy(t, policyDoc([]string{certIdentity(own.OIDCIssuer(), realEmail)}))}); err != nil {
			t.Fatalf("offline verification after the stack stopped: %v", err)
		}
		_, err = s.SignStatement(ctx, stmt)
		if err == nil || !strings.Contains(err.Error(), "Fulcio at "+own.FulcioURL()) {
			t.Fatalf("error = %v", err)
		}
		t.Logf("refused: %v", err)
	})
}

// TestRealCosignInterop has cosign v2 verify what twinforge signed, keyless
// and with a cosign-generated key.
func TestRealCosignInterop(t *testing.T) {
	st := realStack(t)
	cosign := testenv.Binary(t, "cosign")
	work := t.TempDir()
	trPath := filepath.Join(work, "trusted_root.json")
	if err := os.WriteFile(trPath, st.TrustedRootJSON(), 0o644); err != nil {
		t.Fatal(err)
	}
	run := func(t *testing.T, env []string, args ...string) {
		t.Helper()
		cmd := exec.Command(cosign, args...)
		cmd.Env = append(os.Environ(), env...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("cosign %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		t.Logf("cosign %s: %s", args[0], strings.TrimSpace(string(out)))
	}
	verifyBoth := func(t *testing.T, dir, digest string, manifest []byte, identity []string) {
		blob := filepath.Join(work, strings.TrimPrefix(digest, "sha256:")+".manifest.json")
		if err := os.WriteFile(blob, manifest, 0o644); err != nil {
			t.Fatal(err)
		}
		common := append([]string{"--new-bundle-format", "--trusted-root", trPath, "--use-signed-timestamps", "--insecure-ignore-sct"}, identity...)
		run(t, nil, append(append([]string{"verify-blob-attestation", "--bundle", filepath.Join(dir, verify.AttestationsDir, verify.ProvenanceFile), "--type", "slsaprovenance1"}, common...), blob)...)
		run(t, nil, append(append([]string{"verify-blob", "--bundle", filepath.Join(dir, verify.AttestationsDir, verify.ImageFile)}, common...), blob)...)
	}

	t.Run("keyless", func(t *testing.T) {
		dir, digest, manifest := testLayout(t)
		if err := verify.WriteBundles(dir, signBoth(t, realSigner(t, st), digest, manifest, true)); err != nil {
			t.Fatal(err)
		}
		verifyBoth(t, dir, digest, manifest, []string{"--certificate-identity", realEmail, "--certificate-oidc-issuer", st.OIDCIssuer()})
	})

	t.Run("cosign key", func(t *testing.T) {
		keyDir := t.TempDir()
		cmd := exec.Command(cosign, "generate-key-pair", "--output-key-prefix", filepath.Join(keyDir, "cosign"))
		cmd.Env = append(os.Environ(), "COSIGN_PASSWORD=twinforge-test")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("cosign generate-key-pair: %v\n%s", err, out)
		}
		if _, err := NewKeySigner(filepath.Join(keyDir, "cosign.key"), []byte("not it")); !errors.Is(err, ErrKeyPassword) {
			t.Fatalf("wrong password: %v", err)
		}
		s, err := NewKeySigner(filepath.Join(keyDir, "cosign.key"), []byte("twinforge-test"),
			WithTimestampAuthority(st.TSAURL()), WithTransparencyLog(st.RekorURL()), WithTrustedRoot(st.TrustedRoot()))
		if err != nil {
			t.Fatal(err)
		}
		dir, digest, manifest := testLayout(t)
		bs := signBoth(t, s, digest, manifest, true)
		if err := verify.WriteBundles(dir, bs); err != nil {
			t.Fatal(err)
		}
		if _, err := verify.Verify(context.Background(), verify.Request{Digest: digest, ImageManifest: manifest, Provenance: bs.Provenance, Image: bs.Image, TrustedRoot: st.TrustedRoot(),
			Policy: mustPolicy(t, policyDoc([]string{keyIdentity(filepath.Join(keyDir, "cosign.pub"))}))}); err != nil {
			t.Fatal(err)
		}
		verifyBoth(t, dir, digest, manifest, []string{"--key", filepath.Join(keyDir, "cosign.pub")})
	})
}
