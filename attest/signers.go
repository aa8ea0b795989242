package attest

import (
	"context"

	"github.com/sigstore/sigstore-go/pkg/root"
)

// SignerConfig chooses a Signer and its services, as twinforge's --sign
// flags do: a key signer when KeyPath is set, a keyless one otherwise.
type SignerConfig struct {
	// KeyPath is the private key file of a key signer (NewKeySigner),
	// decrypted with KeyPassword when it is encrypted.
	KeyPath     string
	KeyPassword []byte
	// FulcioURL is the certificate authority of a keyless signer; IDToken
	// or the file IDTokenFile its identity token, found with IDTokenFromEnv
	// when both are empty.
	FulcioURL   string
	IDToken     string
	IDTokenFile string
	// TSAURL and RekorURL name the timestamp authority and the Rekor v2
	// log; empty: none.
	TSAURL, RekorURL string
	// TrustedRoot, when set, verifies every bundle completely before it is
	// returned.
	TrustedRoot root.TrustedMaterial
}

// NewSigner returns the Signer cfg describes: NewKeySigner for KeyPath
// with the configured services, or NewKeylessSigner.
func NewSigner(ctx context.Context, cfg SignerConfig) (Signer, error) {
	if cfg.KeyPath != "" {
		var opts []Option
		if cfg.TrustedRoot != nil {
			opts = append(opts, WithTrustedRoot(cfg.TrustedRoot))
		}
		if cfg.TSAURL != "" {
			opts = append(opts, WithTimestampAuthority(cfg.TSAURL))
		}
		if cfg.RekorURL != "" {
			opts = append(opts, WithTransparencyLog(cfg.RekorURL))
		}
		return NewKeySigner(cfg.KeyPath, cfg.KeyPassword, opts...)
	}
	token, err := IDTokenFromEnv(ctx, WithIdentityToken(cfg.IDToken), WithIdentityTokenFile(cfg.IDTokenFile))
	if err != nil {
		return nil, err
	}
	return NewKeylessSigner(ctx, KeylessConfig{
		FulcioURL: cfg.FulcioURL, TSAURL: cfg.TSAURL, RekorURL: cfg.RekorURL, IDToken: token, TrustedRoot: cfg.TrustedRoot,
	})
}
