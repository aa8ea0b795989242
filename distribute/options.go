package distribute

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// Option configures Push and Replicate.
type Option func(*options) error

type options struct {
	transport http.RoundTripper
	caCert    string
	insecure  bool
	keychain  authn.Keychain
	progress  chan<- Update
	jobs      int
	backoff   Backoff
	userAgent string
	blobRead  bool

	// Added for long-running readers (lookup.go).
	anyHostHTTPS   bool
	referrerFilter func([]v1.Descriptor) ([]v1.Descriptor, error)
	referrerLimit  int64
	puller         *Puller
}

// Backoff says how often and how long to wait before retrying a request that
// failed with a 5xx status or a broken connection.
type Backoff = remote.Backoff

// DefaultBackoff is the retry schedule unless WithRetryBackoff says
// otherwise: up to 4 attempts, waiting 1s, 3s and 9s in between.
var DefaultBackoff = Backoff{Duration: time.Second, Factor: 3, Jitter: 0.1, Steps: 4}

const defaultJobs = 4

// WithTransport sets the HTTP transport requests go through. The default is
// go-containerregistry's remote.DefaultTransport. It cannot be combined with
// WithCACert: configure the transport's TLS roots instead. Retries,
// authentication and the plain-HTTP policy are layered on top of it.
func WithTransport(t http.RoundTripper) Option {
	return func(o *options) error {
		if t == nil {
			return errors.New("WithTransport: nil transport")
		}
		o.transport = t
		return nil
	}
}

// WithCACert trusts the CA certificates in a PEM file, in addition to the
// system's roots, for registries served over HTTPS. The default is the
// system's roots only.
func WithCACert(pemFile string) Option {
	return func(o *options) error {
		if pemFile == "" {
			return errors.New("WithCACert: empty file name")
		}
		o.caCert = pemFile
		return nil
	}
}

// WithInsecureLoopbackUnsafe allows plain HTTP to registries on loopback
// hosts (127.0.0.0/8, ::1, localhost), as local test registries serve it.
// Any other host stays HTTPS-only: naming one with this option is an error.
// By default, plain HTTP is refused for every host.
//
// Do not use this option unless you know what you are doing.
func WithInsecureLoopbackUnsafe() Option {
	return func(o *options) error {
		o.insecure = true
		return nil
	}
}

// WithKeychain sets where registry credentials come from. The default is
// authn.DefaultKeychain: the Docker config ($DOCKER_CONFIG/config.json) and
// its credential helpers.
func WithKeychain(k authn.Keychain) Option {
	return func(o *options) error {
		if k == nil {
			return errors.New("WithKeychain: nil keychain")
		}
		o.keychain = k
		return nil
	}
}

// WithKeychainFirst has credentials come from k before the keychain set so
// far (WithKeychain, or the default), and turns off the shared Puller
// (WithPuller) for these options: what k's credentials opened must not
// serve a request made without them. Admission passes a pod's pull secrets
// this way. Give it after WithKeychain and WithPuller.
func WithKeychainFirst(k authn.Keychain) Option {
	return func(o *options) error {
		if k == nil {
			return errors.New("WithKeychainFirst: nil keychain")
		}
		o.keychain = authn.NewMultiKeychain(k, o.keychain)
		o.puller = nil
		return nil
	}
}

// WithProgress sends progress updates to ch, which Push and Replicate close
// when they return. The caller must keep receiving until then. By default no
// updates are sent.
func WithProgress(ch chan<- Update) Option {
	return func(o *options) error {
		if ch == nil {
			return errors.New("WithProgress: nil channel")
		}
		o.progress = ch
		return nil
	}
}

// WithJobs sets how many destinations Replicate copies at the same time, and
// how many blobs go up at once per image. The default value is 4.
func WithJobs(n int) Option {
	return func(o *options) error {
		if n < 1 {
			return fmt.Errorf("WithJobs(%d): need at least 1", n)
		}
		o.jobs = n
		return nil
	}
}

