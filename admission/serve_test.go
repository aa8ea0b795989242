package admission

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
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
	for _, p := range []string{PathHealthz, PathReadyz, PathMetrics} {
		resp, err := client.Get(base + p)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: %d", p, resp.StatusCode)
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
