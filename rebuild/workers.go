package rebuild

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twinforge/twinforge/isolation"
	"github.com/twinforge/twinforge/isolation/kube"
)

// Workers say where a build and its rebuild run when they must run on two
// machines: each side on an existing daemon (tcp, mutual TLS), or on
// workers lent by a pool on Kubernetes. Daemons.Workers set makes
// StartPair start nothing private: both daemons come from here, and a pair
// that is, or may be, one machine is refused (isolation.ErrSameMachine).
type Workers struct {
	// Build and Rebuild are existing daemons (tcp://HOST:PORT) with the
	// client side of mutual TLS of each; TLS.Identity, when set, is the
	// worker identity each must present. With neither Build nor Pool the
	// build runs on a private daemon of this machine, and only the rebuild
	// elsewhere.
	Build, Rebuild       string
	BuildTLS, RebuildTLS *isolation.TLS
	// Pool lends workers of a Kubernetes pool: the build's, unless Build
	// is set, and the rebuild's, unless Rebuild or RebuildPool is set.
	// Both from one pool are lent at once, on two nodes.
	Pool *kube.Cluster
	// RebuildPool lends the rebuild's worker from another pool, of another
	// cluster say (--rebuilder-cluster).
	RebuildPool *kube.Cluster
	// PoolTLS overrides the pools' client certificate (kube.DialOptions).
	PoolTLS *isolation.TLS
	// Wait bounds the wait for free pool workers. The default is
	// kube.DefaultWait.
	Wait time.Duration
	// OnQueue is told where this build stands in a pool's queue while it
	// waits, each time that changes; side is "build", "rebuild" or
	// "build and rebuild".
	OnQueue func(side string, s kube.QueueStatus)
	// Purpose says what the workers are lent for, to whoever lists the
	// pool.
	Purpose string
}

func (w *Workers) validate() error {
	switch {
	case w.Rebuild == "" && w.Pool == nil && w.RebuildPool == nil:
		return errors.New("separate workers: no rebuild worker: give an address or a pool")
	}
	return nil
}

// ErrStrictRemote is returned for strict variations with a rebuild on a
// worker: its daemon does not run steps through twinforge's runtime shim.
var ErrStrictRemote = errors.New("strict variations need a rebuild daemon twinforge starts")

// startSeparate starts the build's and the rebuild's daemons on separate
// machines, or refuses.
func (d Daemons) startSeparate(ctx context.Context, strict bool) (build, second isolation.Daemon, err error) {
	w := d.Workers
	if err := w.validate(); err != nil {
		return nil, nil, err
	}
	if strict {
		return nil, nil, fmt.Errorf("%w: a remote worker varies neither umask nor time zone; drop --strict-variations or rebuild on a private daemon", ErrStrictRemote)
	}
	defer func() {
		if err != nil {
			CloseAll(build, second)
			build, second = nil, nil
		}
	}()
	queue := func(side string) func(kube.QueueStatus) {
		if w.OnQueue == nil {
			return nil
		}
		return func(s kube.QueueStatus) { w.OnQueue(side, s) }
	}
	req := func(side string) kube.Request {
		return kube.Request{Purpose: w.Purpose, Wait: w.Wait, Progress: queue(side)}
	}
	dial := kube.DialOptions{TLS: w.PoolTLS}

	// Both from one pool: lent together, on two nodes.
	if w.Build == "" && w.Rebuild == "" && w.RebuildPool == nil {
		ds, err := kube.AcquireDaemons(ctx, *w.Pool, []string{"build", "rebuild"}, req("build and rebuild"), dial)
		if err != nil {
			return nil, nil, err
		}
		build, second = ds[0], ds[1]
		return build, second, isolation.CheckSeparate(build.Info(), second.Info())
	}
	switch {
	case w.Build != "":
		build, err = isolation.Remote(ctx, "build", w.Build, w.BuildTLS)
	case w.Pool == nil:
		build, err = isolation.Start(ctx, d.options(isolation.WithName("build"))...)
	default:
		var ds []isolation.Daemon
		ds, err = kube.AcquireDaemons(ctx, *w.Pool, []string{"build"}, req("build"), dial)
		if err == nil {
			build = ds[0]
		}
	}
	if err != nil {
		return nil, nil, fmt.Errorf("the build worker: %w", err)
	}
	switch {
	case w.Rebuild != "":
		second, err = isolation.Remote(ctx, "rebuild", w.Rebuild, w.RebuildTLS)
	default:
		pool := w.Pool
		if w.RebuildPool != nil {
			pool = w.RebuildPool
		}
		r := req("rebuild")
		// Never the build's node, if the pool is of the build's cluster.
		if info := build.Info(); info.Cluster != "" {
			r.ExcludeNodes, r.ExcludeCluster = []string{info.Node}, info.Cluster
		}
		var ds []isolation.Daemon
		ds, err = kube.AcquireDaemons(ctx, *pool, []string{"rebuild"}, r, dial)
		if err == nil {
			second = ds[0]
		}
	}
	if err != nil {
		return nil, nil, fmt.Errorf("the rebuild worker: %w", err)
	}
	return build, second, isolation.CheckSeparate(build.Info(), second.Info())
}

// startBuild starts the build's daemon alone (no rebuild): the build
// worker.
func (w *Workers) startBuild(ctx context.Context) (isolation.Daemon, error) {
	if w.Build != "" {
		return isolation.Remote(ctx, "build", w.Build, w.BuildTLS)
	}
	if w.Pool == nil {
		return nil, errors.New("separate workers: the build runs on a private daemon: start it with Daemons")
	}
	var progress func(kube.QueueStatus)
	if w.OnQueue != nil {
		progress = func(s kube.QueueStatus) { w.OnQueue("build", s) }
	}
	ds, err := kube.AcquireDaemons(ctx, *w.Pool, []string{"build"}, kube.Request{Purpose: w.Purpose, Wait: w.Wait, Progress: progress}, kube.DialOptions{TLS: w.PoolTLS})
	if err != nil {
		return nil, err
	}
	return ds[0], nil
}
