package isolation

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	controlapi "github.com/moby/buildkit/api/services/control"
	"github.com/moby/buildkit/client"
	"github.com/moby/buildkit/client/llb"
	"github.com/moby/buildkit/identity"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
)

// TLS holds the client side of mutual TLS to a remote daemon.
type TLS struct {
	// CACert verifies the daemon's certificate.
	CACert string
	// Cert and Key identify twinforge to the daemon.
	Cert, Key string
	// ServerName overrides the name checked in the daemon's certificate;
	// the default is the address's host.
	ServerName string
	// Identity is the worker identity the daemon's certificate must carry
	// (its first URI SAN, as package workercert issues it; the common name
	// of a certificate without one). Empty accepts any certificate CACert
	// verifies; either way the identity is recorded in Info and every
	// later connection must present the same certificate.
	Identity string
}

// Placement says where a worker runs, as whoever placed it knows: a
// Kubernetes cluster, node and pod.
type Placement struct {
	// Cluster is the API server of the worker's cluster.
	Cluster string
	// Node is the node the worker's pod runs on.
	Node string
	// Pod is the worker's pod, NAMESPACE/NAME.
	Pod string
}

// RemoteOption configures Remote.
type RemoteOption func(*remoteOptions) error

type remoteOptions struct {
	placement    *Placement
	probeTimeout time.Duration
	onClose      func() error
}

// WithPlacement records where the worker runs (Info.Cluster, Info.Node,
// Info.Pod). Without it the node is the host name the daemon reports.
func WithPlacement(p Placement) RemoteOption {
	return func(o *remoteOptions) error {
		if p.Node == "" {
			return errors.New("worker placement: no node")
		}
		o.placement = &p
		return nil
	}
}

// WithProbeTimeout bounds each check that the daemon answers. The default
// value is 10 seconds.
func WithProbeTimeout(d time.Duration) RemoteOption {
	return func(o *remoteOptions) error {
		if d <= 0 {
			return fmt.Errorf("probe timeout %v: must be positive", d)
		}
		o.probeTimeout = d
		return nil
	}
}

// WithOnClose runs release when the daemon is closed (once): a lease on
// the worker given back, a port forward stopped.
func WithOnClose(release func() error) RemoteOption {
	return func(o *remoteOptions) error { o.onClose = release; return nil }
}

// ErrWorkerIdentity is returned when a daemon's certificate does not carry
// the identity expected, or changes between connections.
var ErrWorkerIdentity = errors.New("build worker certificate does not match")

// ErrInsecureEntitlements is returned by Remote for a daemon that would
// grant a build the security.insecure or network.host entitlement.
var ErrInsecureEntitlements = errors.New("build daemon allows insecure entitlements")

// ErrNoProcessSandbox is returned by Remote for a daemon whose OCI worker
// runs steps without a PID namespace of their own.
var ErrNoProcessSandbox = errors.New("build daemon runs steps without a process sandbox")

type remoteDaemon struct {
	addr string
	opts []client.ClientOpt
	o    *remoteOptions

	mu   sync.Mutex
	info Info
	// pinned is the certificate the first connection presented; every
	// later one must present it too.
	pinned    []byte
	seen      *x509.Certificate
	verifyErr error // the last certificate refusal, which gRPC reports only as text
	closeOnce sync.Once
	closeErr  error
}

var _ Daemon = (*remoteDaemon)(nil)

