package isolation

import (
	"context"
	"fmt"
	"net/url"
	"os"

	"github.com/moby/buildkit/client"
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
}

type remoteDaemon struct {
	addr string
	opts []client.ClientOpt
	info Info
}

var _ Daemon = (*remoteDaemon)(nil)

// Remote connects to an existing buildkitd at addr (tcp://HOST:PORT or
// unix://PATH) and checks that it answers. A tcp address requires TLS.
// A daemon whose workers report the host's network as theirs (or report
// none) is refused with ErrHostNetwork: a container that is not a RUN step
// would reach its host's network. Its state belongs to whoever runs it:
// builds sent there are isolated only as far as that daemon is (the builder
// still gives each build cache mounts of its own and pins the built-in
// Dockerfile frontend).
func Remote(ctx context.Context, name, addr string, tls *TLS) (Daemon, error) {
	u, err := url.Parse(addr)
	if err != nil {
		return nil, fmt.Errorf("builder address %q: %w", addr, err)
	}
	var opts []client.ClientOpt
	switch u.Scheme {
	case "tcp":
		if tls == nil || tls.CACert == "" || tls.Cert == "" || tls.Key == "" {
			return nil, fmt.Errorf("builder address %q: a tcp builder needs --tlscacert, --tlscert and --tlskey; twinforge does not talk to a build daemon in the clear", addr)
		}
		for _, f := range []string{tls.CACert, tls.Cert, tls.Key} {
			if _, err := os.Stat(f); err != nil {
				return nil, fmt.Errorf("builder TLS file: %w", err)
			}
		}
		server := tls.ServerName
		if server == "" {
			server = u.Hostname()
		}
		opts = append(opts, client.WithServerConfig(server, tls.CACert), client.WithCredentials(tls.Cert, tls.Key))
	case "unix":
		if tls != nil && (tls.CACert != "" || tls.Cert != "") {
			return nil, fmt.Errorf("builder address %q: TLS options apply to tcp:// builders only", addr)
		}
	default:
		return nil, fmt.Errorf("builder address %q: use tcp://HOST:PORT or unix:///PATH", addr)
	}
	version, workers, err := probe(ctx, addr, opts...)
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("connecting to builder %s: %w", addr, ctx.Err())
		}
		return nil, fmt.Errorf("%w: builder %s does not answer: %w", ErrDaemonFailed, addr, err)
	}
	if err := checkWorkerNetwork(addr, workers); err != nil {
		return nil, err
	}
	return &remoteDaemon{addr: addr, opts: opts, info: Info{Name: name, Address: addr, Remote: true, BuildKitVersion: version}}, nil
}

func (r *remoteDaemon) Addr() string { return r.addr }
func (r *remoteDaemon) Info() Info   { return r.info }
func (r *remoteDaemon) Close() error { return nil }

func (r *remoteDaemon) Check(ctx context.Context) error {
	if _, _, err := probe(ctx, r.addr, r.opts...); err != nil {
		return fmt.Errorf("%w: builder %s does not answer: %w", ErrDaemonFailed, r.addr, err)
	}
	return nil
}

func (r *remoteDaemon) Client(ctx context.Context) (*client.Client, error) {
	c, err := client.New(ctx, r.addr, r.opts...)
	if err != nil {
		return nil, fmt.Errorf("connecting to builder %s: %w", r.addr, err)
	}
	return c, nil
}
