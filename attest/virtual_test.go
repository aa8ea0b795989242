package attest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/digitorus/timestamp"
	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore-go/pkg/testing/ca"
)

// virtualStack is an in-process Fulcio and timestamp authority made from
// sigstore-go's pkg/testing/ca certificate helpers (the pieces its
// VirtualSigstore is built from), served over httptest so that the
// signers' real HTTP paths run. It has no transparency log: the real
// stack tests cover Rekor.
type virtualStack struct {
	issuer string

	rootCert, fulcioCert *x509.Certificate
	fulcioKey            *ecdsa.PrivateKey
	tsaChain             []*x509.Certificate // leaf, intermediate
	tsaKey               *ecdsa.PrivateKey

	fulcio, tsa *httptest.Server
	trusted     *root.TrustedRoot

	mu         sync.Mutex
	notBefore  func() time.Time // certificate validity start; default now
	fulcioCode int              // non-zero: Fulcio answers with this status
	tsaCode    int
	requests   map[string]int
}

func newVirtualStack(t testing.TB) *virtualStack {
	t.Helper()
	rootCert, rootKey, err := ca.GenerateRootCa()
	if err != nil {
		t.Fatal(err)
	}
	fulcioCert, fulcioKey, err := fulcioIntermediate(rootCert, rootKey)
	if err != nil {
		t.Fatal(err)
	}
	tsaInter, tsaInterKey, err := ca.GenerateTSAIntermediate(rootCert, rootKey)
	if err != nil {
		t.Fatal(err)
	}
	tsaKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tsaLeaf, err := ca.GenerateTSALeafCert(time.Now().Add(-5*time.Minute), tsaKey, tsaInter, tsaInterKey)
	if err != nil {
		t.Fatal(err)
	}
	v := &virtualStack{
		issuer:     "https://oidc.virtual.test",
		rootCert:   rootCert,
		fulcioCert: fulcioCert,
		fulcioKey:  fulcioKey,
		tsaChain:   []*x509.Certificate{tsaLeaf, tsaInter},
		tsaKey:     tsaKey,
		notBefore:  time.Now,
		requests:   map[string]int{},
	}
	v.fulcio = httptest.NewServer(http.HandlerFunc(v.serveFulcio))
	t.Cleanup(v.fulcio.Close)
	v.tsa = httptest.NewServer(http.HandlerFunc(v.serveTSA))
	t.Cleanup(v.tsa.Close)
	v.trusted, err = root.NewTrustedRoot(root.TrustedRootMediaType01,
		[]root.CertificateAuthority{&root.FulcioCertificateAuthority{
			Root: rootCert, Intermediates: []*x509.Certificate{fulcioCert},
			ValidityPeriodStart: time.Now().Add(-time.Hour), URI: v.fulcio.URL,
		}},
		nil,
		[]root.TimestampingAuthority{&root.SigstoreTimestampingAuthority{
			Root: rootCert, Intermediates: []*x509.Certificate{tsaInter}, Leaf: tsaLeaf,
			ValidityPeriodStart: time.Now().Add(-time.Hour), URI: v.tsa.URL,
		}},
		nil)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// token mints an unsigned JWT-shaped token (the virtual Fulcio does not
// verify it; the signer's own checks read its claims).
func (v *virtualStack) token(subject string, aud any, expiry time.Duration) string {
	return v.tokenWith(subject, aud, expiry, nil)
}

// tokenWith adds claims; "source_repository_uri" makes the virtual Fulcio
// put that repository in the certificate, as Fulcio does for GitHub.
func (v *virtualStack) tokenWith(subject string, aud any, expiry time.Duration, extra map[string]any) string {
	claims := map[string]any{"iss": v.issuer, "sub": subject, "email": subject, "email_verified": true, "aud": aud, "exp": time.Now().Add(expiry).Unix()}
	for k, val := range extra {
		claims[k] = val
	}
	payload, _ := json.Marshal(claims)
	enc := base64.RawURLEncoding.EncodeToString
	return enc([]byte(`{"alg":"RS256"}`)) + "." + enc(payload) + "." + enc([]byte("sig"))
}

func (v *virtualStack) count(name string) int {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.requests[name]
}

// publicOnly is a crypto.Signer that only knows a public key: what
// ca.GenerateLeafCert needs to certify a key it does not hold.
type publicOnly struct{ pub crypto.PublicKey }

func (p publicOnly) Public() crypto.PublicKey { return p.pub }
func (p publicOnly) Sign(io.Reader, []byte, crypto.SignerOpts) ([]byte, error) {
	return nil, fmt.Errorf("public key only")
}

func (v *virtualStack) serveFulcio(w http.ResponseWriter, r *http.Request) {
	v.mu.Lock()
	v.requests["fulcio"]++
	code, notBefore := v.fulcioCode, v.notBefore
	v.mu.Unlock()
	if code != 0 {
		http.Error(w, "virtual Fulcio is failing", code)
		return
	}
	if r.Method != http.MethodPost || r.URL.Path != "/api/v2/signingCert" {
		http.NotFound(w, r)
		return
	}
	var req struct {
		PublicKeyRequest struct {
			PublicKey struct {
				Content string `json:"content"`
			} `json:"publicKey"`
		} `json:"publicKeyRequest"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	block, _ := pem.Decode([]byte(req.PublicKeyRequest.PublicKey.Content))
	if block == nil {
		http.Error(w, "no public key", http.StatusBadRequest)
		return
	}
	pub, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	tok := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		http.Error(w, "bad token", http.StatusUnauthorized)
		return
	}
	payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
	var claims struct {
		Email      string `json:"email"`
		Iss        string `json:"iss"`
		SourceRepo string `json:"source_repository_uri"`
	}
	_ = json.Unmarshal(payload, &claims)
	var leaf *x509.Certificate
	if claims.SourceRepo != "" {
		leaf, err = leafWithSourceRepository(claims.Email, claims.Iss, claims.SourceRepo, notBefore(), pub, v.fulcioCert, v.fulcioKey)
	} else {
		leaf, err = ca.GenerateLeafCert(claims.Email, claims.Iss, notBefore(), publicOnly{pub}, v.fulcioCert, v.fulcioKey)
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	pemOf := func(c *x509.Certificate) string {
		return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw}))
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{
		"signedCertificateEmbeddedSct": map[string]any{
			"chain": map[string]any{"certificates": []string{pemOf(leaf), pemOf(v.fulcioCert), pemOf(v.rootCert)}},
		},
	})
}

func (v *virtualStack) serveTSA(w http.ResponseWriter, r *http.Request) {
	v.mu.Lock()
	v.requests["tsa"]++
	code := v.tsaCode
	v.mu.Unlock()
	if code != 0 {
		http.Error(w, "virtual TSA is failing", code)
		return
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	req, err := timestamp.ParseRequest(body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	ts := timestamp.Timestamp{
		HashAlgorithm:     req.HashAlgorithm,
		HashedMessage:     req.HashedMessage,
		Time:              time.Now(),
		Nonce:             req.Nonce,
		Policy:            asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 57264, 2},
		AddTSACertificate: req.Certificates,
		ExtraExtensions:   req.Extensions,
	}
	resp, err := ts.CreateResponseWithOpts(v.tsaChain[0], v.tsaKey, crypto.SHA256)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/timestamp-reply")
	_, _ = w.Write(resp)
}

// fulcioIntermediate is ca.GenerateFulcioIntermediate valid from an hour
// ago, so that the stack can issue certificates that have already expired.
func fulcioIntermediate(parent *x509.Certificate, parentKey crypto.Signer) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(2),
		Subject:               pkix.Name{CommonName: "virtual-fulcio-intermediate", Organization: []string{"twinforge.test"}},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(2 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		return nil, nil, err
	}
	cert, err := x509.ParseCertificate(der)
	return cert, key, err
}

// leafWithSourceRepository is a Fulcio leaf certificate that also carries
// the Source Repository URI extension (1.3.6.1.4.1.57264.1.12), which
// Fulcio sets from a GitHub Actions token.
func leafWithSourceRepository(email, issuer, repo string, notBefore time.Time, pub crypto.PublicKey, parent *x509.Certificate, parentKey crypto.Signer) (*x509.Certificate, error) {
	repoDER, err := asn1.MarshalWithParams(repo, "utf8")
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:   big.NewInt(2),
		EmailAddresses: []string{email},
		NotBefore:      notBefore,
		NotAfter:       notBefore.Add(10 * time.Minute),
		KeyUsage:       x509.KeyUsageDigitalSignature,
		ExtKeyUsage:    []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning},
		ExtraExtensions: []pkix.Extension{
			{Id: asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 57264, 1, 1}, Value: []byte(issuer)},
			{Id: asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 57264, 1, 12}, Value: repoDER},
		},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, parentKey)
	if err != nil {
		return nil, err
	}
	return x509.ParseCertificate(der)
}