// Remote connects to an existing buildkitd at addr (tcp://HOST:PORT or
// unix://PATH) and checks that it may build for twinforge. A tcp address
// requires mutual TLS, and the daemon's certificate is pinned: every
// connection after the first must present the same certificate, and with
// TLS.Identity set the first must carry that identity (ErrWorkerIdentity).
//
// What the daemon reports of itself is checked before any build is sent:
// a worker that runs containers on the host's network (or does not say
// which network, ErrHostNetwork), that would grant security.insecure or
// network.host to a build that asked (ErrInsecureEntitlements: a build
// twinforge sends never asks, but a daemon that would grant them was
// started to run such builds), or whose steps share its PID namespace
// (ErrNoProcessSandbox) is refused. Info records the daemon's version,
// worker ID, snapshotter, host name and certificate identity.
//
// Its state belongs to whoever runs it: builds sent there are isolated
// only as far as that daemon is (the builder still gives each build cache
// mounts of its own and pins the built-in Dockerfile frontend).
func Remote(ctx context.Context, name, addr string, tlsCfg *TLS, opts ...RemoteOption) (_ Daemon, retErr error) {
	o := &remoteOptions{probeTimeout: 10 * time.Second}
	for _, opt := range opts {
		if err := opt(o); err != nil {
			return nil, err
		}
	}
	defer func() {
		if retErr != nil && o.onClose != nil {
			_ = o.onClose()
		}
	}()
	u, err := url.Parse(addr)
	if err != nil {
		return nil, fmt.Errorf("builder address %q: %w", addr, err)
	}
	r := &remoteDaemon{addr: addr, o: o, info: Info{Name: name, Address: addr, Remote: true}}
	switch u.Scheme {
	case "tcp":
		cfg, err := r.tlsConfig(u.Hostname(), tlsCfg)
		if err != nil {
			return nil, err
		}
		// gRPC wants the authority to be the name the certificate is
		// checked against, as BuildKit's own TLS option sets it.
		r.opts = append(r.opts,
			client.WithGRPCDialOption(grpc.WithTransportCredentials(credentials.NewTLS(cfg))),
			client.WithGRPCDialOption(grpc.WithAuthority(cfg.ServerName)))
	case "unix":
		if tlsCfg != nil && (tlsCfg.CACert != "" || tlsCfg.Cert != "") {
			return nil, fmt.Errorf("builder address %q: TLS options apply to tcp:// builders only", addr)
		}
	default:
		return nil, fmt.Errorf("builder address %q: use tcp://HOST:PORT or unix:///PATH", addr)
	}
	rep, err := r.report(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("connecting to builder %s: %w", addr, ctx.Err())
		}
		if errors.Is(err, ErrWorkerIdentity) {
			return nil, err
		}
		return nil, fmt.Errorf("%w: builder %s does not answer: %w", ErrDaemonFailed, addr, err)
	}
	if err := checkWorkerNetwork(addr, rep.workers); err != nil {
		return nil, err
	}
	if err := checkProcessSandbox(addr, rep.workers); err != nil {
		return nil, err
	}
	if err := r.checkEntitlements(ctx); err != nil {
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	w := rep.workers[0]
	r.info.BuildKitVersion = rep.version
	r.info.WorkerID = w.ID
	r.info.Hostname = w.Labels[workerHostnameLabel]
	r.info.Snapshotter = w.Labels[workerSnapshotterLabel]
	r.info.Node = r.info.Hostname
	if p := o.placement; p != nil {
		r.info.Cluster, r.info.Node, r.info.Pod = p.Cluster, p.Node, p.Pod
	}
	if r.seen != nil {
		r.info.Identity = workerIdentity(r.seen)
		r.info.Certificate = "sha256:" + fingerprint(r.seen.Raw)
	}
	return r, nil
}

// tlsConfig is the client side of mutual TLS to the daemon: its
// certificate must chain to the CA, name the server and carry the
// expected identity, and, once one connection succeeded, be that
// connection's certificate.
func (r *remoteDaemon) tlsConfig(host string, t *TLS) (*tls.Config, error) {
	if t == nil || t.CACert == "" || t.Cert == "" || t.Key == "" {
		return nil, fmt.Errorf("builder address %q: a tcp builder needs --tlscacert, --tlscert and --tlskey; twinforge does not talk to a build daemon in the clear", r.addr)
	}
	caPEM, err := os.ReadFile(t.CACert)
	if err != nil {
		return nil, fmt.Errorf("builder TLS file: %w", err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(caPEM) {
		return nil, fmt.Errorf("builder TLS file %s: no PEM certificate", t.CACert)
	}
	if _, err := os.Stat(t.Cert); err != nil {
		return nil, fmt.Errorf("builder TLS file: %w", err)
	}
	if _, err := os.Stat(t.Key); err != nil {
		return nil, fmt.Errorf("builder TLS file: %w", err)
	}
	pair, err := tls.LoadX509KeyPair(t.Cert, t.Key)
	if err != nil {
		return nil, fmt.Errorf("builder TLS client certificate %s: %w", t.Cert, err)
	}
	server := t.ServerName
	if server == "" {
		server = host
	}
	want := t.Identity
	return &tls.Config{
		MinVersion:   tls.VersionTLS12,
		RootCAs:      roots,
		ServerName:   server,
		Certificates: []tls.Certificate{pair},
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return fmt.Errorf("%w: builder %s presented no certificate", ErrWorkerIdentity, r.addr)
			}
			leaf := cs.PeerCertificates[0]
			r.mu.Lock()
			defer r.mu.Unlock()
			if r.pinned != nil {
				if string(r.pinned) != string(leaf.Raw) {
					r.verifyErr = fmt.Errorf("%w: builder %s presented another certificate (%s, sha256:%s) than when twinforge first connected (%s): another daemon answers at its address",
						ErrWorkerIdentity, r.addr, workerIdentity(leaf), fingerprint(leaf.Raw), r.info.Identity)
					return r.verifyErr
				}
				return nil
			}
			if got := workerIdentity(leaf); want != "" && got != want {
				r.verifyErr = fmt.Errorf("%w: builder %s presented the certificate of %q, not of %q: the worker at that address is not the one expected", ErrWorkerIdentity, r.addr, got, want)
				return r.verifyErr
			}
			r.seen = leaf
			return nil
		},
	}, nil
}

