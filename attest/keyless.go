package attest

import (
	"context"
	"errors"
	"fmt"

	"github.com/sigstore/sigstore-go/pkg/bundle"
	"github.com/sigstore/sigstore-go/pkg/sign"
)

type keylessSigner struct {
	signerMethods
	fulcio   *namedFulcio
	token    string
	services *services
	opts     *options
	cfg      KeylessConfig
}

var _ Signer = (*keylessSigner)(nil)

// NewKeylessSigner returns a Signer that signs with a fresh ephemeral key
// per bundle, certified by Fulcio for the identity in cfg.IDToken, with an
// RFC 3161 timestamp (cfg.TSAURL) and a Rekor v2 log entry (cfg.RekorURL);
// each of those two is optional, but one of them is required: a short-lived
// certificate means nothing without proof of when it was used.
//
// The identity token is checked up front (well-formed, not expired, for the
// audience, see WithAudience) and again before each signature. A failing
// service is named in the error; nothing is returned then.
func NewKeylessSigner(ctx context.Context, cfg KeylessConfig, opts ...Option) (Signer, error) {
	o, err := makeOptions(opts)
	if err != nil {
		return nil, fmt.Errorf("configuring keyless signer: %w", err)
	}
	switch {
	case o.tsaURL != "" || o.rekorURL != "":
		return nil, errors.New("configuring keyless signer: name the timestamp authority and log in KeylessConfig, not with options")
	case o.trustedRoot != nil:
		return nil, errors.New("configuring keyless signer: give the trusted root in KeylessConfig.TrustedRoot, not with WithTrustedRoot")
	case cfg.FulcioURL == "":
		return nil, errors.New("configuring keyless signer: no Fulcio URL")
	case cfg.TSAURL == "" && cfg.RekorURL == "":
		return nil, errors.New("configuring keyless signer: need a timestamp authority URL, a Rekor URL or both")
	case cfg.IDToken == "":
		return nil, fmt.Errorf("configuring keyless signer: %w: no identity token (see --identity-token, SIGSTORE_ID_TOKEN)", ErrInvalidIDToken)
	}
	fulcioURL, err := baseURL("Fulcio", cfg.FulcioURL)
	if err != nil {
		return nil, fmt.Errorf("configuring keyless signer: %w", err)
	}
	if _, err := checkIDToken(cfg.IDToken, o.audience, o.now()); err != nil {
		return nil, fmt.Errorf("configuring keyless signer: %w", err)
	}
	svc, err := newServices(o, cfg.TSAURL, cfg.RekorURL)
	if err != nil {
		return nil, fmt.Errorf("configuring keyless signer: %w", err)
	}
	_ = ctx // nothing to contact before the first signature
	s := &keylessSigner{
		fulcio: &namedFulcio{url: fulcioURL, fulcio: sign.NewFulcio(&sign.FulcioOptions{
			BaseURL: fulcioURL, Timeout: o.timeout, Retries: o.retries, Transport: o.transport, UserAgent: o.userAgent,
		})},
		token:    cfg.IDToken,
		services: svc,
		opts:     o,
		cfg:      cfg,
	}
	s.signerMethods = signerMethods{sign: s.sign}
	return s, nil
}

func (s *keylessSigner) sign(ctx context.Context, content sign.Content, artifact []byte) (*bundle.Bundle, error) {
	if _, err := checkIDToken(s.token, s.opts.audience, s.opts.now()); err != nil {
		return nil, err
	}
	keypair, err := sign.NewEphemeralKeypair(nil) // ECDSA P-256, a new key per bundle
	if err != nil {
		return nil, fmt.Errorf("generating ephemeral key: %w", err)
	}
	pb, err := sign.Bundle(content, keypair, sign.BundleOptions{
		CertificateProvider:        s.fulcio,
		CertificateProviderOptions: &sign.CertificateProviderOptions{IDToken: s.token},
		Context:                    ctx,
	})
	if err != nil {
		return nil, err
	}
	certPEM, err := certificatePEM(pb)
	if err != nil {
		return nil, err
	}
	if err := s.services.complete(ctx, pb, certPEM); err != nil {
		return nil, err
	}
	b, err := bundle.NewBundle(pb)
	if err != nil {
		return nil, fmt.Errorf("checking the new bundle: %w", err)
	}
	if err := selfCheck(b, artifact, s.cfg.TrustedRoot, nil, s.services); err != nil {
		return nil, fmt.Errorf("verifying the new bundle: %w", err)
	}
	return b, nil
}

// namedFulcio names Fulcio in the errors of sigstore-go's Fulcio client.
type namedFulcio struct {
	url    string
	fulcio *sign.Fulcio
}

var _ sign.CertificateProvider = (*namedFulcio)(nil)

func (f *namedFulcio) GetCertificate(ctx context.Context, kp sign.Keypair, opts *sign.CertificateProviderOptions) ([]byte, error) {
	der, err := f.fulcio.GetCertificate(ctx, kp, opts)
	if err != nil {
		return nil, fmt.Errorf("requesting a certificate from Fulcio at %s: %w", f.url, err)
	}
	return der, nil
}
