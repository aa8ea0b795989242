package attest

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"

	"github.com/secure-systems-lab/go-securesystemslib/encrypted"
	protocommon "github.com/sigstore/protobuf-specs/gen/pb-go/common/v1"
	"github.com/sigstore/sigstore-go/pkg/bundle"
	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore-go/pkg/sign"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/sigstore/sigstore/pkg/signature"
	sigopts "github.com/sigstore/sigstore/pkg/signature/options"

	"github.com/twinforge/twinforge/attest/verify"
)

// PEM block types of cosign's encrypted private keys (scrypt + secretbox,
// as written by `cosign generate-key-pair`).
const (
	sigstoreEncryptedKey = "ENCRYPTED SIGSTORE PRIVATE KEY"
	cosignEncryptedKey   = "ENCRYPTED COSIGN PRIVATE KEY"
)

var (
	// ErrKeyPassword is wrapped by NewKeySigner's error when an encrypted
	// key cannot be decrypted: no password given, or the wrong one.
	ErrKeyPassword = errors.New("cannot decrypt private key")
)

type keySigner struct {
	signerMethods
	keypair  *keyPair
	services *services
	opts     *options
	material root.TrustedMaterial
}

var _ Signer = (*keySigner)(nil)

// NewKeySigner returns a Signer that signs with the private key in the PEM
// file at path: a cosign key ("ENCRYPTED SIGSTORE PRIVATE KEY" or
// "ENCRYPTED COSIGN PRIVATE KEY", decrypted with password), or a plain
// PKCS #8, SEC 1 or PKCS #1 key (ECDSA P-256/384/521, Ed25519 or RSA
// 2048/3072/4096; password ignored), or a PKCS #8 "ENCRYPTED PRIVATE KEY".
// Ed25519 keys sign with Ed25519ph, as cosign does.
//
// By default no service is contacted: add WithTimestampAuthority and
// WithTransparencyLog (and WithTrustedRoot to verify what they return).
// Bundles carry the public key's hint, not the key: verifiers need the
// public key (a policy identity with publicKey).
func NewKeySigner(path string, password []byte, opts ...Option) (Signer, error) {
	o, err := makeOptions(opts)
	if err != nil {
		return nil, fmt.Errorf("configuring key signer: %w", err)
	}
	priv, err := loadPrivateKey(path, password)
	if err != nil {
		return nil, err
	}
	kp, err := newKeyPair(priv)
	if err != nil {
		return nil, fmt.Errorf("key %s: %w", path, err)
	}
	svc, err := newServices(o, o.tsaURL, o.rekorURL)
	if err != nil {
		return nil, fmt.Errorf("configuring key signer: %w", err)
	}
	material, err := verify.PublicKeyMaterial(kp.public)
	if err != nil {
		return nil, fmt.Errorf("key %s: %w", path, err)
	}
	s := &keySigner{keypair: kp, services: svc, opts: o, material: material}
	s.signerMethods = signerMethods{sign: s.sign}
	return s, nil
}

func (s *keySigner) sign(ctx context.Context, content sign.Content, artifact []byte) (*bundle.Bundle, error) {
	pb, err := sign.Bundle(content, s.keypair, sign.BundleOptions{Context: ctx})
	if err != nil {
		return nil, err
	}
	pubPEM, err := s.keypair.GetPublicKeyPem()
	if err != nil {
		return nil, err
	}
	if err := s.services.complete(ctx, pb, []byte(pubPEM)); err != nil {
		return nil, err
	}
	b, err := bundle.NewBundle(pb)
	if err != nil {
		return nil, fmt.Errorf("checking the new bundle: %w", err)
	}
	if err := selfCheck(b, artifact, s.opts.trustedRoot, s.material, s.services); err != nil {
		return nil, fmt.Errorf("verifying the new bundle: %w", err)
	}
	return b, nil
}

