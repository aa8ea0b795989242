package nodeagent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/twinforge/twinforge/admission"
)

// ServeConfig is what Serve runs: the agent of one node, its verifier and
// its metrics endpoint.
type ServeConfig struct {
	// Node is the node's name (the DaemonSet gives it as NODE_NAME).
	Node string
	// CRIEndpoint is the runtime's CRI socket, unix:///PATH.
	CRIEndpoint string
	// Source names the policy files, as for the webhook; VerifierOptions
	// configure the verification (registries, cache, pull secrets).
	Source          admission.Source
	VerifierOptions []admission.Option
	// RecordKeyFile holds the PEM public keys admission records are
	// verified with.
	RecordKeyFile string
	// Kube says how to reach the API server.
	Kube admission.KubeConfig
	// Addr is where /metrics, /healthz and /report are served over plain
	// HTTP ("" serves nothing).
	Addr string
	// Options configure the agent.
	Options []Option
	// Logger logs everything; nil discards.
	Logger *slog.Logger
}

// Serve runs the node agent until ctx ends: passes on the interval and on
// changes, and the metrics endpoint. It fails only when it cannot start
// (bad configuration, files that do not load, an address in use); faults
// while running are reported and the agent keeps going.
func Serve(ctx context.Context, c ServeConfig) error {
	log := c.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	pem, err := os.ReadFile(c.RecordKeyFile)
	if err != nil {
		return fmt.Errorf("reading the admission record key: %w", err)
	}
	keys, err := admission.ParseRecordPublicKeys(pem)
	if err != nil {
		return fmt.Errorf("%s: %w", c.RecordKeyFile, err)
	}
	v, err := admission.NewVerifier(c.Source, append(c.VerifierOptions, admission.WithLogger(log))...)
	if err != nil {
		return err
	}
	defer v.Close()
	kube, err := admission.NewKubernetesClient(c.Kube, "twinforge-node-agent")
	if err != nil {
		return err
	}
	cri, conn, err := DialCRI(c.CRIEndpoint)
	if err != nil {
		return err
	}
	defer conn.Close()
	a, err := New(c.Node, cri, kube, v, keys, append([]Option{WithLogger(log)}, c.Options...)...)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	served := make(chan error, 1)
	if c.Addr != "" {
		ln, err := net.Listen("tcp", c.Addr)
		if err != nil {
			return fmt.Errorf("listening on %s: %w", c.Addr, err)
		}
		srv := &http.Server{Handler: a.Handler(), ReadHeaderTimeout: 10 * time.Second}
		go func() { served <- srv.Serve(ln) }()
		defer func() {
			sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer scancel()
			srv.Shutdown(sctx)
		}()
		log.Info("node agent serving", "addr", ln.Addr().String(), "node", c.Node, "cri", c.CRIEndpoint)
	}
	ran := make(chan error, 1)
	go func() { ran <- a.Run(ctx) }()
	select {
	case err := <-ran:
		return err
	case err := <-served:
		cancel()
		<-ran
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return fmt.Errorf("serving metrics: %w", err)
	}
}
