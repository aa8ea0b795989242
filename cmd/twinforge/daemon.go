package main

import (
	"log/slog"
	"os"
	"path/filepath"
	"strings"

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
	method := c.String("rebuilder-sign")
	if method == "" {
		for _, f := range []string{"rebuilder-key-password-file", "rebuilder-identity-token-file"} {
			if c.IsSet(f) {
				return nil, usageErrorf("--%s applies to --rebuilder-sign only", f)
			}
		}
		return nil, nil
	}
	if workers == nil || (workers.Rebuild == "" && workers.Pool == nil && workers.RebuildPool == nil) {
		return nil, usageErrorf("--rebuilder-sign: the rebuilder vouches only for a rebuild on a worker of its own, another machine than the build's: give --rebuilder ADDR or --workers k8s://NAMESPACE")
	}
	if sign.method == "none" {
		return nil, usageErrorf("--rebuilder-sign vouches for a signed provenance: give --sign keyless or --sign key=FILE")
	}
	v := &pipeline.Vouch{RebuilderID: c.String("rebuilder-id"), TrustedRoot: sign.trustedRoot, Stderr: c.App.ErrWriter}
	switch {
	case method == "keyless":
		v.Signer = vouch.SignerFiles{IDTokenFile: c.String("rebuilder-identity-token-file"), FulcioURL: sign.fulcio, TSAURL: sign.tsa, RekorURL: sign.rekor}
		if v.Signer.IDTokenFile == "" {
			return nil, usageErrorf("--rebuilder-sign keyless needs the rebuilder's own token: --rebuilder-identity-token-file FILE (the builder's is never passed on)")
		}
		if c.IsSet("rebuilder-key-password-file") {
			return nil, usageErrorf("--rebuilder-key-password-file applies to --rebuilder-sign key=FILE only")
		}
	case strings.HasPrefix(method, "key="):
		v.Signer = vouch.SignerFiles{KeyPath: strings.TrimPrefix(method, "key="), KeyPasswordFile: c.String("rebuilder-key-password-file"), RekorURL: sign.rekor}
		if c.IsSet("tsa-url") {
			v.Signer.TSAURL = sign.tsa
		}
		if c.IsSet("rebuilder-identity-token-file") {
			return nil, usageErrorf("--rebuilder-identity-token-file applies to --rebuilder-sign keyless only")
		}
		if sign.keyPath != "" && sameFile(sign.keyPath, v.Signer.KeyPath) {
			return nil, usageErrorf("--rebuilder-sign key=%s is the builder's own key (--sign): a builder does not vouch for itself", v.Signer.KeyPath)
		}
	default:
		return nil, usageErrorf("--rebuilder-sign %q: use key=FILE or keyless", method)
	}
	for _, f := range []string{v.Signer.KeyPath, v.Signer.KeyPasswordFile, v.Signer.IDTokenFile} {
		if f == "" {
			continue
		}
		if _, err := os.Stat(f); err != nil {
			return nil, usageErrorf("--rebuilder-sign: %v", err)
		}
	}
	return v, nil
}

