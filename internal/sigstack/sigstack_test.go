package sigstack_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sigstore/sigstore-go/pkg/bundle"
	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore-go/pkg/sign"
	"github.com/sigstore/sigstore-go/pkg/verify"

	"github.com/twinforge/twinforge/internal/sigstack"
)

const (
	builder       = "builder@twinforge.test"
	predicateType = "https://twinforge.dev/sigstack-test/v1"
	blobPath      = "testdata/blob.txt"
)

// startStack runs a stack for the test, stopped at cleanup. It fails the
// test (with the make target to run) when a binary is missing.
func startStack(t *testing.T) *sigstack.Stack {
	t.Helper()
	if testing.Short() {
		t.Skip("runs Fulcio, a TSA, Rekor and an OIDC issuer; skipped with -short")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	st, err := sigstack.Start(ctx, t.TempDir(), sigstack.WithLogger(testLogger(t)))
	if err != nil {
		t.Fatalf("starting the sigstore stack: %v", err)
	}
	t.Cleanup(func() {
		if err := st.Close(); err != nil {
			t.Errorf("%v", err)
		}
	})
	return st
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// statement is a minimal in-toto Statement v1 about testdata/blob.txt.
func statement(t *testing.T) (payload, digest []byte) {
	t.Helper()
	blob, err := os.ReadFile(blobPath)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(blob)
	payload, err = json.Marshal(map[string]any{
		"_type":         "https://in-toto.io/Statement/v1",
		"subject":       []any{map[string]any{"name": "blob.txt", "digest": map[string]string{"sha256": hex.EncodeToString(sum[:])}}},
		"predicateType": predicateType,
		"predicate":     map[string]any{"builder": builder},
	})
	if err != nil {
		t.Fatal(err)
	}
	return payload, sum[:]
}

// signStatement keyless-signs the statement as a DSSE envelope through the
// stack: Fulcio certificate, RFC 3161 timestamp, Rekor v2 entry.
func signStatement(t *testing.T, st *sigstack.Stack, token string, payload []byte) (*bundle.Bundle, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	kp, err := sign.NewEphemeralKeypair(nil)
	if err != nil {
		t.Fatal(err)
	}
	pb, err := sign.Bundle(&sign.DSSEData{Data: payload, PayloadType: "application/vnd.in-toto+json"}, kp, sign.BundleOptions{
		Context:                    ctx,
		CertificateProvider:        sign.NewFulcio(&sign.FulcioOptions{BaseURL: st.FulcioURL(), Timeout: 30 * time.Second}),
		CertificateProviderOptions: &sign.CertificateProviderOptions{IDToken: token},
		TimestampAuthorities:       []*sign.TimestampAuthority{sign.NewTimestampAuthority(&sign.TimestampAuthorityOptions{URL: st.TimestampURL(), Timeout: 30 * time.Second})},
		TransparencyLogs:           []sign.Transparency{sign.NewRekor(&sign.RekorOptions{BaseURL: st.RekorURL(), Timeout: 30 * time.Second, Version: 2})},
		TrustedRoot:                st.TrustedRoot(), // sign.Bundle verifies what it made
	})
	if err != nil {
		return nil, err
	}
	return bundle.NewBundle(pb)
}

func mustToken(t *testing.T, st *sigstack.Stack, c sigstack.Claims) string {
	t.Helper()
	tok, err := st.IDToken(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func verifyBundle(tr root.TrustedMaterial, b *bundle.Bundle, issuer, san string, digest []byte) error {
	v, err := verify.NewVerifier(tr, verify.WithSignedTimestamps(1), verify.WithTransparencyLog(1))
	if err != nil {
		return err
	}
	id, err := verify.NewShortCertificateIdentity(issuer, "", san, "")
	if err != nil {
		return err
	}
	_, err = v.Verify(b, verify.NewPolicy(verify.WithArtifactDigest("sha256", digest), verify.WithCertificateIdentity(id)))
	return err
}

// TestKeylessSignVerify signs an in-toto statement through a real stack
// and verifies the bundle offline against the stack's trusted root, and
// not against another stack's or with the wrong identity or subject.
func TestKeylessSignVerify(t *testing.T) {
	st := startStack(t)
	other := startStack(t)
	payload, digest := statement(t)
	b, err := signStatement(t, st, mustToken(t, st, sigstack.Claims{Subject: builder, Email: builder}), payload)
	if err != nil {
		t.Fatalf("signing: %v", err)
	}
	if b.MediaType != "application/vnd.dev.sigstore.bundle.v0.3+json" {
		t.Errorf("bundle media type %q, want v0.3", b.MediaType)
	}
	// The root a verifier reads from disk works as well as the in-memory one.
	fromFile, err := root.NewTrustedRootFromPath(filepath.Join(st.Dir(), "trusted_root.json"))
	if err != nil {
		t.Fatal(err)
	}
	otherDigest := sha256.Sum256([]byte("something else"))

	tests := []struct {
		name    string
		root    root.TrustedMaterial
		issuer  string
		san     string
		digest  []byte
		wantErr bool
	}{
		{"this stack", st.TrustedRoot(), st.OIDCIssuer(), builder, digest, false},
		{"trusted_root.json", fromFile, st.OIDCIssuer(), builder, digest, false},
		{"another stack's root", other.TrustedRoot(), st.OIDCIssuer(), builder, digest, true},
		{"another identity", st.TrustedRoot(), st.OIDCIssuer(), "mallory@twinforge.test", digest, true},
		{"another issuer", st.TrustedRoot(), other.OIDCIssuer(), builder, digest, true},
		{"another subject digest", st.TrustedRoot(), st.OIDCIssuer(), builder, otherDigest[:], true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := verifyBundle(tt.root, b, tt.issuer, tt.san, tt.digest)
			if tt.wantErr && err == nil {
				t.Fatal("verified, want an error")
			}
			if !tt.wantErr && err != nil {
				t.Fatalf("verifying: %v", err)
			}
			t.Logf("verify: %v", err)
		})
	}
}

// TestFulcioRefusesBadTokens checks that Fulcio checks the tokens the
// issuer mints: only a current token from its issuer for its audience gets a
// certificate. Fulcio answers every refusal with the same message and logs
// the reason, so the test reads the reason from fulcio.log.
func TestFulcioRefusesBadTokens(t *testing.T) {
	st := startStack(t)
	other := startStack(t)
	tests := []struct {
		name       string
		stack      *sigstack.Stack // the issuer that mints the token
		claims     sigstack.Claims
		wantReason string // in fulcio.log; "" for success
	}{
		{"valid", st, sigstack.Claims{Subject: builder, Email: builder}, ""},
		{"expired", st, sigstack.Claims{Subject: builder, Email: builder, Expiry: -time.Minute}, "oidc: token is expired"},
		{"wrong audience", st, sigstack.Claims{Subject: builder, Email: builder, Audience: "not-sigstore"}, `oidc: expected audience "sigstore" got ["not-sigstore"]`},
		{"unknown issuer", other, sigstack.Claims{Subject: builder, Email: builder}, other.OIDCIssuer()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			kp, err := sign.NewEphemeralKeypair(nil)
			if err != nil {
				t.Fatal(err)
			}
			tok := mustToken(t, tt.stack, tt.claims)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			f := sign.NewFulcio(&sign.FulcioOptions{BaseURL: st.FulcioURL(), Timeout: 30 * time.Second})
			_, err = f.GetCertificate(ctx, kp, &sign.CertificateProviderOptions{IDToken: tok})
			if tt.wantReason == "" {
				if err != nil {
					t.Fatalf("Fulcio refused a valid token: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("Fulcio issued a certificate, want a refusal")
			}
			if !strings.Contains(err.Error(), "400") {
				t.Errorf("Fulcio refused with %v, want a 400", err)
			}
			log, rerr := os.ReadFile(filepath.Join(st.Dir(), sigstack.NameFulcio+".log"))
			if rerr != nil {
				t.Fatal(rerr)
			}
			if !strings.Contains(string(log), tt.wantReason) {
				t.Errorf("fulcio.log does not give the reason %q for %v", tt.wantReason, err)
			}
		})
	}
}

// TestCosignVerifiesBundle checks interop: cosign verifies the bundle that
// sigstore-go made, offline, against trusted_root.json.
func TestCosignVerifiesBundle(t *testing.T) {
	st := startStack(t)
	cosign := binary(t, "cosign")
	payload, _ := statement(t)
	b, err := signStatement(t, st, mustToken(t, st, sigstack.Claims{Subject: builder, Email: builder}), payload)
	if err != nil {
		t.Fatalf("signing: %v", err)
	}
	bj, err := b.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	bundlePath := filepath.Join(t.TempDir(), "blob.sigstore.json")
	if err := os.WriteFile(bundlePath, bj, 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		identity string
		ok       bool
	}{
		{"right identity", builder, true},
		{"wrong identity", "mallory@twinforge.test", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := runCosign(t, cosign, "verify-blob-attestation",
				"--bundle", bundlePath, "--new-bundle-format",
				"--trusted-root", filepath.Join(st.Dir(), "trusted_root.json"),
				"--certificate-identity", tt.identity,
				"--certificate-oidc-issuer", st.OIDCIssuer(),
				"--type", predicateType,
				"--insecure-ignore-sct",   // the stack's Fulcio runs without a CT log
				"--use-signed-timestamps", // Rekor v2 entries carry no integrated time
				blobPath)
			if tt.ok && err != nil {
				t.Fatalf("cosign refused: %v\n%s", err, out)
			}
			if !tt.ok && err == nil {
				t.Fatalf("cosign verified, want a refusal:\n%s", out)
			}
			t.Logf("cosign: %s", out)
		})
	}
}

// binary finds a program `make sigstore-tools` builds, failing the test
// when it is missing.
func binary(t *testing.T, name string) string {
	t.Helper()
	dir := os.Getenv("TWINFORGE_BIN")
	if dir == "" {
		dir = filepath.Join("..", "..", "bin")
	}
	p, err := filepath.Abs(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(p); err != nil {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
		t.Fatalf("%s not found in %s or on PATH: run `make sigstore-tools`", name, dir)
	}
	return p
}

func runCosign(t *testing.T, cosign string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, cosign, args...)
	// No TUF: everything comes from the flags.
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir(), "TUF_ROOT="+t.TempDir(), "SIGSTORE_NO_CACHE=true")
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("running cosign: %v", err)
	}
	return string(out), err
}

// TestSigstoreGoVerifiesCosignBundle checks the other direction: cosign
// signs the blob through the stack, finding every service in
// signing_config.json, and sigstore-go verifies the bundle offline.
func TestSigstoreGoVerifiesCosignBundle(t *testing.T) {
	st := startStack(t)
	cosign := binary(t, "cosign")
	bundlePath := filepath.Join(t.TempDir(), "blob.sigstore.json")
	out, err := runCosign(t, cosign, "sign-blob", "--yes",
		"--new-bundle-format",
		"--signing-config", filepath.Join(st.Dir(), "signing_config.json"),
		"--trusted-root", filepath.Join(st.Dir(), "trusted_root.json"),
		"--identity-token", mustToken(t, st, sigstack.Claims{Subject: builder, Email: builder}),
		"--bundle", bundlePath,
		blobPath)
	if err != nil {
		t.Fatalf("cosign sign-blob: %v\n%s", err, out)
	}
	b, err := bundle.LoadJSONFromPath(bundlePath)
	if err != nil {
		t.Fatal(err)
	}
	v, err := verify.NewVerifier(st.TrustedRoot(), verify.WithSignedTimestamps(1), verify.WithTransparencyLog(1))
	if err != nil {
		t.Fatal(err)
	}
	id, err := verify.NewShortCertificateIdentity(st.OIDCIssuer(), "", builder, "")
	if err != nil {
		t.Fatal(err)
	}
	blob, err := os.Open(blobPath)
	if err != nil {
		t.Fatal(err)
	}
	defer blob.Close()
	if _, err := v.Verify(b, verify.NewPolicy(verify.WithArtifact(blob), verify.WithCertificateIdentity(id))); err != nil {
		t.Fatalf("verifying cosign's bundle: %v", err)
	}
}

// TestIDTokenClaims reads back the claims of minted tokens.
func TestIDTokenClaims(t *testing.T) {
	st := startStack(t)
	tests := []struct {
		name     string
		claims   sigstack.Claims
		wantAud  string
		wantLife int64 // exp - iat, seconds
	}{
		{"defaults", sigstack.Claims{Subject: "s1", Email: "s1@twinforge.test"}, sigstack.ClientID, 600},
		{"audience and expiry", sigstack.Claims{Subject: "s2", Email: "s2@twinforge.test", Audience: "other", Expiry: time.Hour}, "other", 3600},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok := mustToken(t, st, tt.claims)
			parts := strings.Split(tok, ".")
			if len(parts) != 3 {
				t.Fatalf("token has %d parts, want 3", len(parts))
			}
			raw, err := base64.RawURLEncoding.DecodeString(parts[1])
			if err != nil {
				t.Fatal(err)
			}
			var c struct {
				Iss           string   `json:"iss"`
				Sub           string   `json:"sub"`
				Aud           []string `json:"aud"`
				Email         string   `json:"email"`
				EmailVerified bool     `json:"email_verified"`
				Iat, Exp      int64
			}
			if err := json.Unmarshal(raw, &c); err != nil {
				t.Fatal(err)
			}
			if c.Iss != st.OIDCIssuer() || c.Sub != tt.claims.Subject || c.Email != tt.claims.Email || !c.EmailVerified ||
				len(c.Aud) != 1 || c.Aud[0] != tt.wantAud || c.Exp-c.Iat != tt.wantLife {
				t.Errorf("claims %+v, want iss %s sub %s email %s (verified) aud [%s] lifetime %ds",
					c, st.OIDCIssuer(), tt.claims.Subject, tt.claims.Email, tt.wantAud, tt.wantLife)
			}
		})
	}
	if _, err := st.IDToken(context.Background(), sigstack.Claims{}); err == nil {
		t.Error("minted a token without a subject")
	}
}

