package rebuild

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/twinforge/twinforge/isolation"
	"github.com/twinforge/twinforge/isolation/kube"
)

// DaemonSettings say where a build and its rebuild run, each field named
// after the flag of `twinforge build` that gives it; NewDaemons checks
// them. Every error of NewDaemons is about them, naming the flag.
type DaemonSettings struct {
	// StateDir, Buildkitd, Runc and KeepState (state-dir, buildkitd, runc,
	// keep-state) configure the private daemons, which log to Logger.
	StateDir, Buildkitd, Runc string
	KeepState                 bool
	Logger                    *slog.Logger
	// RuncShim and RebuildSnapshotter vary the rebuild's (Daemons).
	RuncShim, RebuildSnapshotter string
	// Builder (builder) is an existing buildkitd the build runs on,
	// reached with TLS (tlscacert, tlscert, tlskey, tls-server-name,
	// builder-identity); the certificates serve Pool too.
	Builder string
	TLS     isolation.TLS
	// Rebuilder (rebuilder) is an existing buildkitd the rebuild runs on;
	// RebuilderTLS what was given of its TLS.
	Rebuilder    string
	RebuilderTLS RebuilderTLS
	// Pool (workers) is a pool k8s://NAMESPACE[/POOL] of the cluster of
	// Kubeconfig and KubeContext (kubeconfig, context); RebuilderCluster
	// (rebuilder-cluster) another cluster's, for the rebuild. WorkerWait
	// (worker-wait) bounds the wait for free workers.
	Pool, Kubeconfig, KubeContext, RebuilderCluster string
	WorkerWait                                      time.Duration
}

// RebuilderTLS is the TLS of the rebuilder flags that were given (nil:
// not given, TLS's certificates are used).
type RebuilderTLS struct {
	CACert, Cert, Key, ServerName, Identity *string
}

func (t RebuilderTLS) given() []string {
	var out []string
	for _, f := range []struct {
		name string
		v    *string
	}{{"rebuilder-tlscacert", t.CACert}, {"rebuilder-tlscert", t.Cert}, {"rebuilder-tlskey", t.Key}, {"rebuilder-tls-server-name", t.ServerName}, {"rebuilder-identity", t.Identity}} {
		if f.v != nil {
			out = append(out, f.name)
		}
	}
	return out
}

func orDefault(v *string, def string) string {
	if v == nil || *v == "" {
		return def
	}
	return *v
}

// NewDaemons checks s and returns the daemons it names.
func NewDaemons(s DaemonSettings) (Daemons, error) {
	if s.Builder == "" && s.Pool == "" && (s.TLS.CACert != "" || s.TLS.Cert != "" || s.TLS.Key != "") {
		return Daemons{}, errors.New("--tlscacert, --tlscert and --tlskey apply to a --builder daemon or --workers only")
	}
	if s.TLS.Identity != "" && s.Builder == "" {
		return Daemons{}, errors.New("--builder-identity applies to a --builder daemon only")
	}
	w, err := s.workers()
	if err != nil {
		return Daemons{}, err
	}
	d := Daemons{
		StateDir: s.StateDir,
		Options: []isolation.Option{
			isolation.WithBuildkitd(s.Buildkitd),
			isolation.WithRunc(s.Runc),
			isolation.WithKeepState(s.KeepState),
		},
		RuncShim:           s.RuncShim,
		RebuildSnapshotter: s.RebuildSnapshotter,
		Workers:            w,
	}
	if s.Logger != nil {
		d.Options = append(d.Options, isolation.WithLogger(s.Logger))
	}
	if s.Builder != "" {
		tls := s.TLS
		d.Remote, d.TLS = s.Builder, &tls
	}
	return d, nil
}

// workers are the daemons on other machines s names; nil when none.
func (s DaemonSettings) workers() (*Workers, error) {
	if given := s.RebuilderTLS.given(); len(given) > 0 && s.Rebuilder == "" {
		return nil, fmt.Errorf("--%s applies to a --rebuilder daemon only", given[0])
	}
	if s.RebuilderCluster != "" && s.Pool == "" {
		return nil, errors.New("--rebuilder-cluster rebuilds on the --workers pool of another cluster: give --workers k8s://NAMESPACE too")
	}
	if s.Rebuilder == "" && s.Pool == "" {
		return nil, nil
	}
	w := &Workers{Wait: s.WorkerWait}
	if s.Builder != "" {
		tls := s.TLS
		w.Build, w.BuildTLS = s.Builder, &tls
	}
	if s.Rebuilder != "" {
		t := s.RebuilderTLS
		w.Rebuild, w.RebuildTLS = s.Rebuilder, &isolation.TLS{
			CACert: orDefault(t.CACert, s.TLS.CACert), Cert: orDefault(t.Cert, s.TLS.Cert), Key: orDefault(t.Key, s.TLS.Key),
			ServerName: orDefault(t.ServerName, ""), Identity: orDefault(t.Identity, ""),
		}
	}
	if s.Pool == "" {
		return w, nil
	}
	if w.Build != "" && w.Rebuild != "" {
		return nil, errors.New("--workers lends nothing when both --builder and --rebuilder are given: drop one of them")
	}
	k, err := kube.ParseWorkers(s.Pool)
	if err != nil {
		return nil, fmt.Errorf("--workers: %v", err)
	}
	k.Kubeconfig, k.Context = s.Kubeconfig, s.KubeContext
	w.Pool = &k
	if s.RebuilderCluster != "" {
		rk, err := k.WithKubeconfig(s.RebuilderCluster)
		if err != nil {
			return nil, fmt.Errorf("--rebuilder-cluster: %v", err)
		}
		w.RebuildPool = &rk
	}
	if s.Builder == "" && s.TLS.Cert != "" {
		tls := s.TLS
		w.PoolTLS = &tls
	}
	return w, nil
}
