package admission

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"

	"github.com/twinforge/twinforge/internal/testenv"
)

// httpsClient trusts the CA in caFile only.
func httpsClient(t testing.TB, caFile string) *http.Client {
	t.Helper()
	pem, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	return &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, DisableKeepAlives: true}}
}

// TestServe: HTTPS with the given certificate, reloaded when the files
// change, and a graceful shutdown that finishes the review in progress.
func TestServe(t *testing.T) {
	pki := testenv.NewPKI(t, t.TempDir())
	// A registry that takes connections and never answers keeps a review
	// in progress until the deadline.
	hang, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer hang.Close()
	accepted := make(chan net.Conn, 16)
	go func() {
		for {
			c, err := hang.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	key := newTestKey(t)
	wh := newTestWebhook(t, Source{PolicyFile: keyPolicy(t, t.TempDir(), key)}, WithDeadline(time.Second))

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	served := make(chan error, 1)
	go func() {
		served <- Serve(ctx, ln, wh, ServeConfig{CertFile: pki.ServerCert, KeyFile: pki.ServerKey, Logger: testLogger(t)})
	}()
	base := "https://" + ln.Addr().String()
	client := httpsClient(t, pki.CA)
	for p, want := range map[string]int{PathHealthz: http.StatusOK, PathReadyz: http.StatusOK, PathMetrics: http.StatusNotFound, PathReverify: http.StatusNotFound} {
		resp, err := client.Get(base + p)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Fatalf("%s on the webhook's port: %d, want %d", p, resp.StatusCode, want)
		}
	}

	// Rotation: another CA's certificate written over the files.
	next := testenv.NewPKI(t, t.TempDir())
	for src, dst := range map[string]string{next.ServerCert: pki.ServerCert, next.ServerKey: pki.ServerKey} {
		data, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		writeTestFile(t, dst, string(data))
	}
	if resp, err := httpsClient(t, next.CA).Get(base + PathHealthz); err != nil {
		t.Fatalf("after rotation: %v", err)
	} else {
		resp.Body.Close()
	}

	// Shutdown while a review waits on the hanging registry.
	client = httpsClient(t, next.CA)
	type answer struct {
		resp *admissionv1.AdmissionResponse
		err  error
	}
	answered := make(chan answer, 1)
	go func() {
		body := reviewBody(t, podKind, admissionv1.Create, "default", podObject(hang.Addr().String()+"/team/app:v1"), nil)
		resp, err := client.Post(base+PathValidate, "application/json", bytes.NewReader(body))
		if err != nil {
			answered <- answer{err: err}
			return
		}
		defer resp.Body.Close()
		var review admissionv1.AdmissionReview
		data, _ := io.ReadAll(resp.Body)
		if err := json.Unmarshal(data, &review); err != nil {
			answered <- answer{err: err}
			return
		}
		answered <- answer{resp: review.Response}
	}()
	c := <-accepted // the review reached the registry
	defer c.Close()
	cancel()
	a := <-answered
	if a.err != nil {
		t.Fatalf("the review in progress was cut off by the shutdown: %v", a.err)
	}
	if a.resp.Allowed || !strings.Contains(message(a.resp), "did not finish in time") {
		t.Fatalf("allowed %v: %s", a.resp.Allowed, message(a.resp))
	}
	if err := <-served; err != nil {
		t.Fatalf("Serve: %v", err)
	}
	if _, err := client.Get(base + PathHealthz); err == nil {
		t.Fatal("still serving after shutdown")
	}
}

func TestServeNeedsCertificate(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if err := Serve(context.Background(), ln, http.NotFoundHandler(), ServeConfig{}); err == nil {
		t.Fatal("served without a certificate")
	}
	if err := Serve(context.Background(), ln, http.NotFoundHandler(), ServeConfig{CertFile: "/nonexistent", KeyFile: "/nonexistent"}); err == nil {
		t.Fatal("served with missing certificate files")
	}
}

// addrListener is a listener that says it listens on addr.
type addrListener struct {
	net.Listener
	addr net.Addr
}

func (l addrListener) Addr() net.Addr { return l.addr }

// The monitoring endpoints (metrics, the re-verification report, which name
// every namespace's images) are served on a listener of their own: on
// loopback as they are, elsewhere only behind a bearer token.
func TestServeMonitoring(t *testing.T) {
	pki := testenv.NewPKI(t, t.TempDir())
	key := newTestKey(t)
	wh := newTestWebhook(t, Source{PolicyFile: keyPolicy(t, t.TempDir(), key)})
	listen := func() net.Listener {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		return ln
	}
	serve := func(m *MonitoringConfig) (context.CancelFunc, chan error) {
		ctx, cancel := context.WithCancel(context.Background())
		served := make(chan error, 1)
		go func() {
			served <- Serve(ctx, listen(), wh, ServeConfig{CertFile: pki.ServerCert, KeyFile: pki.ServerKey, Logger: testLogger(t), Monitoring: m})
		}()
		return cancel, served
	}
	get := func(url, token string) int {
		t.Helper()
		for range 100 {
			req, _ := http.NewRequest(http.MethodGet, url, nil)
			if token != "" {
				req.Header.Set("Authorization", "Bearer "+token)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				time.Sleep(20 * time.Millisecond)
				continue
			}
			resp.Body.Close()
			return resp.StatusCode
		}
		t.Fatalf("%s never answered", url)
		return 0
	}

	// On loopback, no token needed.
	ops := listen()
	stop, served := serve(&MonitoringConfig{Listener: ops, Handler: wh.Monitoring()})
	if code := get("http://"+ops.Addr().String()+PathMetrics, ""); code != http.StatusOK {
		t.Fatalf("%s on loopback: %d", PathMetrics, code)
	}
	stop()
	if err := <-served; err != nil {
		t.Fatal(err)
	}

	// Off loopback, refused without a token.
	exposed := addrListener{listen(), &net.TCPAddr{IP: net.IPv4(10, 0, 0, 7), Port: 9090}}
	defer exposed.Close()
	stop, served = serve(&MonitoringConfig{Listener: exposed, Handler: wh.Monitoring()})
	if err := <-served; !errors.Is(err, ErrMonitoringExposed) {
		t.Fatalf("monitoring off loopback without a token: %v", err)
	}
	stop()

	// With one, every request but /healthz must present it.
	token := filepath.Join(t.TempDir(), "token")
	writeTestFile(t, token, "s3cret-scrape-token\n")
	stop, served = serve(&MonitoringConfig{Listener: exposed, Handler: wh.Monitoring(), TokenFile: token})
	base := "http://" + exposed.Listener.Addr().String()
	for _, tc := range []struct {
		path, token string
		want        int
	}{
		{PathMetrics, "", http.StatusUnauthorized},
		{PathMetrics, "wrong", http.StatusUnauthorized},
		{PathMetrics, "s3cret-scrape-token", http.StatusOK},
		{PathHealthz, "", http.StatusOK},
	} {
		if code := get(base+tc.path, tc.token); code != tc.want {
			t.Errorf("%s with token %q: %d, want %d", tc.path, tc.token, code, tc.want)
		}
	}
	stop()
	if err := <-served; err != nil {
		t.Fatal(err)
	}
}
