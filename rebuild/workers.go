package rebuild

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/twinforge/twinforge/attest"
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

	mu sync.Mutex
	// failed are the workers of each pool that failed during this build:
	// not lent again to it.
	failed map[*kube.Cluster][]string
}

// Retryable reports whether a verified build that failed with err may be
// tried again on other workers: a pool's worker died (or was lost) under
// it, and the pool is asked for the others only.
func (w *Workers) Retryable(err error) bool {
	if w == nil || !errors.Is(err, isolation.ErrDaemonFailed) {
		return false
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.failed) > 0
}

// pool is the pool a side's worker comes from: the build's, or the
// rebuild's.
func (w *Workers) pool(rebuild bool) *kube.Cluster {
	if rebuild && w.RebuildPool != nil {
		return w.RebuildPool
	}
	return w.Pool
}

// MarkFailed records that a worker of pool (Pool or RebuildPool) failed
// under this build: it is not lent to it again.
func (w *Workers) MarkFailed(pool *kube.Cluster, worker string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.failed == nil {
		w.failed = map[*kube.Cluster][]string{}
	}
	if !slices.Contains(w.failed[pool], worker) {
		w.failed[pool] = append(w.failed[pool], worker)
	}
}

// onFailure is the kube.DialOptions.OnFailure of pool's workers.
func (w *Workers) onFailure(pool *kube.Cluster) func(string) {
	return func(worker string) { w.MarkFailed(pool, worker) }
}

func (w *Workers) excluded(pool *kube.Cluster) []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.failed[pool])
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
	req := func(side string, pool *kube.Cluster) kube.Request {
		return kube.Request{Purpose: w.Purpose, Wait: w.Wait, Progress: queue(side), ExcludeWorkers: w.excluded(pool)}
	}
	dial := func(pool *kube.Cluster) kube.DialOptions {
		return kube.DialOptions{TLS: w.PoolTLS, OnFailure: w.onFailure(pool)}
	}

	// Both from one pool: lent together, on two nodes.
	if w.Build == "" && w.Rebuild == "" && w.RebuildPool == nil {
		ds, err := kube.AcquireDaemons(ctx, *w.Pool, []string{"build", "rebuild"}, req("build and rebuild", w.Pool), dial(w.Pool))
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
		ds, err = kube.AcquireDaemons(ctx, *w.Pool, []string{"build"}, req("build", w.Pool), dial(w.Pool))
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
		pool := w.pool(true)
		r := req("rebuild", pool)
		// Never the build's node, if the pool is of the build's cluster.
		if info := build.Info(); info.Cluster != "" {
			r.ExcludeNodes, r.ExcludeCluster = []string{info.Node}, info.Cluster
		}
		var ds []isolation.Daemon
		ds, err = kube.AcquireDaemons(ctx, *pool, []string{"rebuild"}, r, dial(pool))
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
	ds, err := kube.AcquireDaemons(ctx, *w.Pool, []string{"build"}, kube.Request{Purpose: w.Purpose, Wait: w.Wait, Progress: progress, ExcludeWorkers: w.excluded(w.Pool)}, kube.DialOptions{TLS: w.PoolTLS, OnFailure: w.onFailure(w.Pool)})
	if err != nil {
		return nil, err
	}
	return ds[0], nil
}

// AttestedBuilder is a daemon's description as provenance and verdicts
// record it: with the worker it is, for a remote one.
func AttestedBuilder(i isolation.Info) attest.Builder {
	b := attest.Builder{Remote: i.Remote, BuildKitVersion: i.BuildKitVersion, Runc: i.Runc, Snapshotter: i.Snapshotter, CPUSet: i.CPUSet,
		Cache: i.CacheState(), RootFS: i.RootFS}
	if i.Cache != nil {
		b.CacheScope, b.CacheReset = i.Cache.Scope, i.Cache.Reset
	}
	if i.Remote {
		b.Worker = &attest.Worker{Identity: i.Identity, Certificate: i.Certificate, Node: i.Node, Cluster: i.Cluster, Pod: i.Pod, Hostname: i.Hostname, WorkerID: i.WorkerID}
	}
	return b
}