func loadPrivateKey(path string, password []byte) (crypto.Signer, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading private key: %w", err)
	}
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, fmt.Errorf("private key %s: no PEM block", path)
	}
	var priv crypto.PrivateKey
	switch block.Type {
	case sigstoreEncryptedKey, cosignEncryptedKey:
		if len(password) == 0 {
			return nil, fmt.Errorf("private key %s: %w: the key is encrypted and no password was given (COSIGN_PASSWORD)", path, ErrKeyPassword)
		}
		der, err := encrypted.Decrypt(block.Bytes, password)
		if err != nil {
			return nil, fmt.Errorf("private key %s: %w: wrong password (or a damaged key): %v", path, ErrKeyPassword, err)
		}
		if priv, err = x509.ParsePKCS8PrivateKey(der); err != nil {
			return nil, fmt.Errorf("private key %s: parsing the decrypted key: %w", path, err)
		}
	case "ENCRYPTED PRIVATE KEY":
		if len(password) == 0 {
			return nil, fmt.Errorf("private key %s: %w: the key is encrypted and no password was given", path, ErrKeyPassword)
		}
		priv, err = cryptoutils.UnmarshalPEMToPrivateKey(data, func(bool) ([]byte, error) { return password, nil })
		if err != nil {
			return nil, fmt.Errorf("private key %s: %w: %v", path, ErrKeyPassword, err)
		}
	default:
		priv, err = cryptoutils.UnmarshalPEMToPrivateKey(data, nil)
		if err != nil {
			return nil, fmt.Errorf("private key %s: %w", path, err)
		}
	}
	signer, ok := priv.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("private key %s: unsupported key type %T", path, priv)
	}
	return signer, nil
}

// keyPair is a sign.Keypair over a long-lived key.
type keyPair struct {
	signer  crypto.Signer
	public  crypto.PublicKey
	details signature.AlgorithmDetails
	hint    []byte
}

var _ sign.Keypair = (*keyPair)(nil)

func newKeyPair(s crypto.Signer) (*keyPair, error) {
	pub := s.Public()
	details, err := signature.GetDefaultAlgorithmDetails(pub, sigopts.WithED25519ph())
	if err != nil {
		return nil, fmt.Errorf("unsupported key: %w", err)
	}
	hint, err := verify.KeyHint(pub)
	if err != nil {
		return nil, err
	}
	return &keyPair{signer: s, public: pub, details: details, hint: []byte(hint)}, nil
}

func (k *keyPair) GetHashAlgorithm() protocommon.HashAlgorithm {
	return k.details.GetProtoHashType()
}

func (k *keyPair) GetSigningAlgorithm() protocommon.PublicKeyDetails {
	return k.details.GetSignatureAlgorithm()
}

func (k *keyPair) GetHint() []byte { return k.hint }

func (k *keyPair) GetKeyAlgorithm() string {
	switch k.public.(type) {
	case *ecdsa.PublicKey:
		return "ECDSA"
	case *rsa.PublicKey:
		return "RSA"
	case ed25519.PublicKey:
		return "ED25519"
	}
	return ""
}

func (k *keyPair) GetPublicKey() crypto.PublicKey { return k.public }

func (k *keyPair) GetPublicKeyPem() (string, error) {
	b, err := cryptoutils.MarshalPublicKeyToPEM(k.public)
	return string(b), err
}

// SignData signs data's digest (the data itself for pure Ed25519) and
// returns the signature and what was signed.
func (k *keyPair) SignData(_ context.Context, data []byte) ([]byte, []byte, error) {
	hf := k.details.GetHashType()
	toSign := data
	if hf != crypto.Hash(0) {
		h := hf.New()
		h.Write(data)
		toSign = h.Sum(nil)
	}
	sig, err := k.signer.Sign(rand.Reader, toSign, hf)
	if err != nil {
		return nil, nil, fmt.Errorf("signing: %w", err)
	}
	return sig, toSign, nil
}

// PublicKeyPEM is the PEM public key of a key Signer (NewKeySigner), so
// that someone else can verify what it signs; false for a keyless one,
// whose identity is in each bundle's certificate.
func PublicKeyPEM(s Signer) (string, bool) {
	k, ok := s.(*keySigner)
	if !ok {
		return "", false
	}
	pem, err := k.keypair.GetPublicKeyPem()
	return pem, err == nil
}
