package attest

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	protobundle "github.com/sigstore/protobuf-specs/gen/pb-go/bundle/v1"
	protocommon "github.com/sigstore/protobuf-specs/gen/pb-go/common/v1"
	"github.com/sigstore/sigstore-go/pkg/bundle"
	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore-go/pkg/sign"
	sgverify "github.com/sigstore/sigstore-go/pkg/verify"

	"github.com/twinforge/twinforge/attest/verify"
)

// Signer signs twinforge's evidence into Sigstore bundles. Every bundle a
// Signer returns has been verified by it first. Signers are safe for
// concurrent use.
type Signer interface {
	// SignStatement signs an in-toto Statement v1 (JSON) as a DSSE envelope
	// with payload type application/vnd.in-toto+json.
	SignStatement(ctx context.Context, statement []byte) (*bundle.Bundle, error)
	// SignArtifact signs data itself (a message signature over its sha256),
	// e.g. an image manifest, whose sha256 is the image digest. cosign
	// verify-blob --bundle accepts the result.
	SignArtifact(ctx context.Context, data []byte) (*bundle.Bundle, error)
}

// KeylessConfig names the Sigstore services a keyless Signer uses.
type KeylessConfig struct {
	// FulcioURL is the certificate authority's base URL. Required.
	FulcioURL string
	// TSAURL is the RFC 3161 timestamp authority: its base URL (the
	// standard path /api/v1/timestamp is added) or its full endpoint URL.
	TSAURL string
	// RekorURL is the base URL of a Rekor v2 transparency log.
	// At least one of TSAURL and RekorURL is required.
	RekorURL string
	// IDToken is the OIDC identity token Fulcio certifies. Required; see
	// IDTokenFromEnv.
	IDToken string
	// TrustedRoot, when set, is used to verify every bundle completely
	// (certificate chain, timestamp, log entry) before it is returned.
	// Without it the signer checks only the signature against the
	// certificate it was issued.
	TrustedRoot root.TrustedMaterial
}

// Option configures a Signer.
type Option func(*options) error

type options struct {
	timeout     time.Duration
	retries     uint
	transport   http.RoundTripper
	userAgent   string
	audience    string
	tsaURL      string
	rekorURL    string
	trustedRoot root.TrustedMaterial
	now         func() time.Time
}

func makeOptions(opts []Option) (*options, error) {
	o := &options{
		timeout:   30 * time.Second,
		retries:   1,
		userAgent: "twinforge",
		audience:  DefaultAudience,
		now:       time.Now,
	}
	for _, opt := range opts {
		if err := opt(o); err != nil {
			return nil, err
		}
	}
	return o, nil
}

// WithTimeout bounds each request to a Sigstore service, retries included.
// The default value is 30 seconds.
func WithTimeout(d time.Duration) Option {
	return func(o *options) error {
		if d <= 0 {
			return fmt.Errorf("timeout %s: must be positive", d)
		}
		o.timeout = d
		return nil
	}
}

// WithRetries sets how often a request that failed transiently (connection
// error, HTTP 429 or 5xx) is retried. The default value is 1.
func WithRetries(n uint) Option {
	return func(o *options) error { o.retries = n; return nil }
}

// WithHTTPTransport sets the transport for requests to Sigstore services
// (proxies, custom CAs). The default value is http.DefaultTransport.
func WithHTTPTransport(rt http.RoundTripper) Option {
	return func(o *options) error {
		if rt == nil {
			return errors.New("nil HTTP transport")
		}
		o.transport = rt
		return nil
	}
}

// WithUserAgent sets the User-Agent prefix of requests. The default value
// is "twinforge".
func WithUserAgent(ua string) Option {
	return func(o *options) error { o.userAgent = ua; return nil }
}

// WithAudience sets the audience a keyless signer requires of its identity
// token. The default value is DefaultAudience ("sigstore").
func WithAudience(aud string) Option {
	return func(o *options) error {
		if aud == "" {
			return errors.New("empty audience")
		}
		o.audience = aud
		return nil
	}
}

