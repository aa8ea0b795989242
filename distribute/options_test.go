package distribute

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

func TestIsLoopback(t *testing.T) {
	tests := []struct {
		host string
		want bool
	}{
		{"127.0.0.1:5000", true},
		{"127.0.0.1", true},
		{"127.9.8.7:443", true},
		{"[::1]:5000", true},
		{"::1", true},
		{"localhost:5000", true},
		{"localhost", true},
		{"10.0.0.1:5000", false},
		{"192.168.1.10", false},
		{"[::2]:5000", false},
		{"registry.example.com", false},
		{"localhost.example.com:5000", false},
		{"127.0.0.1.nip.io:5000", false},
	}
	for _, tt := range tests {
		if got := isLoopback(tt.host); got != tt.want {
			t.Errorf("isLoopback(%q) = %v, want %v", tt.host, got, tt.want)
		}
	}
}

type okTransport struct{ calls int }

func (o *okTransport) RoundTrip(*http.Request) (*http.Response, error) {
	o.calls++
	return &http.Response{StatusCode: 200, Body: http.NoBody}, nil
}

func TestSchemeGuard(t *testing.T) {
	tests := []struct {
		url      string
		insecure bool
		allowed  bool
	}{
		{"https://registry.example.com/v2/", false, true},
		{"https://10.0.0.1/v2/", false, true},
		{"http://registry.example.com/v2/", false, false},
		{"http://registry.example.com/v2/", true, false},
		{"http://10.0.0.1:5000/v2/", true, false}, // ggcr itself falls back to HTTP for RFC 1918
		{"http://myhost.local/v2/", true, false},
		{"http://127.0.0.1:5000/v2/", false, false},
		{"http://127.0.0.1:5000/v2/", true, true},
		{"http://[::1]:5000/v2/", true, true},
		{"http://localhost:5000/v2/", true, true},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s insecure=%v", tt.url, tt.insecure), func(t *testing.T) {
			inner := &okTransport{}
			g := &schemeGuard{inner: inner, allowLoopbackHTTP: tt.insecure}
			req, _ := http.NewRequest(http.MethodGet, tt.url, nil)
			_, err := g.RoundTrip(req)
			if tt.allowed != (err == nil) || tt.allowed != (inner.calls == 1) {
				t.Fatalf("allowed = %v (err %v), want %v", err == nil, err, tt.allowed)
			}
			if err != nil && (!errors.Is(err, ErrInsecure) || !strings.Contains(err.Error(), req.URL.Host)) {
				t.Errorf("error %q: want ErrInsecure naming %s", err, req.URL.Host)
			}
		})
	}
}

func TestMakeOptions(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "not.pem")
	if err := os.WriteFile(notPEM, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	loopback, err := NewPuller(1, WithInsecureLoopbackUnsafe())
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		opts []Option
		want string // "" for success
	}{
		{"defaults", nil, ""},
		{"puller with another plain-HTTP policy", []Option{WithPuller(loopback)}, "plain-HTTP policy"},
		{"nil puller", []Option{WithPuller(nil)}, "nil"},
		{"CA and transport conflict", []Option{WithCACert(notPEM), WithTransport(http.DefaultTransport)}, "conflict"},
		{"CA file missing", []Option{WithCACert(filepath.Join(dir, "missing.pem"))}, "missing.pem"},
		{"CA file without a certificate", []Option{WithCACert(notPEM)}, "no PEM certificate"},
		{"empty CA name", []Option{WithCACert("")}, "empty"},
		{"zero jobs", []Option{WithJobs(0)}, "at least 1"},
		{"no attempts", []Option{WithRetryBackoff(Backoff{})}, "at least 1"},
		{"nil transport", []Option{WithTransport(nil)}, "nil"},
		{"nil keychain", []Option{WithKeychain(nil)}, "nil"},
		{"nil progress", []Option{WithProgress(nil)}, "nil"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, err := makeOptions(tt.opts...)
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				if o.jobs != 4 || o.backoff != DefaultBackoff || o.insecure {
					t.Errorf("defaults = %+v", o)
				}
				if _, ok := o.transport.(*schemeGuard); !ok {
					t.Errorf("transport %T is not guarded", o.transport)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("makeOptions: %v, want an error mentioning %q", err, tt.want)
			}
		})
	}
}

