package admission

import (
	"bytes"
	"context"
	"crypto/subtle"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// ServeConfig says how Serve runs the webhook.
type ServeConfig struct {
	// CertFile and KeyFile are the PEM serving certificate and key; they are
	// read again when they change (certificate rotation). Required.
	CertFile, KeyFile string
	// ShutdownTimeout bounds how long Serve waits for reviews in progress
	// once ctx ends. The default is 15 seconds.
	ShutdownTimeout time.Duration
	// Logger reports start, stop and TLS errors. The default discards.
	Logger *slog.Logger
	// Monitoring, when set, serves a Webhook's Monitoring handler (metrics,
	// the re-verification report) on a listener of its own. Never on the
	// webhook's port: any pod can reach that one.
	Monitoring *MonitoringConfig
}

// MonitoringConfig says where Serve serves the monitoring endpoints: over
// plain HTTP (as Prometheus scrapes) on Listener, on a loopback address, or
// on any other address when every request must carry the bearer token of
// TokenFile.
type MonitoringConfig struct {
	// Listener is the monitoring listener; Handler what it serves
	// (Webhook.Monitoring). Both required.
	Listener net.Listener
	Handler  http.Handler
	// TokenFile holds the token requests must present as "Authorization:
	// Bearer TOKEN" (PathHealthz excepted); it is read again when it
	// changes. Required unless Listener is on a loopback address.
	TokenFile string
}

// ErrMonitoringExposed is returned by Serve for a monitoring listener off
// loopback without a bearer token: the re-verification report and the
// metrics name the images of every namespace.
var ErrMonitoringExposed = errors.New("monitoring endpoints exposed without authentication")

func (m *MonitoringConfig) validate() error {
	if m.Listener == nil || m.Handler == nil {
		return errors.New("serving monitoring: a listener and a handler are required")
	}
	if m.TokenFile == "" {
		host, _, err := net.SplitHostPort(m.Listener.Addr().String())
		if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
			return fmt.Errorf("%w: %s is not a loopback address: give a bearer token file, or listen on 127.0.0.1", ErrMonitoringExposed, m.Listener.Addr())
		}
		return nil
	}
	_, err := readToken(m.TokenFile)
	return err
}

// handler is Handler behind the bearer token, when there is one.
func (m *MonitoringConfig) handler() http.Handler {
	if m.TokenFile == "" {
		return m.Handler
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != PathHealthz {
			want, err := readToken(m.TokenFile)
			got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
			if err != nil || !ok || subtle.ConstantTimeCompare([]byte(got), want) != 1 {
				w.Header().Set("WWW-Authenticate", `Bearer realm="twinforge-admission"`)
				http.Error(w, "unauthorized", http.StatusUnauthorized)
				return
			}
		}
		m.Handler.ServeHTTP(w, r)
	})
}

func readToken(path string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("monitoring token: %w", err)
	}
	tok := bytes.TrimSpace(data)
	if len(tok) == 0 {
		return nil, fmt.Errorf("monitoring token file %s is empty", path)
	}
	return tok, nil
}

// Serve serves h over HTTPS (TLS 1.2 or later) on ln until ctx ends, then
// shuts down gracefully: PathReadyz answers 503 from then on, new connections
// are refused and reviews in progress finish, within ShutdownTimeout. It
// returns nil after a graceful shutdown.
func Serve(ctx context.Context, ln net.Listener, h http.Handler, cfg ServeConfig) error {
	if cfg.CertFile == "" || cfg.KeyFile == "" {
		return errors.New("serving: a TLS certificate and key are required")
	}
	if cfg.ShutdownTimeout <= 0 {
		cfg.ShutdownTimeout = 15 * time.Second
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.NewJSONHandler(io.Discard, nil))
	}
	kp := &keyPair{cert: cfg.CertFile, key: cfg.KeyFile}
	if _, err := kp.get(); err != nil {
		return err
	}
	var ops *http.Server
	if m := cfg.Monitoring; m != nil {
		if err := m.validate(); err != nil {
			return err
		}
		ops = &http.Server{
			Handler:           m.handler(),
			ReadHeaderTimeout: 5 * time.Second,
			ReadTimeout:       15 * time.Second,
			WriteTimeout:      30 * time.Second,
			MaxHeaderBytes:    64 << 10,
			ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		}
	}
	var draining atomic.Bool
	mux := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == PathReadyz && draining.Load() {
			http.Error(w, "shutting down", http.StatusServiceUnavailable)
			return
		}
		h.ServeHTTP(w, r)
	})
	srv := &http.Server{
		Handler: mux,
		TLSConfig: &tls.Config{
			MinVersion: tls.VersionTLS12,
			GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
				return kp.get()
			},
		},
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       90 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.ServeTLS(ln, "", "") }()
	log.Info("serving admission webhook", "addr", ln.Addr().String())
	opsErr := make(chan error, 1)
	if ops != nil {
		go func() { opsErr <- ops.Serve(cfg.Monitoring.Listener) }()
		log.Info("serving monitoring", "addr", cfg.Monitoring.Listener.Addr().String(), "bearerToken", cfg.Monitoring.TokenFile != "")
	}
	select {
	case err := <-errc:
		if ops != nil {
			ops.Close()
		}
		return fmt.Errorf("serving: %w", err)
	case err := <-opsErr:
		srv.Close()
		return fmt.Errorf("serving monitoring: %w", err)
	case <-ctx.Done():
	}
	if ops != nil {
		defer ops.Close()
	}
	draining.Store(true)
	log.Info("shutting down: finishing reviews in progress", "timeout", cfg.ShutdownTimeout.String())
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		srv.Close()
		return fmt.Errorf("shutting down: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serving: %w", err)
	}
	log.Info("stopped")
	return nil
}

// keyPair is a certificate and key loaded from files, loaded again when
// either file's modification time or size changes. A pair that fails to
// load keeps the last good one.
type keyPair struct {
	cert, key string

	mu      sync.Mutex
	current *tls.Certificate
	stamp   string
}

func (k *keyPair) get() (*tls.Certificate, error) {
	stamp := fileStamp(k.cert) + "|" + fileStamp(k.key)
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.current != nil && stamp == k.stamp {
		return k.current, nil
	}
	c, err := tls.LoadX509KeyPair(k.cert, k.key)
	if err != nil {
		if k.current != nil {
			return k.current, nil // mid-rotation: one file written, not yet the other
		}
		return nil, fmt.Errorf("loading TLS key pair: %w", err)
	}
	k.current, k.stamp = &c, stamp
	return k.current, nil
}

func fileStamp(path string) string {
	fi, err := os.Stat(path)
	if err != nil {
		return "missing"
	}
	return fmt.Sprintf("%d/%d", fi.ModTime().UnixNano(), fi.Size())
}