// WithRetryBackoff sets the retry schedule for requests that fail with a 5xx
// status or a broken connection. The default is DefaultBackoff; Steps 1
// disables retries.
func WithRetryBackoff(b Backoff) Option {
	return func(o *options) error {
		if b.Steps < 1 {
			return fmt.Errorf("WithRetryBackoff: Steps %d: need at least 1 attempt", b.Steps)
		}
		o.backoff = b
		return nil
	}
}

// WithUserAgent sets the User-Agent sent to registries. The default is
// "twinforge".
func WithUserAgent(ua string) Option {
	return func(o *options) error {
		o.userAgent = ua
		return nil
	}
}

func makeOptions(opts ...Option) (*options, error) {
	o := &options{
		keychain:  authn.DefaultKeychain,
		jobs:      defaultJobs,
		backoff:   DefaultBackoff,
		userAgent: "twinforge",
	}
	for _, opt := range opts {
		if err := opt(o); err != nil {
			return nil, err
		}
	}
	base := o.transport
	switch {
	case base != nil && o.caCert != "":
		return nil, errors.New("WithCACert and WithTransport conflict: put the CA into the transport's TLS configuration")
	case base == nil:
		tr := remote.DefaultTransport.(*http.Transport).Clone()
		tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
		if o.caCert != "" {
			pool, err := certPool(o.caCert)
			if err != nil {
				return nil, err
			}
			tr.TLSClientConfig.RootCAs = pool
		}
		base = tr
	}
	o.transport = &schemeGuard{inner: capManifests(base), allowLoopbackHTTP: o.insecure}
	if p := o.puller; p != nil && (p.o.insecure != o.insecure || p.o.anyHostHTTPS != o.anyHostHTTPS) {
		// The Puller's transport decides what plain HTTP is allowed: a
		// call must not get more than its own options say.
		return nil, errors.New("WithPuller: the Puller was made with another plain-HTTP policy than these options")
	}
	return o, nil
}

func certPool(pemFile string) (*x509.CertPool, error) {
	b, err := os.ReadFile(pemFile)
	if err != nil {
		return nil, fmt.Errorf("reading CA certificate: %w", err)
	}
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("reading CA certificate %s: no PEM certificate in it", pemFile)
	}
	return pool, nil
}

// checkRegistry refuses plain HTTP to a host that is not loopback before any
// request is made.
func (o *options) checkRegistry(reg name.Registry) error {
	if o.insecure && !o.anyHostHTTPS && !isLoopback(reg.RegistryStr()) {
		return fmt.Errorf("%w: plain HTTP is allowed only for loopback registries (127.0.0.0/8, ::1, localhost), not %s", ErrInsecure, reg.RegistryStr())
	}
	return nil
}

// connection is how go-containerregistry reaches registries for these
// options: the guarded transport, the keychain, the retry policy (of a
// request, until its response begins; see again for the rest) and the user
// agent.
func (o *options) connection() []remote.Option {
	return []remote.Option{
		remote.WithTransport(o.transport),
		remote.WithAuthFromKeychain(o.keychain),
		remote.WithJobs(o.jobs),
		remote.WithRetryBackoff(o.backoff),
		remote.WithRetryPredicate(retryable),
		remote.WithRetryStatusCodes(retryStatusCodes...),
		remote.WithUserAgent(o.userAgent),
	}
}

// remote returns go-containerregistry options for one call.
func (o *options) remote(ctx context.Context) []remote.Option {
	return append(o.connection(), remote.WithContext(ctx))
}

// again runs f, a read of a whole response, until it succeeds, fails in a
// way not worth retrying, or the backoff's attempts are used up.
// go-containerregistry retries a request until its response begins
// (WithRetryBackoff), and its uploads whole; but a download that breaks
// midway fails only while the caller reads the body, after
// go-containerregistry has returned, and nothing retries it. Failures
// go-containerregistry has retried already (an HTTP status, a request that
// got no response) are not retried again here.
func (o *options) again(ctx context.Context, f func() error) error {
	b := o.backoff
	for {
		err := f()
		if err == nil || !brokenBody(err) || b.Steps <= 1 {
			return err
		}
		t := time.NewTimer(b.Step())
		select {
		case <-ctx.Done():
			t.Stop()
			return errors.Join(err, ctx.Err())
		case <-t.C:
		}
	}
}