// WithTimestampAuthority makes a key signer add an RFC 3161 timestamp from
// the authority at url (base URL or full endpoint). By default a key signer
// contacts no service. Keyless signers take KeylessConfig.TSAURL instead.
func WithTimestampAuthority(url string) Option {
	return func(o *options) error {
		if url == "" {
			return errors.New("empty timestamp authority URL")
		}
		o.tsaURL = url
		return nil
	}
}

// WithTransparencyLog makes a key signer record its signature in the Rekor
// v2 log at url. By default a key signer contacts no service. Keyless
// signers take KeylessConfig.RekorURL instead.
func WithTransparencyLog(url string) Option {
	return func(o *options) error {
		if url == "" {
			return errors.New("empty transparency log URL")
		}
		o.rekorURL = url
		return nil
	}
}

// WithTrustedRoot gives a key signer the trusted root that covers its
// timestamp authority and transparency log, so that it verifies those parts
// of its bundles too. Without it a key signer verifies the signature only.
// Keyless signers take KeylessConfig.TrustedRoot instead.
func WithTrustedRoot(tm root.TrustedMaterial) Option {
	return func(o *options) error {
		if tm == nil {
			return errors.New("nil trusted root")
		}
		o.trustedRoot = tm
		return nil
	}
}

// services are the optional timestamp authority and log a signer uses.
type services struct {
	tsa    *sign.TimestampAuthority
	tsaURL string
	// rekor configures a Rekor client per entry: sigstore-go's client sets
	// itself up on first use without a lock, and SignBuild signs twice at
	// once.
	rekor    *sign.RekorOptions
	rekorURL string
}

func newServices(o *options, tsaURL, rekorURL string) (*services, error) {
	s := &services{}
	if tsaURL != "" {
		u, err := timestampURL(tsaURL)
		if err != nil {
			return nil, err
		}
		s.tsaURL = u
		s.tsa = sign.NewTimestampAuthority(&sign.TimestampAuthorityOptions{
			URL: u, Timeout: o.timeout, Retries: o.retries, Transport: o.transport, UserAgent: o.userAgent,
		})
	}
	if rekorURL != "" {
		u, err := baseURL("Rekor", rekorURL)
		if err != nil {
			return nil, err
		}
		s.rekorURL = u
		s.rekor = &sign.RekorOptions{
			BaseURL: u, Timeout: o.timeout, Retries: o.retries, Transport: o.transport, UserAgent: o.userAgent, Version: 2,
		}
	}
	return s, nil
}

func baseURL(service, s string) (string, error) {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("%s URL %q: want http(s)://host[:port][/path]", service, s)
	}
	return strings.TrimSuffix(s, "/"), nil
}

// timestampURL accepts a TSA base URL or its endpoint.
func timestampURL(s string) (string, error) {
	b, err := baseURL("timestamp authority", s)
	if err != nil {
		return "", err
	}
	u, _ := url.Parse(b)
	if u.Path == "" {
		return b + "/api/v1/timestamp", nil
	}
	return b, nil
}

// complete adds the timestamp and the log entry to a freshly signed bundle,
// naming the service that fails.
func (s *services) complete(ctx context.Context, pb *protobundle.Bundle, keyOrCertPEM []byte) error {
	if s.tsa != nil {
		sig := signatureBytes(pb)
		ts, err := s.tsa.GetTimestamp(ctx, sig)
		if err != nil {
			return fmt.Errorf("getting a timestamp from the timestamp authority at %s: %w", s.tsaURL, err)
		}
		vm := pb.VerificationMaterial
		if vm.TimestampVerificationData == nil {
			vm.TimestampVerificationData = &protobundle.TimestampVerificationData{}
		}
		vm.TimestampVerificationData.Rfc3161Timestamps = append(vm.TimestampVerificationData.Rfc3161Timestamps, rfc3161(ts))
	}
	if s.rekor != nil {
		// sigstore-go stores the client it creates in the options it was
		// given, so each entry gets its own copy of them.
		opts := *s.rekor
		if err := sign.NewRekor(&opts).GetTransparencyLogEntry(ctx, keyOrCertPEM, pb); err != nil {
			return fmt.Errorf("recording the signature in Rekor at %s: %w", s.rekorURL, err)
		}
	}
	return nil
}

