package sigstack

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/sigstore/sigstore-go/pkg/root"
)

// ClientID is the OIDC client ID (the ID token audience) Fulcio accepts.
const ClientID = "sigstore"

// Loopback is the host every server listens on, and Rekor's --hostname:
// the checkpoint origin and the host of the log's URL in the trusted root.
const Loopback = "127.0.0.1"

// Names of the stack's servers: each logs to <dir>/<name>.log.
const (
	NameOIDC   = "oidc"
	NameFulcio = "fulcio"
	NameTSA    = "tsa"
	NameRekor  = "rekor"
)

// Stack is a running Sigstore stack. Its methods are safe for concurrent
// use.
type Stack struct {
	dir       string
	oidcURL   string // base of the OIDC server, issuer is oidcURL+"/oidc"
	fulcioURL string
	tsaURL    string
	rekorURL  string

	trustedRoot       *root.TrustedRoot
	trustedRootJSON   []byte
	signingConfig     *root.SigningConfig
	signingConfigJSON []byte

	mu        sync.Mutex // guards procs
	procs     []*process // in start order
	closeOnce sync.Once
	closeErr  error
	logger    *slog.Logger
}

// Claims describe the ID token IDToken mints.
type Claims struct {
	// Subject is the "sub" claim; required.
	Subject string
	// Email is the "email" claim, with email_verified true. Fulcio puts it
	// in the certificate's SAN; it requires one.
	Email string
	// Audience is the "aud" claim. The default is ClientID, which Fulcio
	// accepts.
	Audience string
	// Expiry is how long the token stays valid from now. The default is 10
	// minutes; a negative duration mints a token that has already expired.
	Expiry time.Duration
}