// TestStartFailureQuotesLog checks that a server that fails to start makes
// Start fail with the end of its log, and that Start stops the rest.
func TestStartFailureQuotesLog(t *testing.T) {
	if testing.Short() {
		t.Skip("runs real servers; skipped with -short")
	}
	bin := t.TempDir()
	for _, name := range []string{"twinforge-oidc", "timestamp-server", "rekor-server"} {
		if err := os.Symlink(binary(t, name), filepath.Join(bin, name)); err != nil {
			t.Fatal(err)
		}
	}
	script := "#!/bin/sh\necho 'fulcio: refusing to start for TestStartFailureQuotesLog' >&2\nexit 3\n"
	if err := os.WriteFile(filepath.Join(bin, "fulcio"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	st, err := sigstack.Start(context.Background(), dir, sigstack.WithBinDir(bin), sigstack.WithLogger(testLogger(t)))
	if err == nil {
		st.Close()
		t.Fatal("Start succeeded with a failing fulcio")
	}
	for _, want := range []string{"fulcio exited while starting", "refusing to start for TestStartFailureQuotesLog", filepath.Join(dir, "fulcio.log")} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

// TestMissingBinary checks that Start names the make target that builds a
// missing server.
func TestMissingBinary(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	_, err := sigstack.Start(context.Background(), t.TempDir(), sigstack.WithBinDir(t.TempDir()))
	if err == nil || !strings.Contains(err.Error(), "make sigstore-tools") {
		t.Fatalf("Start with no binaries: %v, want an error naming `make sigstore-tools`", err)
	}
}

func TestOptionsRejectBadValues(t *testing.T) {
	tests := []struct {
		name string
		opt  sigstack.Option
	}{
		{"empty bin dir", sigstack.WithBinDir("")},
		{"nil logger", sigstack.WithLogger(nil)},
		{"zero timeout", sigstack.WithReadyTimeout(0)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := sigstack.Start(context.Background(), t.TempDir(), tt.opt); err == nil {
				t.Fatal("Start accepted the option")
			}
		})
	}
}

// TestSigningConfigNamesTheStack reads the services back from the signing
// config, as a client choosing where to sign would.
func TestSigningConfigNamesTheStack(t *testing.T) {
	st := startStack(t)
	sc := st.SigningConfig()
	now := time.Now()
	tests := []struct {
		name     string
		services []root.Service
		versions []uint32
		want     string
	}{
		{"fulcio", sc.FulcioCertificateAuthorityURLs(), sign.FulcioAPIVersions, st.FulcioURL()},
		{"oidc", sc.OIDCProviderURLs(), []uint32{1}, st.OIDCIssuer()},
		{"rekor", sc.RekorLogURLs(), []uint32{2}, st.RekorURL()},
		{"tsa", sc.TimestampAuthorityURLs(), sign.TimestampAuthorityAPIVersions, st.TimestampURL()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			svc, err := root.SelectService(tt.services, tt.versions, now)
			if err != nil {
				t.Fatal(err)
			}
			if svc.URL != tt.want {
				t.Errorf("URL %s, want %s", svc.URL, tt.want)
			}
		})
	}
}

// TestStopAndRestart: a stopped server is down for its clients (signing
// through the stack fails), Close does not count it as a crash, and Rekor
// comes back with its key and log, so what it logs then still verifies
// against the trusted root. Fulcio and the TSA cannot come back as
// themselves and are refused.
func TestStopAndRestart(t *testing.T) {
	st := startStack(t)
	payload, digest := statement(t)
	id := sigstack.Claims{Subject: "ci@twinforge.test", Email: "ci@twinforge.test"}
	if err := st.Stop(sigstack.NameRekor); err != nil {
		t.Fatal(err)
	}
	if _, err := signStatement(t, st, mustToken(t, st, id), payload); err == nil || !strings.Contains(err.Error(), st.RekorURL()) {
		t.Fatalf("signing with Rekor down: %v, want an error naming %s", err, st.RekorURL())
	}
	if err := st.Restart(context.Background(), sigstack.NameRekor); err != nil {
		t.Fatal(err)
	}
	b, err := signStatement(t, st, mustToken(t, st, id), payload)
	if err != nil {
		t.Fatalf("signing after Rekor restarted: %v", err)
	}
	if err := verifyBundle(st.TrustedRoot(), b, st.OIDCIssuer(), id.Email, digest); err != nil {
		t.Fatalf("a bundle logged after the restart: %v", err)
	}
	for _, name := range []string{sigstack.NameFulcio, sigstack.NameTSA} {
		if err := st.Stop(name); err != nil {
			t.Fatal(err)
		}
		if err := st.Restart(context.Background(), name); err == nil {
			t.Errorf("restarted %s", name)
		}
	}
	if err := st.Restart(context.Background(), "nope"); err == nil {
		t.Error("restarted a server the stack does not have")
	}
}