// workerIdentity is a certificate's identity: its first URI SAN, else its
// common name (package workercert.IdentityOf, which imports this one).
func workerIdentity(c *x509.Certificate) string {
	if len(c.URIs) > 0 {
		return c.URIs[0].String()
	}
	return c.Subject.CommonName
}

func fingerprint(der []byte) string {
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:])
}

type report struct {
	version string
	workers []*client.WorkerInfo
}

// report asks the daemon what it is; the first successful connection pins
// its certificate.
func (r *remoteDaemon) report(ctx context.Context) (*report, error) {
	ctx, cancel := context.WithTimeout(ctx, r.o.probeTimeout)
	defer cancel()
	c, err := client.New(ctx, r.addr, r.opts...)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	ws, err := c.ListWorkers(ctx)
	if err != nil {
		return nil, r.identityError(err)
	}
	r.mu.Lock()
	if r.seen != nil && r.pinned == nil {
		r.pinned = r.seen.Raw
	}
	r.mu.Unlock()
	if len(ws) == 0 {
		return nil, errors.New("daemon has no workers")
	}
	info, err := c.Info(ctx)
	if err != nil {
		return nil, err
	}
	return &report{version: info.BuildkitVersion.Version, workers: ws}, nil
}

// identityError returns the certificate check's own error where gRPC
// reported a failed handshake only as text.
func (r *remoteDaemon) identityError(err error) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.verifyErr != nil {
		return r.verifyErr
	}
	return err
}

// checkEntitlements asks the daemon to grant each insecure entitlement to
// an empty build: a daemon that would is refused. One that would not
// answers "not allowed by build daemon configuration" before solving
// anything. The request goes to the control API directly, without a
// session, and is internal: nothing lands in the daemon's build history.
func (r *remoteDaemon) checkEntitlements(ctx context.Context) error {
	def, err := llb.Scratch().Marshal(ctx)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, r.o.probeTimeout)
	defer cancel()
	c, err := client.New(ctx, r.addr, r.opts...)
	if err != nil {
		return fmt.Errorf("%w: builder %s does not answer: %w", ErrDaemonFailed, r.addr, err)
	}
	defer c.Close()
	for _, e := range []string{"security.insecure", "network.host"} {
		_, err := c.ControlClient().Solve(ctx, &controlapi.SolveRequest{
			Ref:          identity.NewID(),
			Definition:   def.ToPB(),
			Entitlements: []string{e},
			Internal:     true,
		})
		switch {
		case err == nil:
			return fmt.Errorf("%w: builder %s grants %s to builds that ask for it: it was started with --allow-insecure-entitlement; run a daemon without it for twinforge", ErrInsecureEntitlements, r.addr, e)
		case strings.Contains(err.Error(), "not allowed"):
		case ctx.Err() != nil:
			return fmt.Errorf("%w: builder %s does not answer: %w", ErrDaemonFailed, r.addr, ctx.Err())
		default:
			return fmt.Errorf("builder %s: checking its entitlements: %w", r.addr, r.identityError(err))
		}
	}
	return nil
}

func (r *remoteDaemon) Addr() string { return r.addr }

func (r *remoteDaemon) Info() Info {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.info
}

func (r *remoteDaemon) Close() error {
	r.closeOnce.Do(func() {
		if r.o.onClose != nil {
			r.closeErr = r.o.onClose()
		}
	})
	return r.closeErr
}

func (r *remoteDaemon) Check(ctx context.Context) error {
	rep, err := r.report(ctx)
	if err != nil {
		return fmt.Errorf("%w: builder %s%s does not answer: %w", ErrDaemonFailed, r.addr, r.who(), r.identityError(err))
	}
	if id := r.Info().WorkerID; len(rep.workers) > 0 && rep.workers[0].ID != id {
		return fmt.Errorf("%w: builder %s is another daemon now (worker %s, was %s): it restarted, or another one took its address", ErrDaemonFailed, r.addr, rep.workers[0].ID, id)
	}
	return nil
}

// who names the worker for errors: " (IDENTITY on NODE)".
func (r *remoteDaemon) who() string {
	i := r.Info()
	switch {
	case i.Identity != "" && i.Node != "":
		return " (" + i.Identity + " on " + i.Node + ")"
	case i.Identity != "":
		return " (" + i.Identity + ")"
	}
	return ""
}

func (r *remoteDaemon) Client(ctx context.Context) (*client.Client, error) {
	c, err := client.New(ctx, r.addr, r.opts...)
	if err != nil {
		return nil, fmt.Errorf("connecting to builder %s: %w", r.addr, err)
	}
	return c, nil
}
