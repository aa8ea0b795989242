package rebuild

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/twinforge/twinforge/isolation"
)

// Daemons says where builds and their rebuilds run: each on a private
// buildkitd started for it (with Options), or, for a build alone, an
// existing daemon reached over mutual TLS (Remote). A rebuild always gets
// a private daemon of its own, with the variations of DaemonOptions, so
// that build and rebuild share nothing.
type Daemons struct {
	// StateDir is where private daemons keep their state, and builds the
	// base images they fetch. The default is isolation.DefaultStateDir().
	StateDir string
	// Options configure every private daemon further: buildkitd and runc
	// programs, keeping state, logger.
	Options []isolation.Option
	// Remote, when not empty, is the address of an existing buildkitd the
	// build runs on, reached with TLS.
	Remote string
	TLS    *isolation.TLS
	// RuncShim is the runtime shim that varies umask and time zone in a
	// strict rebuild (StrictDaemonOptions).
	RuncShim string
	// RebuildSnapshotter is the rebuild daemon's snapshotter. The default
	// is RebuildSnapshotter.
	RebuildSnapshotter string
	// Workers, when set, run the build and its rebuild on two machines
	// instead (remote daemons or a pool on Kubernetes); Remote and TLS are
	// then not used.
	Workers *Workers
}

// StateDirectory is StateDir, or its default.
func (d Daemons) StateDirectory() string {
	if d.StateDir != "" {
		return d.StateDir
	}
	return isolation.DefaultStateDir()
}

func (d Daemons) options(extra ...isolation.Option) []isolation.Option {
	opts := []isolation.Option{isolation.WithStateDir(d.StateDirectory())}
	return append(append(opts, d.Options...), extra...)
}

// StartBuild starts the build's private daemon, or connects to Remote or
// to the build worker of Workers.
func (d Daemons) StartBuild(ctx context.Context) (isolation.Daemon, error) {
	if d.Workers != nil && (d.Workers.Build != "" || d.Workers.Pool != nil) {
		return d.Workers.startBuild(ctx)
	}
	if d.Remote != "" {
		return isolation.Remote(ctx, "build", d.Remote, d.TLS)
	}
	return isolation.Start(ctx, d.options(isolation.WithName("build"))...)
}

// StartRebuild starts a private daemon with the rebuild's deciding
// variations (DaemonOptions).
func (d Daemons) StartRebuild(ctx context.Context) (isolation.Daemon, error) {
	return isolation.Start(ctx, d.options(d.snapshotter(DaemonOptions())...)...)
}

// StartStrict starts a private daemon with the strict rebuild's
// variations, the pinned ones too (StrictDaemonOptions).
func (d Daemons) StartStrict(ctx context.Context) (isolation.Daemon, error) {
	return isolation.Start(ctx, d.options(d.snapshotter(StrictDaemonOptions(d.RuncShim))...)...)
}

func (d Daemons) snapshotter(opts []isolation.Option) []isolation.Option {
	if d.RebuildSnapshotter != "" {
		opts = append(opts, isolation.WithSnapshotter(d.RebuildSnapshotter))
	}
	return opts
}

// StartPair starts the build daemon and a second daemon at once: the
// rebuild's, or with strict the strict rebuild's. If either fails, the
// other is stopped and the error names the one that failed. With Workers
// both are workers on two machines, or StartPair fails.
func (d Daemons) StartPair(ctx context.Context, strict bool) (build, second isolation.Daemon, err error) {
	if d.Workers != nil {
		return d.startSeparate(ctx, strict)
	}
	startSecond, name := d.StartRebuild, "rebuild"
	if strict {
		startSecond, name = d.StartStrict, "strict rebuild"
	}
	daemons := make([]isolation.Daemon, 2)
	errs := make([]error, 2)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		daemons[0], errs[0] = d.StartBuild(ctx)
	}()
	go func() {
		defer wg.Done()
		daemons[1], errs[1] = startSecond(ctx)
	}()
	wg.Wait()
	if errors.Join(errs...) != nil {
		CloseAll(daemons...)
		for i, e := range errs {
			if e != nil {
				return nil, nil, fmt.Errorf("starting the %s daemon: %w", []string{"build", name}[i], e)
			}
		}
	}
	return daemons[0], daemons[1], nil
}

// CloseAll stops daemons concurrently (nil ones are skipped; Close is
// idempotent) and joins their errors.
func CloseAll(daemons ...isolation.Daemon) error {
	errs := make([]error, len(daemons))
	var wg sync.WaitGroup
	for i, d := range daemons {
		if d == nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = d.Close()
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}
