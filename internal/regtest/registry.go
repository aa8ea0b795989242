// Package regtest runs real OCI registries for twinforge's tests, each a
// separate process on a free loopback port with its own storage, stopped at
// cleanup: the CNCF distribution registry (bin/registry, no referrers API, so
// clients fall back to the referrers tag schema) and a go-containerregistry
// registry with the OCI 1.1 referrers API (bin/twinforge-refregistry). Both
// come from `make registry-tools`.
//
// NewFaultProxy puts a loopback reverse proxy in front of one of them that
// injects faults into matching requests: dropped connections, 5xx answers,
// delays, corrupted or rewritten responses. It is only ever used in front of
// a real registry.
package regtest

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/twinforge/twinforge/internal/testenv"
)

// Registry is a running registry process.
type Registry struct {
	// Host is "127.0.0.1:PORT".
	Host string
	// Dir is the registry's storage directory.
	Dir string
	// CACert is the PEM file of the CA that signed the server certificate,
	// when the registry serves HTTPS (WithTLS); empty for plain HTTP.
	CACert string
	// Username and Password are the credentials htpasswd auth accepts
	// (WithHtpasswd); empty without auth.
	Username, Password string

	cmd     *exec.Cmd
	logFile string
	exited  chan struct{}
	once    *sync.Once
	err     error
}

// Option configures StartDistribution.
type Option func(*config)

type config struct {
	tls            bool
	user, password string
}

// WithTLS serves HTTPS with a certificate for 127.0.0.1 from a fresh CA;
// Registry.CACert is the CA's PEM file.
func WithTLS() Option { return func(c *config) { c.tls = true } }

// WithHtpasswd requires basic auth with this user and password.
func WithHtpasswd(user, password string) Option {
	return func(c *config) { c.user, c.password = user, password }
}

// NeedRegistry skips the test under -short: real registries are processes.
func NeedRegistry(t testing.TB) {
	t.Helper()
	if testing.Short() {
		t.Skip("needs real registry processes; skipped with -short")
	}
}

// Binary returns one of the registry tools from bin/ (TWINFORGE_BIN
// overrides the directory) and fails the test when it is missing, naming the
// make target that builds it.
func Binary(t testing.TB, name string) string {
	t.Helper()
	dir := os.Getenv("TWINFORGE_BIN")
	if dir == "" {
		dir = filepath.Join(testenv.RepoRoot(t), "bin")
	}
	p := filepath.Join(dir, name)
	if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
		return p
	}
	t.Fatalf("%s not found in %s: run `make registry-tools`", name, dir)
	return ""
}

