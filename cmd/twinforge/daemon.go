package main

import (
	"os"
	"path/filepath"

	"github.com/urfave/cli/v2"

	"github.com/twinforge/twinforge/isolation"
	"github.com/twinforge/twinforge/isolation/kube"
	"github.com/twinforge/twinforge/rebuild"
	"github.com/twinforge/twinforge/rebuild/pipeline"
	"github.com/twinforge/twinforge/rebuild/vouch"
)

// daemonFlags select where builds run: a private buildkitd per build (the
// default) or an existing one reached over mutual TLS.
func daemonFlags(d *rebuild.DaemonSettings) []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "state-dir", Usage: "where private daemons keep their state", Value: isolation.DefaultStateDir(), EnvVars: []string{"TWINFORGE_STATE_DIR"}, Destination: &d.StateDir},
		&cli.BoolFlag{Name: "keep-state", Usage: "keep each private daemon's state directory after the build, for inspection", Destination: &d.KeepState},
		&cli.StringFlag{Name: "buildkitd", Usage: "buildkitd program for private daemons", Value: defaultBinary("buildkitd"), EnvVars: []string{"TWINFORGE_BUILDKITD"}, Destination: &d.Buildkitd},
		&cli.StringFlag{Name: "runc", Usage: "runc program the daemons run build steps with", Value: "runc", EnvVars: []string{"TWINFORGE_RUNC"}, Destination: &d.Runc},
		&cli.StringFlag{Name: "builder", Usage: "use an existing buildkitd at `ADDR` (tcp://HOST:PORT, with --tlscacert, --tlscert and --tlskey) instead of a private one", EnvVars: []string{"TWINFORGE_BUILDER"}, Destination: &d.Builder},
		&cli.StringFlag{Name: "tlscacert", Usage: "CA certificate that verifies the --builder daemon", Destination: &d.TLS.CACert},
		&cli.StringFlag{Name: "tlscert", Usage: "client certificate for the --builder daemon", Destination: &d.TLS.Cert},
		&cli.StringFlag{Name: "tlskey", Usage: "client key for the --builder daemon", Destination: &d.TLS.Key},
		&cli.StringFlag{Name: "tls-server-name", Usage: "name expected in the --builder daemon's certificate (default: its host)", Destination: &d.TLS.ServerName},
	}
}

func runcShimFlag(d *rebuild.DaemonSettings) cli.Flag {
	return &cli.StringFlag{Name: "runc-shim", Usage: "runtime shim that varies umask and time zone in the strict rebuild", Value: defaultBinary("twinforge-runc-shim"), EnvVars: []string{"TWINFORGE_RUNC_SHIM"}, Destination: &d.RuncShim}
}

// workerFlags put a build and its rebuild on two machines: remote daemons
// or a pool of workers on Kubernetes. The --rebuilder-tls* flags and the
// --rebuilder-sign files are not bound: whether they were given matters,
// so newDaemons and build read them with givenString.
func workerFlags(d *rebuild.DaemonSettings, v *pipeline.VouchSettings) []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "builder-identity", Usage: "worker identity the --builder daemon's certificate must carry, e.g. spiffe://twinforge/workers/POOL/NAME (twinforge workers certs)", Destination: &d.TLS.Identity},
		&cli.StringFlag{Name: "rebuilder", Usage: "rebuild on the existing buildkitd at `ADDR` (tcp://HOST:PORT) instead of a private one; it must be another machine than the build's", EnvVars: []string{"TWINFORGE_REBUILDER"}, Destination: &d.Rebuilder},
		&cli.StringFlag{Name: "rebuilder-tlscacert", Usage: "CA certificate that verifies the --rebuilder daemon (default: --tlscacert)"},
		&cli.StringFlag{Name: "rebuilder-tlscert", Usage: "client certificate for the --rebuilder daemon (default: --tlscert)"},
		&cli.StringFlag{Name: "rebuilder-tlskey", Usage: "client key for the --rebuilder daemon (default: --tlskey)"},
		&cli.StringFlag{Name: "rebuilder-tls-server-name", Usage: "name expected in the --rebuilder daemon's certificate (default: its host)"},
		&cli.StringFlag{Name: "rebuilder-identity", Usage: "worker identity the --rebuilder daemon's certificate must carry"},
		&cli.StringFlag{Name: "workers", Usage: "build and rebuild on two nodes of the pool `k8s://NAMESPACE[/POOL]` (twinforge workers deploy), waiting in its queue for free workers", EnvVars: []string{"TWINFORGE_WORKERS"}, Destination: &d.Pool},
		&cli.StringFlag{Name: "kubeconfig", Usage: "kubeconfig file of the --workers cluster (default: $KUBECONFIG, else ~/.kube/config)", EnvVars: []string{"KUBECONFIG"}, Destination: &d.Kubeconfig},
		&cli.StringFlag{Name: "context", Usage: "kubeconfig context of the --workers cluster (default: its current context)", Destination: &d.KubeContext},
		&cli.StringFlag{Name: "rebuilder-cluster", Usage: "rebuild on the --workers pool of another cluster: a kubeconfig `FILE`, FILE:CONTEXT, or a context of the default kubeconfig", Destination: &d.RebuilderCluster},
		&cli.DurationFlag{Name: "worker-wait", Value: kube.DefaultWait, Usage: "how long to wait for free --workers before giving up", Destination: &d.WorkerWait},
		&cli.StringFlag{Name: "rebuilder-sign", Usage: "the rebuild side signs its own rebuild verdict, in a process of its own that never gets the builder's credentials: key=`FILE`, or keyless with --rebuilder-identity-token-file; needs the rebuild on a worker of its own (--rebuilder or --workers) and --sign", Destination: &v.Method},
		&cli.StringFlag{Name: "rebuilder-key-password-file", Usage: "`FILE` holding the password of the --rebuilder-sign key"},
		&cli.StringFlag{Name: "rebuilder-identity-token-file", Usage: "`FILE` holding the rebuilder's own OIDC identity token for --rebuilder-sign keyless: another subject than the builder's"},
		&cli.StringFlag{Name: "rebuilder-id", Value: vouch.DefaultRebuilderID, Usage: "the rebuilder's identity recorded in its verdict", Destination: &v.RebuilderID},
	}
}

// givenString is a flag's value when it was given, nil otherwise: the
// settings whose default is another flag's value tell the two apart.
func givenString(c *cli.Context, name string) *string {
	if !c.IsSet(name) {
		return nil
	}
	v := c.String(name)
	return &v
}

// defaultBinary prefers a program installed beside twinforge (make deps
// puts buildkitd in bin/), then PATH.
func defaultBinary(name string) string {
	if exe, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(exe), name)
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
			return p
		}
	}
	return name
}

// newDaemons checks the daemon and worker flags bound to s: where the
// build and its rebuild run.
func newDaemons(c *cli.Context, s rebuild.DaemonSettings) (rebuild.Daemons, error) {
	s.Logger = logger()
	s.RebuilderTLS = rebuild.RebuilderTLS{
		CACert: givenString(c, "rebuilder-tlscacert"), Cert: givenString(c, "rebuilder-tlscert"), Key: givenString(c, "rebuilder-tlskey"),
		ServerName: givenString(c, "rebuilder-tls-server-name"), Identity: givenString(c, "rebuilder-identity"),
	}
	d, err := rebuild.NewDaemons(s)
	return d, usageError(err)
}
