package attest

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sigstore/sigstore/pkg/cryptoutils"

	"github.com/twinforge/twinforge/attest/verify"
)

// writeKeyPair writes a private key (encrypted with password in cosign's
// format when password is set) and its public key; it returns both paths.
func writeKeyPair(t testing.TB, priv crypto.Signer, password []byte) (keyPath, pubPath string) {
	t.Helper()
	dir := t.TempDir()
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	block := &pem.Block{Type: "PRIVATE KEY", Bytes: der}
	if password != nil {
		enc, err := cryptoutils.MarshalPrivateKeyToEncryptedDER(priv, func(bool) ([]byte, error) { return password, nil })
		if err != nil {
			t.Fatal(err)
		}
		block = &pem.Block{Type: "ENCRYPTED SIGSTORE PRIVATE KEY", Bytes: enc}
	}
	keyPath, pubPath = filepath.Join(dir, "key.pem"), filepath.Join(dir, "pub.pem")
	if err := os.WriteFile(keyPath, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	pub, err := cryptoutils.MarshalPublicKeyToPEM(priv.Public())
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(pubPath, pub, 0o644); err != nil {
		t.Fatal(err)
	}
	return keyPath, pubPath
}

func TestKeySignerRoundTrip(t *testing.T) {
	ec256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ec384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	tests := []struct {
		name     string
		key      crypto.Signer
		password []byte
	}{
		{"cosign encrypted ECDSA P-256", ec256, []byte("correct horse")},
		{"PKCS8 ECDSA P-384", ec384, nil},
		{"PKCS8 Ed25519", ed, nil},
		{"PKCS8 RSA 2048", rsaKey, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			keyPath, pubPath := writeKeyPair(t, tt.key, tt.password)
			s, err := NewKeySigner(keyPath, tt.password)
			if err != nil {
				t.Fatal(err)
			}
			_, digest, manifest := testLayout(t)
			bs := signBoth(t, s, digest, manifest, true)
			if bs.Provenance.GetVerificationMaterial().GetPublicKey() == nil {
				t.Fatal("key-signed bundle carries no public key hint")
			}
			p := mustPolicy(t, policyDoc([]string{keyIdentity(pubPath)}, "requireSignedTimestamp: false", "requireTransparencyLog: false"))
			res, err := verify.Verify(context.Background(), verify.Request{Digest: digest, ImageManifest: manifest, Provenance: bs.Provenance, Image: bs.Image, Policy: p})
			if err != nil {
				t.Fatal(err)
			}
			hint, _ := verify.KeyHint(tt.key.Public())
			if res.Identity.PublicKey != hint || !res.ImageSigned {
				t.Errorf("result = %+v", res)
			}
			// Another key is not this one.
			otherKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			_, otherPub := writeKeyPair(t, otherKey, nil)
			_, err = verify.Verify(context.Background(), verify.Request{Digest: digest, Provenance: bs.Provenance, Policy: mustPolicy(t, policyDoc([]string{keyIdentity(otherPub)}, "requireSignedTimestamp: false", "requireTransparencyLog: false"))})
			wantCheck(t, err, verify.CheckIdentity)
			// Certificate identities do not admit a key signature.
			_, err = verify.Verify(context.Background(), verify.Request{Digest: digest, Provenance: bs.Provenance, TrustedRoot: newVirtualStack(t).trusted, Policy: mustPolicy(t, policyDoc([]string{certIdentity("https://issuer.test", "me")}, "requireSignedTimestamp: false", "requireTransparencyLog: false"))})
			wantCheck(t, err, verify.CheckIdentity)
			// By default a policy wants a timestamp and a log entry.
			_, err = verify.Verify(context.Background(), verify.Request{Digest: digest, Provenance: bs.Provenance, TrustedRoot: newVirtualStack(t).trusted, Policy: mustPolicy(t, policyDoc([]string{keyIdentity(pubPath)}))})
			wantCheck(t, err, verify.CheckTransparencyLog)
		})
	}
}

func TestKeySignerWithTimestamp(t *testing.T) {
	v := newVirtualStack(t)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	keyPath, pubPath := writeKeyPair(t, key, nil)
	s, err := NewKeySigner(keyPath, nil, WithTimestampAuthority(v.tsa.URL+"/api/v1/timestamp"), WithTrustedRoot(v.trusted))
	if err != nil {
		t.Fatal(err)
	}
	_, digest, manifest := testLayout(t)
	bs := signBoth(t, s, digest, manifest, true)
	res, err := verify.Verify(context.Background(), verify.Request{Digest: digest, Provenance: bs.Provenance, Image: bs.Image, TrustedRoot: v.trusted,
		Policy: mustPolicy(t, policyDoc([]string{keyIdentity(pubPath)}, "requireTransparencyLog: false"))})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Timestamps) != 1 {
		t.Errorf("timestamps = %+v", res.Timestamps)
	}
}

