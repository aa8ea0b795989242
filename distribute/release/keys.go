package release

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// Key is a private key that signs release metadata: Ed25519 or ECDSA
// P-256, the TUF schemes ed25519 and ecdsa-sha2-nistp256.
type Key struct {
	signer signature.Signer
	public crypto.PublicKey
	id     string
	// Path is the file the key was read from, for messages.
	Path string
}

// ID is the key's TUF key ID (the sha256 of its canonical TUF form).
func (k *Key) ID() string { return k.id }

// Public is the key's public half.
func (k *Key) Public() crypto.PublicKey { return k.public }

// NewKey wraps a private key (ed25519.PrivateKey or *ecdsa.PrivateKey on
// P-256).
func NewKey(priv crypto.PrivateKey) (*Key, error) {
	var s signature.Signer
	var err error
	switch p := priv.(type) {
	case ed25519.PrivateKey:
		s, err = signature.LoadED25519Signer(p)
	case *ecdsa.PrivateKey:
		if p.Curve != elliptic.P256() {
			return nil, errors.New("ECDSA keys must be on P-256 (TUF's ecdsa-sha2-nistp256)")
		}
		s, err = signature.LoadECDSASigner(p, crypto.SHA256)
	default:
		return nil, fmt.Errorf("unsupported key type %T: use Ed25519 or ECDSA P-256", priv)
	}
	if err != nil {
		return nil, err
	}
	pub, err := s.PublicKey()
	if err != nil {
		return nil, err
	}
	id, err := KeyID(pub)
	if err != nil {
		return nil, err
	}
	return &Key{signer: s, public: pub, id: id}, nil
}

// KeyID returns the TUF key ID of a public key.
func KeyID(pub crypto.PublicKey) (string, error) {
	k, err := metadata.KeyFromPublicKey(pub)
	if err != nil {
		return "", fmt.Errorf("public key: %w", err)
	}
	return k.ID()
}

// GenerateKey makes a new Ed25519 key and writes it to path (PKCS #8 PEM,
// mode 0600) and its public key to path + ".pub" (PKIX PEM). An existing
// file is never overwritten.
func GenerateKey(path string) (*Key, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, err
	}
	k, err := NewKey(priv)
	if err != nil {
		return nil, err
	}
	pubPEM, err := cryptoutils.MarshalPublicKeyToPEM(k.public)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("writing key: %w", err)
	}
	if err := writeExclusive(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		return nil, fmt.Errorf("writing key: %w", err)
	}
	if err := writeExclusive(path+".pub", pubPEM, 0o644); err != nil {
		os.Remove(path)
		return nil, fmt.Errorf("writing public key: %w", err)
	}
	k.Path = path
	return k, nil
}

func writeExclusive(path string, data []byte, mode os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(path)
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		os.Remove(path)
		return err
	}
	return f.Close()
}

// LoadKey reads a private key file (PEM: PKCS #8, or SEC 1 for ECDSA).
func LoadKey(path string) (*Key, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading key: %w", err)
	}
	priv, err := cryptoutils.UnmarshalPEMToPrivateKey(data, nil)
	if err != nil {
		return nil, fmt.Errorf("key %s: %w (want an unencrypted PEM private key, as `twinforge release keygen` writes)", path, err)
	}
	k, err := NewKey(priv)
	if err != nil {
		return nil, fmt.Errorf("key %s: %w", path, err)
	}
	k.Path = path
	return k, nil
}

// LoadPublicKey reads a public key (PKIX PEM) or the public half of a
// private key file.
func LoadPublicKey(path string) (crypto.PublicKey, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading public key: %w", err)
	}
	if pub, err := cryptoutils.UnmarshalPEMToPublicKey(data); err == nil {
		if _, err := KeyID(pub); err != nil {
			return nil, fmt.Errorf("public key %s: %w", path, err)
		}
		return pub, nil
	}
	k, err := LoadKey(path)
	if err != nil {
		return nil, fmt.Errorf("public key %s: neither a PEM public key nor a private key: %w", path, err)
	}
	return k.public, nil
}