func signatureBytes(pb *protobundle.Bundle) []byte {
	if env := pb.GetDsseEnvelope(); env != nil && len(env.Signatures) > 0 {
		return env.Signatures[0].Sig
	}
	return pb.GetMessageSignature().GetSignature()
}

// selfCheck verifies a bundle a signer just made. tm may be nil: then only
// the signature is checked, with the certificate's key or keyMaterial.
func selfCheck(b *bundle.Bundle, artifact []byte, tm root.TrustedMaterial, keyMaterial root.TrustedMaterial, s *services) error {
	vc, err := b.VerificationContent()
	if err != nil {
		return err
	}
	withCert := vc.Certificate() != nil
	if tm == nil {
		sc, err := b.SignatureContent()
		if err != nil {
			return err
		}
		km := keyMaterial
		if km == nil {
			km = &root.BaseTrustedMaterial{}
		}
		if sc.EnvelopeContent() != nil {
			return sgverify.VerifySignature(sc, vc, km)
		}
		return sgverify.VerifySignatureWithArtifacts(sc, vc, km, []io.Reader{bytes.NewReader(artifact)})
	}
	if keyMaterial != nil {
		tm = root.TrustedMaterialCollection{tm, keyMaterial}
	}
	var vopts []sgverify.VerifierOption
	if s.tsa != nil {
		vopts = append(vopts, sgverify.WithSignedTimestamps(1))
	}
	if s.rekor != nil {
		vopts = append(vopts, sgverify.WithTransparencyLog(1))
	}
	if s.tsa == nil {
		if withCert {
			vopts = append(vopts, sgverify.WithCurrentTime())
		} else {
			vopts = append(vopts, sgverify.WithNoObserverTimestamps())
		}
	}
	v, err := sgverify.NewVerifier(tm, vopts...)
	if err != nil {
		return err
	}
	artifactOpt := sgverify.WithoutArtifactUnsafe() // the statement was checked before signing
	if b.GetMessageSignature() != nil {
		artifactOpt = sgverify.WithArtifact(bytes.NewReader(artifact))
	}
	idOpt := sgverify.WithoutIdentitiesUnsafe() // whoever Fulcio certified: we just signed
	if !withCert {
		idOpt = sgverify.WithKey()
	}
	_, err = v.Verify(b, sgverify.NewPolicy(artifactOpt, idOpt))
	return err
}

func certificatePEM(pb *protobundle.Bundle) ([]byte, error) {
	raw := pb.GetVerificationMaterial().GetCertificate().GetRawBytes()
	if len(raw) == 0 {
		return nil, errors.New("bundle has no certificate")
	}
	if _, err := x509.ParseCertificate(raw); err != nil {
		return nil, fmt.Errorf("parsing the certificate Fulcio issued: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: raw}), nil
}

func statementContent(statement []byte) (sign.Content, error) {
	if _, err := verify.ParseStatement(statement); err != nil {
		return nil, err
	}
	return &sign.DSSEData{Data: statement, PayloadType: verify.PayloadType}, nil
}

func rfc3161(ts []byte) *protocommon.RFC3161SignedTimestamp {
	return &protocommon.RFC3161SignedTimestamp{SignedTimestamp: ts}
}

// signerMethods gives a signer both Signer methods from its one sign
// function, which makes a bundle of content (a DSSE statement or plain
// bytes) and checks it, against artifact when it signs plain bytes.
type signerMethods struct {
	sign func(ctx context.Context, content sign.Content, artifact []byte) (*bundle.Bundle, error)
}

func (m signerMethods) SignStatement(ctx context.Context, statement []byte) (*bundle.Bundle, error) {
	content, err := statementContent(statement)
	if err != nil {
		return nil, fmt.Errorf("signing statement: %w", err)
	}
	b, err := m.sign(ctx, content, nil)
	if err != nil {
		return nil, fmt.Errorf("signing statement: %w", err)
	}
	return b, nil
}

func (m signerMethods) SignArtifact(ctx context.Context, data []byte) (*bundle.Bundle, error) {
	b, err := m.sign(ctx, &sign.PlainData{Data: data}, data)
	if err != nil {
		return nil, fmt.Errorf("signing artifact: %w", err)
	}
	return b, nil
}
