package verify

import (
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"time"

	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/sigstore/sigstore/pkg/signature"
	sigopts "github.com/sigstore/sigstore/pkg/signature/options"
)

// KeyHint is the public key hint twinforge puts in key-signed bundles and
// reports as SignerIdentity.PublicKey: base64 of the sha256 of the PKIX
// (DER) public key, as sigstore-go computes it.
func KeyHint(pub crypto.PublicKey) (string, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", fmt.Errorf("encoding public key: %w", err)
	}
	sum := sha256.Sum256(der)
	return base64.StdEncoding.EncodeToString(sum[:]), nil
}

// publicKeyVerifier loads the verifier twinforge uses for a public key:
// the algorithm's default hash, Ed25519ph for Ed25519 (as cosign signs).
func publicKeyVerifier(pub crypto.PublicKey) (signature.Verifier, error) {
	v, err := signature.LoadDefaultVerifier(pub, sigopts.WithED25519ph())
	if err != nil {
		return nil, fmt.Errorf("loading public key verifier: %w", err)
	}
	return v, nil
}

// PublicKeyMaterial is trusted material holding one public key, found
// under any key hint, valid at any time.
func PublicKeyMaterial(pub crypto.PublicKey) (root.TrustedMaterial, error) {
	v, err := publicKeyVerifier(pub)
	if err != nil {
		return nil, err
	}
	key := root.NewExpiringKey(v, time.Time{}, time.Time{})
	return root.NewTrustedPublicKeyMaterial(func(string) (root.TimeConstrainedVerifier, error) {
		return key, nil
	}), nil
}

// ParsePublicKey decodes a PEM public key ("PUBLIC KEY", or the public key
// of a "CERTIFICATE").
func ParsePublicKey(data []byte) (crypto.PublicKey, error) {
	pub, err := cryptoutils.UnmarshalPEMToPublicKey(data)
	if err != nil {
		return nil, fmt.Errorf("parsing public key: %w", err)
	}
	return pub, nil
}
