package attest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/twinforge/twinforge/attest/verify"
)

// SignSettings choose how a build is signed, each field named after the
// flag of `twinforge build` that gives it; NewSigner makes the Signer.
type SignSettings struct {
	// Sign (sign) is keyless, key=FILE or none.
	Sign string
	// IDToken and IDTokenFile (identity-token, identity-token-file) are the
	// OIDC identity token of keyless signing.
	IDToken, IDTokenFile string
	// FulcioURL, TSAURL and RekorURL (fulcio-url, tsa-url, rekor-url) name
	// the services. TSAURLGiven says TSAURL was given rather than
	// defaulted: the default timestamp authority is for keyless
	// signatures, and a key signature contacts a service only when told to.
	FulcioURL, TSAURL, RekorURL string
	TSAURLGiven                 bool
	// TrustedRootFile (trusted-root) verifies every bundle before it is
	// kept.
	TrustedRootFile string
	// KeyPassword decrypts the key of key=FILE.
	KeyPassword []byte
}

// Method is "keyless", "none", or "key" with the key file of key=FILE. An
// error names --sign.
func (s SignSettings) Method() (method, keyPath string, err error) {
	switch {
	case s.Sign == "keyless" || s.Sign == "none":
		return s.Sign, "", nil
	case strings.HasPrefix(s.Sign, "key="):
		keyPath = strings.TrimPrefix(s.Sign, "key=")
		if _, err := os.Stat(keyPath); err != nil {
			return "", "", fmt.Errorf("--sign key=%s: %v", keyPath, err)
		}
		return "key", keyPath, nil
	}
	return "", "", fmt.Errorf("--sign %q: use keyless, key=FILE or none", s.Sign)
}

// Check checks the settings as a person gave them, before anything is
// signed, and returns the Method; every error names the flag at fault.
func (s SignSettings) Check() (method string, err error) {
	if s.IDToken != "" && s.IDTokenFile != "" {
		return "", errors.New("give --identity-token-file or --identity-token, not both")
	}
	method, _, err = s.Method()
	return method, err
}

// NewSigner makes the Signer s chooses; nil for none.
func (s SignSettings) NewSigner(ctx context.Context) (Signer, error) {
	method, keyPath, err := s.Method()
	if err != nil || method == "none" {
		return nil, err
	}
	cfg := SignerConfig{FulcioURL: s.FulcioURL, IDToken: s.IDToken, IDTokenFile: s.IDTokenFile, TSAURL: s.TSAURL, RekorURL: s.RekorURL}
	if s.TrustedRootFile != "" {
		tr, err := verify.LoadTrustedRoot(s.TrustedRootFile)
		if err != nil {
			return nil, err
		}
		cfg.TrustedRoot = tr
	}
	if method == "key" {
		cfg.KeyPath, cfg.KeyPassword = keyPath, s.KeyPassword
		if !s.TSAURLGiven {
			cfg.TSAURL = ""
		}
	}
	return NewSigner(ctx, cfg)
}