func TestKeySignerErrors(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	encrypted, _ := writeKeyPair(t, key, []byte("right"))
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage.pem")
	os.WriteFile(garbage, []byte("not a key"), 0o600)
	pubOnly := filepath.Join(dir, "pub.pem")
	pubPEM, _ := cryptoutils.MarshalPublicKeyToPEM(key.Public())
	os.WriteFile(pubOnly, pubPEM, 0o600)
	tests := []struct {
		name     string
		path     string
		password []byte
		is       error
		contains string
	}{
		{"wrong password", encrypted, []byte("wrong"), ErrKeyPassword, "wrong password"},
		{"no password", encrypted, nil, ErrKeyPassword, "no password"},
		{"missing file", filepath.Join(dir, "nope.pem"), nil, os.ErrNotExist, "reading private key"},
		{"not PEM", garbage, nil, nil, "no PEM block"},
		{"public key", pubOnly, nil, nil, "private key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewKeySigner(tt.path, tt.password)
			if err == nil {
				t.Fatal("no error")
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("error %v is not %v", err, tt.is)
			}
			if !strings.Contains(err.Error(), tt.contains) {
				t.Errorf("error %q does not mention %q", err, tt.contains)
			}
		})
	}
}

func TestSignStatementRefusesNonStatements(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	keyPath, _ := writeKeyPair(t, key, nil)
	s, err := NewKeySigner(keyPath, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, payload := range []string{`hello`, `{"_type":"https://in-toto.io/Statement/v1"}`, `{"_type":"x","subject":[{"digest":{"sha256":"ab"}}],"predicateType":"p","predicate":{}}`} {
		if _, err := s.SignStatement(context.Background(), []byte(payload)); err == nil {
			t.Errorf("signed %s", payload)
		}
	}
}

func TestKeylessSignerErrors(t *testing.T) {
	v := newVirtualStack(t)
	ctx := context.Background()
	good := v.token(testSubject, "sigstore", time.Hour)
	tests := []struct {
		name     string
		cfg      KeylessConfig
		opts     []Option
		is       error
		contains string
	}{
		{"expired token", KeylessConfig{FulcioURL: v.fulcio.URL, TSAURL: v.tsa.URL, IDToken: v.token(testSubject, "sigstore", -time.Minute)}, nil, ErrInvalidIDToken, "expired"},
		{"wrong audience", KeylessConfig{FulcioURL: v.fulcio.URL, TSAURL: v.tsa.URL, IDToken: v.token(testSubject, []string{"kubernetes"}, time.Hour)}, nil, ErrInvalidIDToken, "audience"},
		{"malformed token", KeylessConfig{FulcioURL: v.fulcio.URL, TSAURL: v.tsa.URL, IDToken: "not-a-jwt"}, nil, ErrInvalidIDToken, "not a JWT"},
		{"no token", KeylessConfig{FulcioURL: v.fulcio.URL, TSAURL: v.tsa.URL}, nil, ErrInvalidIDToken, "no identity token"},
		{"no Fulcio", KeylessConfig{TSAURL: v.tsa.URL, IDToken: good}, nil, nil, "no Fulcio URL"},
		{"neither TSA nor Rekor", KeylessConfig{FulcioURL: v.fulcio.URL, IDToken: good}, nil, nil, "timestamp authority URL, a Rekor URL or both"},
		{"bad Fulcio URL", KeylessConfig{FulcioURL: "fulcio.example", TSAURL: v.tsa.URL, IDToken: good}, nil, nil, "Fulcio URL"},
		{"services as options", KeylessConfig{FulcioURL: v.fulcio.URL, TSAURL: v.tsa.URL, IDToken: good}, []Option{WithTransparencyLog("http://rekor.test")}, nil, "KeylessConfig"},
		{"custom audience", KeylessConfig{FulcioURL: v.fulcio.URL, TSAURL: v.tsa.URL, IDToken: good}, []Option{WithAudience("other")}, ErrInvalidIDToken, "audience"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := v.count("fulcio")
			_, err := NewKeylessSigner(ctx, tt.cfg, tt.opts...)
			if err == nil {
				t.Fatal("no error")
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("error %v is not %v", err, tt.is)
			}
			if !strings.Contains(err.Error(), tt.contains) {
				t.Errorf("error %q does not mention %q", err, tt.contains)
			}
			if v.count("fulcio") != before {
				t.Error("Fulcio was contacted")
			}
		})
	}
}