// RebuildWorker is the worker a rebuild runs on, for a process of its own
// to reach and check itself (package rebuild/vouch): an existing daemon
// (Address, TLS), or a worker of a pool (Pool, Worker) lent to this build
// until Release.
type RebuildWorker struct {
	Address string         `json:"address,omitempty"`
	TLS     *isolation.TLS `json:"tls,omitempty"`
	Pool    *kube.Cluster  `json:"pool,omitempty"`
	Worker  string         `json:"worker,omitempty"`
	PoolTLS *isolation.TLS `json:"poolTLS,omitempty"`

	lent *kube.Lent
}

// Release gives a lent worker back; it does nothing for an address.
func (w *RebuildWorker) Release() error {
	if w == nil || w.lent == nil {
		return nil
	}
	return w.lent.Release()
}

// StartBuildPlaceRebuild starts the build's daemon, as StartPair would
// with Workers, and chooses the rebuild's worker without dialing it: the
// process that rebuilds dials it with its own credentials. A pool lends
// both workers at once, on two nodes. The caller releases the worker.
func (d Daemons) StartBuildPlaceRebuild(ctx context.Context) (_ isolation.Daemon, _ *RebuildWorker, err error) {
	w := d.Workers
	if w == nil {
		return nil, nil, errors.New("the rebuild runs in a process of its own only on a worker of its own: give the rebuild's worker (Daemons.Workers)")
	}
	if err := w.validate(); err != nil {
		return nil, nil, err
	}
	var progress func(string) func(kube.QueueStatus)
	progress = func(side string) func(kube.QueueStatus) {
		if w.OnQueue == nil {
			return nil
		}
		return func(s kube.QueueStatus) { w.OnQueue(side, s) }
	}
	dial := kube.DialOptions{TLS: w.PoolTLS, Name: "build", OnFailure: w.onFailure(w.Pool)}
	if w.Build == "" && w.Rebuild == "" && w.RebuildPool == nil {
		lent, err := kube.Acquire(ctx, *w.Pool, 2, kube.Request{Purpose: w.Purpose, Wait: w.Wait, Progress: progress("build and rebuild"), ExcludeWorkers: w.excluded(w.Pool)})
		if err != nil {
			return nil, nil, err
		}
		build, err := kube.DialLent(ctx, lent[0], dial)
		if err != nil {
			_ = lent[1].Release()
			return nil, nil, fmt.Errorf("the build worker: %w", err)
		}
		return build, &RebuildWorker{Pool: w.Pool, Worker: lent[1].Worker, PoolTLS: w.PoolTLS, lent: lent[1]}, nil
	}
	var build isolation.Daemon
	switch {
	case w.Build != "":
		build, err = isolation.Remote(ctx, "build", w.Build, w.BuildTLS)
	case w.Pool == nil:
		build, err = isolation.Start(ctx, d.options(isolation.WithName("build"))...)
	default:
		build, err = w.startBuild(ctx)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("the build worker: %w", err)
	}
	if w.Rebuild != "" {
		return build, &RebuildWorker{Address: w.Rebuild, TLS: w.RebuildTLS}, nil
	}
	pool := w.pool(true)
	r := kube.Request{Purpose: w.Purpose, Wait: w.Wait, Progress: progress("rebuild"), ExcludeWorkers: w.excluded(pool)}
	if info := build.Info(); info.Cluster != "" {
		r.ExcludeNodes, r.ExcludeCluster = []string{info.Node}, info.Cluster
	}
	lent, err := kube.Acquire(ctx, *pool, 1, r)
	if err != nil {
		_ = build.Close()
		return nil, nil, fmt.Errorf("the rebuild worker: %w", err)
	}
	return build, &RebuildWorker{Pool: pool, Worker: lent[0].Worker, PoolTLS: w.PoolTLS, lent: lent[0]}, nil
}

// Dial reaches the rebuild worker as the process that rebuilds does: the
// daemon, its certificate identity checked (and, for a pool's worker, the
// node the API server says it runs on).
func (w *RebuildWorker) Dial(ctx context.Context) (isolation.Daemon, error) {
	switch {
	case w.Address != "":
		return isolation.Remote(ctx, "rebuild", w.Address, w.TLS)
	case w.Pool != nil && w.Worker != "":
		return kube.Dial(ctx, *w.Pool, w.Worker, kube.DialOptions{Name: "rebuild", TLS: w.PoolTLS})
	}
	return nil, errors.New("rebuild worker: neither an address nor a pool's worker")
}
