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
func daemonFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "state-dir", Usage: "where private daemons keep their state", Value: isolation.DefaultStateDir(), EnvVars: []string{"TWINFORGE_STATE_DIR"}},
		&cli.BoolFlag{Name: "keep-state", Usage: "keep each private daemon's state directory after the build, for inspection"},
		&cli.StringFlag{Name: "buildkitd", Usage: "buildkitd program for private daemons", Value: defaultBinary("buildkitd"), EnvVars: []string{"TWINFORGE_BUILDKITD"}},
		&cli.StringFlag{Name: "runc", Usage: "runc program the daemons run build steps with", Value: "runc", EnvVars: []string{"TWINFORGE_RUNC"}},
		&cli.StringFlag{Name: "builder", Usage: "use an existing buildkitd at `ADDR` (tcp://HOST:PORT, with --tlscacert, --tlscert and --tlskey) instead of a private one", EnvVars: []string{"TWINFORGE_BUILDER"}},
		&cli.StringFlag{Name: "tlscacert", Usage: "CA certificate that verifies the --builder daemon"},
		&cli.StringFlag{Name: "tlscert", Usage: "client certificate for the --builder daemon"},
		&cli.StringFlag{Name: "tlskey", Usage: "client key for the --builder daemon"},
		&cli.StringFlag{Name: "tls-server-name", Usage: "name expected in the --builder daemon's certificate (default: its host)"},
	}
}

func runcShimFlag() cli.Flag {
	return &cli.StringFlag{Name: "runc-shim", Usage: "runtime shim that varies umask and time zone in the strict rebuild", Value: defaultBinary("twinforge-runc-shim"), EnvVars: []string{"TWINFORGE_RUNC_SHIM"}}
}

// workerFlags put a build and its rebuild on two machines: remote daemons
// or a pool of workers on Kubernetes.
func workerFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "builder-identity", Usage: "worker identity the --builder daemon's certificate must carry, e.g. spiffe://twinforge/workers/POOL/NAME (twinforge workers certs)"},
		&cli.StringFlag{Name: "rebuilder", Usage: "rebuild on the existing buildkitd at `ADDR` (tcp://HOST:PORT) instead of a private one; it must be another machine than the build's", EnvVars: []string{"TWINFORGE_REBUILDER"}},
		&cli.StringFlag{Name: "rebuilder-tlscacert", Usage: "CA certificate that verifies the --rebuilder daemon (default: --tlscacert)"},
		&cli.StringFlag{Name: "rebuilder-tlscert", Usage: "client certificate for the --rebuilder daemon (default: --tlscert)"},
		&cli.StringFlag{Name: "rebuilder-tlskey", Usage: "client key for the --rebuilder daemon (default: --tlskey)"},
		&cli.StringFlag{Name: "rebuilder-tls-server-name", Usage: "name expected in the --rebuilder daemon's certificate (default: its host)"},
		&cli.StringFlag{Name: "rebuilder-identity", Usage: "worker identity the --rebuilder daemon's certificate must carry"},
		&cli.StringFlag{Name: "workers", Usage: "build and rebuild on two nodes of the pool `k8s://NAMESPACE[/POOL]` (twinforge workers deploy), waiting in its queue for free workers", EnvVars: []string{"TWINFORGE_WORKERS"}},
		&cli.StringFlag{Name: "kubeconfig", Usage: "kubeconfig file of the --workers cluster (default: $KUBECONFIG, else ~/.kube/config)", EnvVars: []string{"KUBECONFIG"}},
		&cli.StringFlag{Name: "context", Usage: "kubeconfig context of the --workers cluster (default: its current context)"},
		&cli.StringFlag{Name: "rebuilder-cluster", Usage: "rebuild on the --workers pool of another cluster: a kubeconfig `FILE`, FILE:CONTEXT, or a context of the default kubeconfig"},
		&cli.DurationFlag{Name: "worker-wait", Value: kube.DefaultWait, Usage: "how long to wait for free --workers before giving up"},
		&cli.StringFlag{Name: "rebuilder-sign", Usage: "the rebuild side signs its own rebuild verdict, in a process of its own that never gets the builder's credentials: key=`FILE`, or keyless with --rebuilder-identity-token-file; needs the rebuild on a worker of its own (--rebuilder or --workers) and --sign"},
		&cli.StringFlag{Name: "rebuilder-key-password-file", Usage: "`FILE` holding the password of the --rebuilder-sign key"},
		&cli.StringFlag{Name: "rebuilder-identity-token-file", Usage: "`FILE` holding the rebuilder's own OIDC identity token for --rebuilder-sign keyless: another subject than the builder's"},
		&cli.StringFlag{Name: "rebuilder-id", Value: vouch.DefaultRebuilderID, Usage: "the rebuilder's identity recorded in its verdict"},
	}
}

// vouchFrom reads --rebuilder-sign and its companions; nil without it.
// The services and trusted root are the build's (--fulcio-url, --tsa-url,
// --rekor-url, --trusted-root): public, unlike the credentials.
func vouchFrom(c *cli.Context, workers *rebuild.Workers, sign *signOptions) (*pipeline.Vouch, error) {
	v, err := pipeline.NewVouch(pipeline.VouchSettings{
		Method: c.String("rebuilder-sign"), KeyPasswordFile: givenString(c, "rebuilder-key-password-file"),
		IDTokenFile: givenString(c, "rebuilder-identity-token-file"), RebuilderID: c.String("rebuilder-id"), Stderr: c.App.ErrWriter,
	}, workers, sign.SignSettings)
	if err != nil {
		return nil, usageError(err)
	}
	return v, nil
}

// givenString is a flag's value when it was given, nil otherwise.
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

// daemonsFrom reads daemonFlags and workerFlags: where the build and its
// rebuild run, the rebuild on snapshotter.
func daemonsFrom(c *cli.Context, snapshotter string) (rebuild.Daemons, error) {
	d, err := rebuild.NewDaemons(rebuild.DaemonSettings{
		StateDir: c.String("state-dir"), Buildkitd: c.String("buildkitd"), Runc: c.String("runc"), KeepState: c.Bool("keep-state"),
		Logger: logger(), RuncShim: c.String("runc-shim"), RebuildSnapshotter: snapshotter,
		Builder: c.String("builder"),
		TLS: isolation.TLS{
			CACert: c.String("tlscacert"), Cert: c.String("tlscert"), Key: c.String("tlskey"),
			ServerName: c.String("tls-server-name"), Identity: c.String("builder-identity"),
		},
		Rebuilder: c.String("rebuilder"),
		RebuilderTLS: rebuild.RebuilderTLS{
			CACert: givenString(c, "rebuilder-tlscacert"), Cert: givenString(c, "rebuilder-tlscert"), Key: givenString(c, "rebuilder-tlskey"),
			ServerName: givenString(c, "rebuilder-tls-server-name"), Identity: givenString(c, "rebuilder-identity"),
		},
		Pool: c.String("workers"), Kubeconfig: c.String("kubeconfig"), KubeContext: c.String("context"),
		RebuilderCluster: c.String("rebuilder-cluster"), WorkerWait: c.Duration("worker-wait"),
	})
	if err != nil {
		return d, usageError(err)
	}
	return d, nil
}