func TestKeylessServiceFailures(t *testing.T) {
	ctx := context.Background()
	_, digest, _ := testLayout(t)
	stmt := statementFor(t, digest, true)
	closed := httptest.NewServer(http.NotFoundHandler())
	closedURL := closed.URL
	closed.Close()
	tests := []struct {
		name     string
		setup    func(v *virtualStack) KeylessConfig
		contains []string
	}{
		{"Fulcio 500", func(v *virtualStack) KeylessConfig {
			v.fulcioCode = http.StatusInternalServerError
			return KeylessConfig{FulcioURL: v.fulcio.URL, TSAURL: v.tsa.URL}
		}, []string{"Fulcio at " + "http://127.0.0.1", "500"}},
		{"Fulcio unreachable", func(v *virtualStack) KeylessConfig {
			return KeylessConfig{FulcioURL: closedURL, TSAURL: v.tsa.URL}
		}, []string{"Fulcio at " + closedURL, "connection refused"}},
		{"TSA 503", func(v *virtualStack) KeylessConfig {
			v.tsaCode = http.StatusServiceUnavailable
			return KeylessConfig{FulcioURL: v.fulcio.URL, TSAURL: v.tsa.URL}
		}, []string{"timestamp authority at " + "http://127.0.0.1", "503"}},
		{"TSA unreachable", func(v *virtualStack) KeylessConfig {
			return KeylessConfig{FulcioURL: v.fulcio.URL, TSAURL: closedURL}
		}, []string{"timestamp authority at " + closedURL, "connection refused"}},
		{"Rekor unreachable", func(v *virtualStack) KeylessConfig {
			return KeylessConfig{FulcioURL: v.fulcio.URL, TSAURL: v.tsa.URL, RekorURL: closedURL}
		}, []string{"Rekor at " + closedURL}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := newVirtualStack(t)
			v.mu.Lock()
			cfg := tt.setup(v)
			v.mu.Unlock()
			cfg.IDToken = v.token(testSubject, "sigstore", time.Hour)
			cfg.TrustedRoot = v.trusted
			s, err := NewKeylessSigner(ctx, cfg, WithRetries(0), WithTimeout(10*time.Second))
			if err != nil {
				t.Fatal(err)
			}
			b, err := s.SignStatement(ctx, stmt)
			if err == nil || b != nil {
				t.Fatalf("signed despite the failure: %v", err)
			}
			for _, c := range tt.contains {
				if !strings.Contains(err.Error(), c) {
					t.Errorf("error %q does not mention %q", err, c)
				}
			}
		})
	}
}

// TestKeylessSelfCheck: a signer given a trusted root that does not cover
// its Fulcio refuses to return the bundle.
func TestKeylessSelfCheck(t *testing.T) {
	v, other := newVirtualStack(t), newVirtualStack(t)
	s, err := NewKeylessSigner(context.Background(), KeylessConfig{
		FulcioURL: v.fulcio.URL, TSAURL: v.tsa.URL, IDToken: v.token(testSubject, "sigstore", time.Hour), TrustedRoot: other.trusted,
	})
	if err != nil {
		t.Fatal(err)
	}
	_, digest, manifest := testLayout(t)
	if _, err := s.SignArtifact(context.Background(), manifest); err == nil || !strings.Contains(err.Error(), "verifying the new bundle") {
		t.Errorf("SignArtifact = %v", err)
	}
	if _, err := s.SignStatement(context.Background(), statementFor(t, digest, true)); err == nil {
		t.Error("SignStatement returned a bundle its trusted root refuses")
	}
	// Without a trusted root the signature itself is still checked.
	s2, err := NewKeylessSigner(context.Background(), KeylessConfig{FulcioURL: v.fulcio.URL, TSAURL: v.tsa.URL, IDToken: v.token(testSubject, "sigstore", time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s2.SignArtifact(context.Background(), manifest); err != nil {
		t.Error(err)
	}
}

// TestKeySignerCosignKeyFixture reads a key cosign itself wrote.
func TestKeySignerCosignKeyFixture(t *testing.T) {
	key := filepath.Join("testdata", "keys", "cosign.key")
	if _, err := NewKeySigner(key, []byte("not-the-password")); !errors.Is(err, ErrKeyPassword) {
		t.Fatalf("wrong password: %v", err)
	}
	s, err := NewKeySigner(key, []byte("twinforge-test"))
	if err != nil {
		t.Fatal(err)
	}
	_, digest, manifest := testLayout(t)
	bs := signBoth(t, s, digest, manifest, true)
	p := mustPolicy(t, policyDoc([]string{keyIdentity(filepath.Join(mustAbs(t, "testdata"), "keys", "cosign.pub"))}, "requireSignedTimestamp: false", "requireTransparencyLog: false"))
	if _, err := verify.Verify(context.Background(), verify.Request{Digest: digest, ImageManifest: manifest, Provenance: bs.Provenance, Image: bs.Image, Policy: p}); err != nil {
		t.Fatal(err)
	}
}

func mustAbs(t testing.TB, p string) string {
	t.Helper()
	abs, err := filepath.Abs(p)
	if err != nil {
		t.Fatal(err)
	}
	return abs
}