func sameFile(a, b string) bool {
	fa, err1 := os.Stat(a)
	fb, err2 := os.Stat(b)
	return err1 == nil && err2 == nil && os.SameFile(fa, fb)
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

// daemonConfig is what daemonFlags parse to.
type daemonConfig struct {
	stateDir, buildkitd, runc string
	keepState                 bool
	remote                    string
	tls                       isolation.TLS
	// workers, when set, run the build and its rebuild on two machines.
	workers *rebuild.Workers
}

func daemonConfigFrom(c *cli.Context) (daemonConfig, error) {
	cfg := daemonConfig{
		stateDir:  c.String("state-dir"),
		buildkitd: c.String("buildkitd"),
		runc:      c.String("runc"),
		keepState: c.Bool("keep-state"),
		remote:    c.String("builder"),
		tls: isolation.TLS{
			CACert: c.String("tlscacert"), Cert: c.String("tlscert"), Key: c.String("tlskey"),
			ServerName: c.String("tls-server-name"),
		},
	}
	if cfg.remote == "" && c.String("workers") == "" && (cfg.tls.CACert != "" || cfg.tls.Cert != "" || cfg.tls.Key != "") {
		return cfg, usageErrorf("--tlscacert, --tlscert and --tlskey apply to a --builder daemon or --workers only")
	}
	cfg.tls.Identity = c.String("builder-identity")
	if cfg.tls.Identity != "" && cfg.remote == "" {
		return cfg, usageErrorf("--builder-identity applies to a --builder daemon only")
	}
	w, err := workersFrom(c, cfg)
	if err != nil {
		return cfg, err
	}
	cfg.workers = w
	return cfg, nil
}

// workersFrom reads the flags that put the build and its rebuild on two
// machines; nil when none is given.
func workersFrom(c *cli.Context, cfg daemonConfig) (*rebuild.Workers, error) {
	rebuilder, pool, other := c.String("rebuilder"), c.String("workers"), c.String("rebuilder-cluster")
	for _, f := range []string{"rebuilder-tlscacert", "rebuilder-tlscert", "rebuilder-tlskey", "rebuilder-tls-server-name", "rebuilder-identity"} {
		if c.IsSet(f) && rebuilder == "" {
			return nil, usageErrorf("--%s applies to a --rebuilder daemon only", f)
		}
	}
	if other != "" && pool == "" {
		return nil, usageErrorf("--rebuilder-cluster rebuilds on the --workers pool of another cluster: give --workers k8s://NAMESPACE too")
	}
	if rebuilder == "" && pool == "" {
		return nil, nil
	}
	w := &rebuild.Workers{Wait: c.Duration("worker-wait")}
	if cfg.remote != "" {
		tls := cfg.tls
		w.Build, w.BuildTLS = cfg.remote, &tls
	}
	if rebuilder != "" {
		tls := isolation.TLS{
			CACert: or(c.String("rebuilder-tlscacert"), cfg.tls.CACert), Cert: or(c.String("rebuilder-tlscert"), cfg.tls.Cert),
			Key: or(c.String("rebuilder-tlskey"), cfg.tls.Key), ServerName: c.String("rebuilder-tls-server-name"), Identity: c.String("rebuilder-identity"),
		}
		w.Rebuild, w.RebuildTLS = rebuilder, &tls
	}
	if pool != "" {
		if w.Build != "" && w.Rebuild != "" {
			return nil, usageErrorf("--workers lends nothing when both --builder and --rebuilder are given: drop one of them")
		}
		k, err := kube.ParseWorkers(pool)
		if err != nil {
			return nil, usageErrorf("--workers: %v", err)
		}
		k.Kubeconfig, k.Context = c.String("kubeconfig"), c.String("context")
		w.Pool = &k
		if other != "" {
			rk, err := k.WithKubeconfig(other)
			if err != nil {
				return nil, usageErrorf("--rebuilder-cluster: %v", err)
			}
			w.RebuildPool = &rk
		}
		if cfg.remote == "" && cfg.tls.Cert != "" {
			tls := cfg.tls
			w.PoolTLS = &tls
		}
	}
	return w, nil
}

// daemons are the daemons a build or rebuild runs on; shim and
// snapshotter vary the rebuild's.
func (cfg daemonConfig) daemons(shim, snapshotter string) rebuild.Daemons {
	d := rebuild.Daemons{
		StateDir: cfg.stateDir,
		Options: []isolation.Option{
			isolation.WithBuildkitd(cfg.buildkitd),
			isolation.WithRunc(cfg.runc),
			isolation.WithKeepState(cfg.keepState),
			isolation.WithLogger(slog.Default()),
		},
		RuncShim:           shim,
		RebuildSnapshotter: snapshotter,
	}
	if cfg.remote != "" {
		tls := cfg.tls
		d.Remote, d.TLS = cfg.remote, &tls
	}
	d.Workers = cfg.workers
	return d
}