func TestCheckRegistry(t *testing.T) {
	secure, _ := makeOptions()
	insecure, _ := makeOptions(WithInsecureLoopbackUnsafe())
	for _, host := range []string{"127.0.0.1:5000", "localhost:5000", "[::1]:5000", "registry.example.com", "10.0.0.1:5000"} {
		reg, err := name.NewRegistry(host)
		if err != nil {
			t.Fatal(err)
		}
		if err := secure.checkRegistry(reg); err != nil {
			t.Errorf("secure %s: %v", host, err)
		}
		err = insecure.checkRegistry(reg)
		if isLoopback(host) != (err == nil) {
			t.Errorf("insecure %s: %v", host, err)
		}
	}
}

func TestRetryable(t *testing.T) {
	tests := []struct {
		err  error
		want bool
	}{
		{nil, false},
		{&transport.Error{StatusCode: 500}, true},
		{&transport.Error{StatusCode: 502, Errors: []transport.Diagnostic{{Code: transport.UnknownErrorCode}}}, true},
		{&transport.Error{StatusCode: 503}, true},
		{&transport.Error{StatusCode: 429}, true},
		{&transport.Error{StatusCode: 401}, false},
		{&transport.Error{StatusCode: 404}, false},
		{&transport.Error{StatusCode: 400, Errors: []transport.Diagnostic{{Code: transport.DigestInvalidErrorCode}}}, false},
		{fmt.Errorf("reading: %w", io.ErrUnexpectedEOF), true},
		{&net.OpError{Op: "read", Err: os.NewSyscallError("read", syscall.ECONNRESET)}, true},
		{syscall.EPIPE, true},
		{context.Canceled, false},
		{fmt.Errorf("x: %w", ErrInsecure), false},
		{&net.DNSError{Err: "no such host", Name: "registry.invalid", IsNotFound: true}, false},
		{ErrVerification, false},
	}
	for _, tt := range tests {
		if got := retryable(tt.err); got != tt.want {
			t.Errorf("retryable(%v) = %v, want %v", tt.err, got, tt.want)
		}
	}
}

// Manifest and referrers responses above maxManifestBytes fail to read;
// blobs are not capped here (their descriptors bound them).
func TestCapManifests(t *testing.T) {
	tests := []struct {
		path string
		size int64
		ok   bool
	}{
		{"/v2/app/manifests/v1", maxManifestBytes, true},
		{"/v2/app/manifests/v1", maxManifestBytes + 1, false},
		{"/v2/app/referrers/sha256:0", maxManifestBytes + 1, false},
		{"/v2/app/blobs/sha256:0", maxManifestBytes + 1, true},
	}
	for _, tt := range tests {
		inner := roundTripFunc(func(*http.Request) (*http.Response, error) {
			return &http.Response{StatusCode: 200, Body: io.NopCloser(io.LimitReader(zeros{}, tt.size))}, nil
		})
		req, _ := http.NewRequest(http.MethodGet, "http://127.0.0.1"+tt.path, nil)
		resp, err := capManifests(inner).RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		n, err := io.Copy(io.Discard, resp.Body)
		if tt.ok != (err == nil) || (err != nil && !errors.Is(err, errManifestTooLarge)) || (tt.ok && n != tt.size) {
			t.Errorf("%s, %d bytes: read %d, %v", tt.path, tt.size, n, err)
		}
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

// A read is retried by again only for what go-containerregistry's own
// retries did not cover: a body broken midway.
func TestBrokenBody(t *testing.T) {
	tests := []struct {
		err  error
		want bool
	}{
		{fmt.Errorf("reading: %w", io.ErrUnexpectedEOF), true},
		{&net.OpError{Op: "read", Err: os.NewSyscallError("read", syscall.ECONNRESET)}, true},
		{&transport.Error{StatusCode: 503}, false},
		{&url.Error{Op: "Get", URL: "http://127.0.0.1/v2/", Err: io.EOF}, false},
		{fmt.Errorf("%w: blob", ErrVerification), false},
		{context.Canceled, false},
	}
	for _, tt := range tests {
		if got := brokenBody(tt.err); got != tt.want {
			t.Errorf("brokenBody(%v) = %v, want %v", tt.err, got, tt.want)
		}
	}
}
