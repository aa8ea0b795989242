package main

import (
	"log/slog"
	"os"
	"path/filepath"

	"github.com/urfave/cli/v2"

	"github.com/twinforge/twinforge/isolation"
	"github.com/twinforge/twinforge/rebuild"
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
	if cfg.remote == "" && (cfg.tls.CACert != "" || cfg.tls.Cert != "" || cfg.tls.Key != "") {
		return cfg, usageErrorf("--tlscacert, --tlscert and --tlskey apply to a --builder daemon only")
	}
	return cfg, nil
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
	return d
}