// StartDistribution starts the CNCF distribution registry (v3) with
// filesystem storage in a fresh directory. It has no referrers API.
func StartDistribution(t testing.TB, opts ...Option) *Registry {
	t.Helper()
	NeedRegistry(t)
	var c config
	for _, o := range opts {
		o(&c)
	}
	bin := Binary(t, "registry")
	dir := t.TempDir()
	r := &Registry{Dir: filepath.Join(dir, "storage")}
	var tlsConf, authConf string
	if c.tls {
		pki := testenv.NewPKI(t, dir)
		r.CACert = pki.CA
		tlsConf = fmt.Sprintf("  tls:\n    certificate: %s\n    key: %s\n", pki.ServerCert, pki.ServerKey)
	}
	if c.user != "" {
		hash, err := bcrypt.GenerateFromPassword([]byte(c.password), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		htpasswd := filepath.Join(dir, "htpasswd")
		if err := os.WriteFile(htpasswd, []byte(c.user+":"+string(hash)+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		r.Username, r.Password = c.user, c.password
		authConf = fmt.Sprintf("auth:\n  htpasswd:\n    realm: twinforge-test\n    path: %s\n", htpasswd)
	}
	secret := make([]byte, 16)
	_, _ = rand.Read(secret)
	r.start(t, func(addr string) *exec.Cmd {
		cfg := filepath.Join(dir, "config.yml")
		y := fmt.Sprintf(`version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: %s
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: %s
  secret: %s
%s%s`, r.Dir, addr, hex.EncodeToString(secret), tlsConf, authConf)
		if err := os.WriteFile(cfg, []byte(y), 0o600); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(bin, "serve", cfg)
		cmd.Env = append(os.Environ(), "OTEL_TRACES_EXPORTER=none")
		return cmd
	})
	return r
}

// StartReferrers starts go-containerregistry's registry with the OCI 1.1
// referrers API, blobs on disk in a fresh directory and manifests in memory.
func StartReferrers(t testing.TB) *Registry {
	t.Helper()
	NeedRegistry(t)
	bin := Binary(t, "twinforge-refregistry")
	r := &Registry{Dir: filepath.Join(t.TempDir(), "blobs")}
	r.start(t, func(addr string) *exec.Cmd {
		return exec.Command(bin, "-addr", addr, "-dir", r.Dir)
	})
	return r
}

// start runs the registry on a free port, trying another port if the
// process dies before it answers (another test may have taken the port).
func (r *Registry) start(t testing.TB, command func(addr string) *exec.Cmd) {
	t.Helper()
	logDir := t.TempDir()
	var lastErr error
	for attempt := 1; attempt <= 3; attempt++ {
		r.Host = "127.0.0.1:" + testenv.FreePort(t)
		r.logFile = filepath.Join(logDir, fmt.Sprintf("registry-%d.log", attempt))
		log, err := os.Create(r.logFile)
		if err != nil {
			t.Fatal(err)
		}
		cmd := command(r.Host)
		cmd.Stdout, cmd.Stderr = log, log
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		if err := cmd.Start(); err != nil {
			log.Close()
			t.Fatalf("starting %s: %v", cmd.Path, err)
		}
		r.cmd, r.exited, r.once, r.err = cmd, make(chan struct{}), new(sync.Once), nil
		go func() {
			r.err = cmd.Wait()
			log.Close()
			close(r.exited)
		}()
		if lastErr = r.waitReady(); lastErr == nil {
			t.Cleanup(func() {
				if err := r.Close(); err != nil {
					t.Errorf("stopping registry %s: %v", r.Host, err)
				}
			})
			return
		}
		_ = r.Close()
	}
	t.Fatalf("registry did not start: %v\n%s", lastErr, r.Logs())
}

// waitReady polls /v2/ until it answers (200, or 401 with auth).
func (r *Registry) waitReady() error {
	c := r.Client()
	c.Timeout = 2 * time.Second
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-r.exited:
			return fmt.Errorf("registry exited: %v", r.err)
		default:
		}
		resp, err := c.Get(r.URL() + "/v2/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusUnauthorized {
				return nil
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	return errors.New("no answer on /v2/ within 60s")
}

// URL is the registry's base URL, http://HOST or https://HOST.
func (r *Registry) URL() string {
	if r.CACert != "" {
		return "https://" + r.Host
	}
	return "http://" + r.Host
}

// Client returns an HTTP client that trusts the registry's CA and sends
// its credentials, for tests that inspect the registry directly.
func (r *Registry) Client() *http.Client {
	tr := &http.Transport{Proxy: nil, DialContext: (&net.Dialer{}).DialContext}
	if r.CACert != "" {
		pool := x509.NewCertPool()
		if b, err := os.ReadFile(r.CACert); err == nil {
			pool.AppendCertsFromPEM(b)
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	var rt http.RoundTripper = tr
	if r.Username != "" {
		rt = basicAuth{user: r.Username, password: r.Password, inner: tr}
	}
	return &http.Client{Transport: rt}
}

type basicAuth struct {
	user, password string
	inner          http.RoundTripper
}

func (b basicAuth) RoundTrip(req *http.Request) (*http.Response, error) {
	req = req.Clone(req.Context())
	req.SetBasicAuth(b.user, b.password)
	return b.inner.RoundTrip(req)
}

// Tags lists a repository's tags straight from the registry's API; none
// when the repository does not exist.
func (r *Registry) Tags(t testing.TB, repo string) []string {
	t.Helper()
	resp, err := r.Client().Get(r.URL() + "/v2/" + repo + "/tags/list")
	if err != nil {
		t.Fatalf("listing tags of %s: %v", repo, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		return nil
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("listing tags of %s: %s", repo, resp.Status)
	}
	var list struct {
		Tags []string `json:"tags"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&list); err != nil {
		t.Fatalf("listing tags of %s: %v", repo, err)
	}
	return list.Tags
}

// Exists says whether the registry has a manifest ("manifests") or blob
// ("blobs") in repo by digest or tag, with a HEAD request.
func (r *Registry) Exists(t testing.TB, repo, kind, ref string) bool {
	t.Helper()
	req, _ := http.NewRequest(http.MethodHead, r.URL()+"/v2/"+repo+"/"+kind+"/"+ref, nil)
	req.Header.Set("Accept", strings.Join([]string{
		"application/vnd.oci.image.manifest.v1+json", "application/vnd.oci.image.index.v1+json",
		"application/vnd.docker.distribution.manifest.v2+json", "application/vnd.docker.distribution.manifest.list.v2+json",
	}, ","))
	resp, err := r.Client().Do(req)
	if err != nil {
		t.Fatalf("HEAD %s: %v", req.URL, err)
	}
	resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
		return true
	case http.StatusNotFound:
		return false
	}
	t.Fatalf("HEAD %s: %s", req.URL, resp.Status)
	return false
}

// Logs returns what the registry process wrote so far.
func (r *Registry) Logs() string {
	b, _ := os.ReadFile(r.logFile)
	return string(bytes.TrimSpace(b))
}

// Close stops the registry: SIGTERM, then SIGKILL if it is still running
// after 10 seconds. It is safe to call more than once.
func (r *Registry) Close() error {
	var err error
	r.once.Do(func() {
		select {
		case <-r.exited:
			return
		default:
		}
		_ = r.cmd.Process.Signal(syscall.SIGTERM)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		select {
		case <-r.exited:
		case <-ctx.Done():
			_ = r.cmd.Process.Kill()
			<-r.exited
			err = fmt.Errorf("registry %s ignored SIGTERM; killed", r.Host)
		}
	})
	return err
}