// brokenBody says whether err is a retryable failure while reading a
// response body, not of the request itself.
func brokenBody(err error) bool {
	var terr *transport.Error
	var uerr *url.Error
	return retryable(err) && !errors.As(err, &terr) && !errors.As(err, &uerr)
}

var retryStatusCodes = []int{
	http.StatusRequestTimeout,
	http.StatusTooManyRequests,
	http.StatusInternalServerError,
	http.StatusBadGateway,
	http.StatusServiceUnavailable,
	http.StatusGatewayTimeout,
}

// retryable says whether a failed request is worth another attempt: 5xx,
// 408 and 429 answers and broken connections are; refusals, DNS failures,
// TLS errors and a cancelled context are not.
func retryable(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, ErrInsecure) {
		return false
	}
	var terr *transport.Error
	if errors.As(err, &terr) {
		for _, c := range retryStatusCodes {
			if terr.StatusCode == c {
				return true
			}
		}
		return terr.Temporary()
	}
	return errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, net.ErrClosed)
}

// isLoopback says whether a registry host (with or without port) is a
// loopback address or localhost.
func isLoopback(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// schemeGuard refuses plain-HTTP requests unless they go to a loopback host
// and the caller allowed it. go-containerregistry falls back to HTTP on its
// own for loopback, RFC 1918 and .local hosts; this is where that stops.
type schemeGuard struct {
	inner             http.RoundTripper
	allowLoopbackHTTP bool
}

var _ http.RoundTripper = (*schemeGuard)(nil)

func (g *schemeGuard) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.URL.Scheme == "http" {
		if !isLoopback(r.URL.Host) {
			return nil, fmt.Errorf("%w: refusing plain HTTP to %s", ErrInsecure, r.URL.Host)
		}
		if !g.allowLoopbackHTTP {
			return nil, fmt.Errorf("%w: refusing plain HTTP to %s (allowed for loopback registries only with WithInsecureLoopbackUnsafe / --insecure)", ErrInsecure, r.URL.Host)
		}
	}
	return g.inner.RoundTrip(r)
}

// WithBlobReadBack makes the read-back after every write download each blob
// and hash it, instead of asking the registry for its size and digest with
// a HEAD request. Manifests are always downloaded and hashed. The default is
// HEAD: registries check a blob's digest when it is uploaded, and a
// download per blob and destination doubles the traffic of every copy.
func WithBlobReadBack() Option {
	return func(o *options) error { o.blobRead = true; return nil }
}

// maxManifestBytes bounds a manifest or referrers listing read from a
// registry.
const maxManifestBytes = 16 << 20

// errManifestTooLarge is a manifest response above maxManifestBytes.
var errManifestTooLarge = fmt.Errorf("manifest larger than %d bytes", maxManifestBytes)

// capManifests cuts manifest and referrers responses off after
// maxManifestBytes. go-containerregistry reads up to 100 MiB of each into
// memory; the webhook reads manifests of whatever images users name, many
// at once, and no manifest twinforge handles comes near 16 MiB.
func capManifests(inner http.RoundTripper) http.RoundTripper {
	return roundTripFunc(func(r *http.Request) (*http.Response, error) {
		resp, err := inner.RoundTrip(r)
		if err != nil || r.Method != http.MethodGet || !(strings.Contains(r.URL.Path, "/manifests/") || strings.Contains(r.URL.Path, "/referrers/")) {
			return resp, err
		}
		resp.Body = &cappedBody{ReadCloser: resp.Body, left: maxManifestBytes}
		return resp, nil
	})
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// cappedBody fails a read beyond its limit instead of truncating, so that
// too large is not mistaken for corrupt.
type cappedBody struct {
	io.ReadCloser
	left int64
}

func (b *cappedBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		// One byte more than allowed tells too large from just right.
		var one [1]byte
		n, err := b.ReadCloser.Read(one[:])
		if n > 0 {
			return 0, errManifestTooLarge
		}
		return 0, err
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.ReadCloser.Read(p)
	b.left -= int64(n)
	return n, err
}