// Start runs the stack's four servers on free loopback ports, with their
// configuration, keys, storage and logs in dir (created if missing), and
// returns once each answers. It also writes dir/trusted_root.json and
// dir/signing_config.json. ctx bounds the start only: the servers run until
// Close. On error everything started is stopped, and a server that failed
// has the end of its log quoted in the error.
func Start(ctx context.Context, dir string, opts ...Option) (_ *Stack, err error) {
	o, err := makeOptions(opts)
	if err != nil {
		return nil, fmt.Errorf("configuring the sigstore stack: %w", err)
	}
	dir, err = filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("resolving the stack's directory: %w", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("creating the stack's directory: %w", err)
	}
	bins := map[string]string{}
	for _, name := range []string{"twinforge-oidc", "fulcio", "timestamp-server", "rekor-server"} {
		p, err := findBinary(o.binDir, name)
		if err != nil {
			return nil, err
		}
		bins[name] = p
	}
	ctx, cancel := context.WithTimeout(ctx, o.readyTimeout)
	defer cancel()

	s := &Stack{dir: dir, logger: o.logger}
	defer func() {
		if err != nil {
			err = errors.Join(err, s.Close())
		}
	}()
	// Anything signed by this stack is later than this: the trusted root's
	// validity starts here, a minute early for clock granularity.
	validFrom := time.Now().Add(-time.Minute).UTC().Truncate(time.Second)

	ports, err := freePorts(8)
	if err != nil {
		return nil, err
	}
	oidcPort, fulcioPort, fulcioGRPC, fulcioMetrics := ports[0], ports[1], ports[2], ports[3]
	tsaPort, rekorPort, rekorGRPC, rekorMetrics := ports[4], ports[5], ports[6], ports[7]
	s.oidcURL = "http://" + Loopback + ":" + oidcPort
	s.fulcioURL = "http://" + Loopback + ":" + fulcioPort
	s.tsaURL = "http://" + Loopback + ":" + tsaPort
	s.rekorURL = "http://" + Loopback + ":" + rekorPort

	// The issuer first: Fulcio reads its discovery document.
	oidc, err := s.start(dir, NameOIDC, bins["twinforge-oidc"], "--addr", Loopback+":"+oidcPort)
	if err != nil {
		return nil, err
	}
	if _, err := oidc.waitHTTP(ctx, s.OIDCIssuer()+"/.well-known/openid-configuration"); err != nil {
		return nil, err
	}

	fulcioCfg := filepath.Join(dir, "fulcio-config.json")
	if err := writeFulcioConfig(fulcioCfg, s.OIDCIssuer()); err != nil {
		return nil, err
	}
	fulcio, err := s.start(dir, NameFulcio, bins["fulcio"], "serve",
		"--ca", "ephemeralca",
		"--ct-log-url", "",
		"--config-path", fulcioCfg,
		"--host", Loopback, "--port", fulcioPort,
		"--grpc-host", Loopback, "--grpc-port", fulcioGRPC,
		"--metrics-port", fulcioMetrics,
		// Abstract socket, one per instance: the default name is shared.
		"--legacy-unix-domain-socket", "@twinforge-fulcio-"+randomSuffix(),
		"--log_type", "dev",
	)
	if err != nil {
		return nil, err
	}

	tsa, err := s.start(dir, NameTSA, bins["timestamp-server"], "serve",
		"--host", Loopback, "--port", tsaPort,
		"--timestamp-signer", "memory",
	)
	if err != nil {
		return nil, err
	}

	rekorKey := filepath.Join(dir, "rekor-signer.pem")
	rekorPub, err := writeEd25519Key(rekorKey)
	if err != nil {
		return nil, err
	}
	rekorStorage := filepath.Join(dir, "rekor")
	if err := os.MkdirAll(rekorStorage, 0o755); err != nil {
		return nil, fmt.Errorf("creating Rekor's storage: %w", err)
	}
	rekor, err := s.start(dir, NameRekor, bins["rekor-server"], "serve",
		"--hostname", Loopback,
		"--storage-dir", rekorStorage,
		"--signer-filepath", rekorKey,
		"--http-address", Loopback, "--http-port", rekorPort,
		"--grpc-address", Loopback, "--grpc-port", rekorGRPC,
		"--http-metrics-port", rekorMetrics,
		"--checkpoint-interval", "100ms", "--batch-max-age", "10ms",
	)
	if err != nil {
		return nil, err
	}

	bundle, err := fulcio.waitHTTP(ctx, s.fulcioURL+"/api/v2/trustBundle")
	if err != nil {
		return nil, err
	}
	chain, err := tsa.waitHTTP(ctx, s.tsaURL+"/api/v1/timestamp/certchain")
	if err != nil {
		return nil, err
	}
	if _, err := rekor.waitHTTP(ctx, s.rekorURL+"/healthz"); err != nil {
		return nil, err
	}

	tr, err := trustedRoot(validFrom, s.fulcioURL, bundle, s.tsaURL, chain, s.rekorURL, rekorPub)
	if err != nil {
		return nil, err
	}
	s.trustedRoot, s.trustedRootJSON = tr.root, tr.json
	if err := os.WriteFile(filepath.Join(dir, "trusted_root.json"), s.trustedRootJSON, 0o644); err != nil {
		return nil, fmt.Errorf("writing the trusted root: %w", err)
	}
	s.signingConfigJSON, err = signingConfig(validFrom, s.fulcioURL, s.OIDCIssuer(), s.TimestampURL(), s.rekorURL)
	if err != nil {
		return nil, err
	}
	if s.signingConfig, err = root.NewSigningConfigFromJSON(s.signingConfigJSON); err != nil {
		return nil, fmt.Errorf("parsing the signing config: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "signing_config.json"), s.signingConfigJSON, 0o644); err != nil {
		return nil, fmt.Errorf("writing the signing config: %w", err)
	}
	o.logger.Info("sigstore stack ready", "dir", dir, "oidc", s.OIDCIssuer(), "fulcio", s.fulcioURL,
		"tsa", s.tsaURL, "rekor", s.rekorURL, "rekor_log_id", hex.EncodeToString(tr.rekorLogID))
	return s, nil
}

func (s *Stack) start(dir, name, bin string, args ...string) (*process, error) {
	p, err := startProcess(dir, name, bin, args...)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.procs = append(s.procs, p)
	s.mu.Unlock()
	s.logger.Info("started", "server", name, "pid", p.cmd.Process.Pid, "log", p.logPath)
	return p, nil
}

// Dir is the directory the stack keeps its files in.
func (s *Stack) Dir() string { return s.dir }

// OIDCIssuer is the issuer URL, http://127.0.0.1:PORT/oidc: the "iss" of
// the tokens IDToken mints and the certificate's OIDC issuer extension.
func (s *Stack) OIDCIssuer() string { return s.oidcURL + "/oidc" }

// FulcioURL is Fulcio's base URL, for sign.FulcioOptions.BaseURL.
func (s *Stack) FulcioURL() string { return s.fulcioURL }

// TSAURL is the timestamp authority's base URL, http://127.0.0.1:PORT.
// sign.TimestampAuthorityOptions.URL wants TimestampURL instead.
func (s *Stack) TSAURL() string { return s.tsaURL }

// TimestampURL is the TSA's RFC 3161 endpoint, TSAURL()+"/api/v1/timestamp",
// for sign.TimestampAuthorityOptions.URL and cosign's --timestamp-server-url.
func (s *Stack) TimestampURL() string { return s.tsaURL + "/api/v1/timestamp" }

// RekorURL is the Rekor v2 log's base URL, for sign.RekorOptions.BaseURL
// with Version 2. Its host is the log's checkpoint origin.
func (s *Stack) RekorURL() string { return s.rekorURL }

// TrustedRoot is the sigstore-go trusted root of this stack: Fulcio's CA,
// the TSA's chain and the Rekor v2 log's key, valid from a minute before
// Start. It is the same document as TrustedRootJSON, parsed back.
func (s *Stack) TrustedRoot() *root.TrustedRoot { return s.trustedRoot }

// TrustedRootJSON is the trusted root as JSON (also in
// Dir()/trusted_root.json), for cosign's --trusted-root.
func (s *Stack) TrustedRootJSON() []byte { return append([]byte(nil), s.trustedRootJSON...) }

// SigningConfigJSON is a Sigstore signing config (media type
// application/vnd.dev.sigstore.signingconfig.v0.2+json, also in
// Dir()/signing_config.json) naming this stack's Fulcio, OIDC issuer, TSA
// and Rekor v2 log.
func (s *Stack) SigningConfigJSON() []byte { return append([]byte(nil), s.signingConfigJSON...) }

// SigningConfig is SigningConfigJSON parsed by sigstore-go: Rekor with
// major API version 2, the TSA by its TimestampURL.
func (s *Stack) SigningConfig() *root.SigningConfig { return s.signingConfig }

// Env lists the stack's endpoints as NAME=value pairs: TWINFORGE_OIDC_ISSUER,
// TWINFORGE_FULCIO_URL, TWINFORGE_TSA_URL (base URL), TWINFORGE_TSA_TIMESTAMP_URL,
// TWINFORGE_REKOR_URL, TWINFORGE_TRUSTED_ROOT and TWINFORGE_SIGNING_CONFIG
// (file paths).
func (s *Stack) Env() []string {
	return []string{
		"TWINFORGE_OIDC_ISSUER=" + s.OIDCIssuer(),
		"TWINFORGE_FULCIO_URL=" + s.FulcioURL(),
		"TWINFORGE_TSA_URL=" + s.TSAURL(),
		"TWINFORGE_TSA_TIMESTAMP_URL=" + s.TimestampURL(),
		"TWINFORGE_REKOR_URL=" + s.RekorURL(),
		"TWINFORGE_TRUSTED_ROOT=" + filepath.Join(s.dir, "trusted_root.json"),
		"TWINFORGE_SIGNING_CONFIG=" + filepath.Join(s.dir, "signing_config.json"),
	}
}

// IDToken mints an ID token signed by the stack's OIDC issuer. The issuer
// signs whatever it is asked: expired tokens and foreign audiences too.
func (s *Stack) IDToken(ctx context.Context, c Claims) (string, error) {
	if c.Subject == "" {
		return "", errors.New("minting an ID token: subject is required")
	}
	q := url.Values{"sub": {c.Subject}}
	if c.Email != "" {
		q.Set("email", c.Email)
	}
	if c.Audience != "" {
		q.Set("aud", c.Audience)
	}
	if c.Expiry != 0 {
		q.Set("exp", c.Expiry.String())
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.oidcURL+"/mint?"+q.Encode(), nil)
	if err != nil {
		return "", fmt.Errorf("minting an ID token: %w", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", fmt.Errorf("minting an ID token: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return "", fmt.Errorf("minting an ID token: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("minting an ID token: %s: %s", resp.Status, strings.TrimSpace(string(body)))
	}
	return strings.TrimSpace(string(body)), nil
}

// Stop stops one server of the stack (NameOIDC, NameFulcio, NameTSA or
// NameRekor) as Close would, to see what its clients do when it is down.
// Close does not report it as having exited on its own.
func (s *Stack) Stop(name string) error {
	p, err := s.proc(name)
	if err != nil {
		return err
	}
	if err := p.stop(); err != nil {
		return err
	}
	s.logger.Info("stopped", "server", name)
	return nil
}

// Restart starts a server Stop stopped again, with the same flags, keys and
// storage, and returns once it answers. Only the OIDC issuer and Rekor keep
// their identity across a restart (Rekor's key and log live in Dir); a new
// Fulcio or timestamp authority would have a new CA, which the trusted root
// does not hold, so those are refused.
func (s *Stack) Restart(ctx context.Context, name string) error {
	p, err := s.proc(name)
	if err != nil {
		return err
	}
	var health string
	switch name {
	case NameRekor:
		health = s.rekorURL + "/healthz"
	case NameOIDC:
		health = s.OIDCIssuer() + "/.well-known/openid-configuration"
	default:
		return fmt.Errorf("restarting %s: a new instance would have a key the trusted root does not hold; start a new stack", name)
	}
	if !p.exited() {
		return fmt.Errorf("restarting %s: it is running", name)
	}
	np, err := startProcess(s.dir, name, p.bin, p.args...)
	if err != nil {
		return err
	}
	s.mu.Lock()
	for i, q := range s.procs {
		if q == p {
			s.procs[i] = np
		}
	}
	s.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if _, err := np.waitHTTP(ctx, health); err != nil {
		return err
	}
	s.logger.Info("restarted", "server", name, "pid", np.cmd.Process.Pid)
	return nil
}

func (s *Stack) proc(name string) (*process, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range s.procs {
		if p.name == name {
			return p, nil
		}
	}
	return nil, fmt.Errorf("the stack has no server %q", name)
}

// Close stops every server (SIGTERM, then SIGKILL after 10s), newest first.
// It reports a server that had exited on its own before, with its log, or
// that had to be killed. Calling it again returns the same result.
func (s *Stack) Close() error {
	s.closeOnce.Do(func() {
		var errs []error
		s.mu.Lock()
		procs := append([]*process(nil), s.procs...)
		s.mu.Unlock()
		for i := len(procs) - 1; i >= 0; i-- {
			if err := procs[i].stop(); err != nil {
				errs = append(errs, err)
			}
		}
		s.closeErr = errors.Join(errs...)
		if s.closeErr != nil {
			s.closeErr = fmt.Errorf("stopping the sigstore stack: %w", s.closeErr)
		}
		s.logger.Info("sigstore stack stopped", "dir", s.dir)
	})
	return s.closeErr
}

func writeFulcioConfig(path, issuer string) error {
	cfg := map[string]any{
		"OIDCIssuers": map[string]any{
			issuer: map[string]string{"IssuerURL": issuer, "ClientID": ClientID, "Type": "email"},
		},
	}
	b, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding Fulcio's config: %w", err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		return fmt.Errorf("writing Fulcio's config: %w", err)
	}
	return nil
}

// writeEd25519Key writes a new PKCS #8 Ed25519 key for Rekor's checkpoint
// signer and returns its public half.
func writeEd25519Key(path string) (ed25519.PublicKey, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generating Rekor's key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, fmt.Errorf("encoding Rekor's key: %w", err)
	}
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		return nil, fmt.Errorf("writing Rekor's key: %w", err)
	}
	return pub, nil
}

func randomSuffix() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
