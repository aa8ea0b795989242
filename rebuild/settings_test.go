package rebuild

import (
	"strings"
	"testing"

	"github.com/twinforge/twinforge/isolation"
)

func TestNewDaemons(t *testing.T) {
	str := func(s string) *string { return &s }
	for _, tc := range []struct {
		name  string
		s     DaemonSettings
		err   string
		check func(*testing.T, Daemons)
	}{
		{name: "private", s: DaemonSettings{StateDir: "/state", Buildkitd: "buildkitd", Runc: "runc", RuncShim: "shim", RebuildSnapshotter: "native"},
			check: func(t *testing.T, d Daemons) {
				if d.Remote != "" || d.Workers != nil || d.RuncShim != "shim" || d.RebuildSnapshotter != "native" || len(d.Options) != 3 {
					t.Errorf("daemons = %+v", d)
				}
			}},
		{name: "tls without a daemon", s: DaemonSettings{TLS: isolation.TLS{Cert: "c.pem"}}, err: "--tlscacert, --tlscert and --tlskey apply to a --builder daemon or --workers only"},
		{name: "identity without builder", s: DaemonSettings{TLS: isolation.TLS{Identity: "spiffe://x"}}, err: "--builder-identity applies to a --builder daemon only"},
		{name: "rebuilder tls without rebuilder", s: DaemonSettings{RebuilderTLS: RebuilderTLS{Key: str("")}}, err: "--rebuilder-tlskey applies to a --rebuilder daemon only"},
		{name: "other cluster without pool", s: DaemonSettings{RebuilderCluster: "kubeconfig"}, err: "--rebuilder-cluster rebuilds on the --workers pool of another cluster: give --workers k8s://NAMESPACE too"},
		{name: "pool lends nothing", s: DaemonSettings{Builder: "tcp://a:1", Rebuilder: "tcp://b:1", Pool: "k8s://ns"}, err: "--workers lends nothing when both --builder and --rebuilder are given: drop one of them"},
		{name: "bad pool", s: DaemonSettings{Pool: "bad"}, err: "--workers: "},
		{name: "remote build", s: DaemonSettings{Builder: "tcp://a:1", TLS: isolation.TLS{CACert: "ca", Cert: "c", Key: "k", Identity: "spiffe://a"}},
			check: func(t *testing.T, d Daemons) {
				if d.Remote != "tcp://a:1" || d.TLS == nil || d.TLS.Identity != "spiffe://a" || d.Workers != nil {
					t.Errorf("daemons = %+v", d)
				}
			}},
		{name: "rebuilder inherits certificates", s: DaemonSettings{Builder: "tcp://a:1", TLS: isolation.TLS{CACert: "ca", Cert: "c", Key: "k"},
			Rebuilder: "tcp://b:1", RebuilderTLS: RebuilderTLS{Cert: str("rc"), Identity: str("spiffe://b")}},
			check: func(t *testing.T, d Daemons) {
				w := d.Workers
				if w == nil || w.Build != "tcp://a:1" || w.Rebuild != "tcp://b:1" ||
					*w.RebuildTLS != (isolation.TLS{CACert: "ca", Cert: "rc", Key: "k", Identity: "spiffe://b"}) {
					t.Errorf("workers = %+v", w)
				}
			}},
		{name: "pool with client certificate", s: DaemonSettings{Pool: "k8s://builds/pool", Kubeconfig: "kc", KubeContext: "ctx", TLS: isolation.TLS{Cert: "c", Key: "k"}},
			check: func(t *testing.T, d Daemons) {
				w := d.Workers
				if w == nil || w.Pool == nil || w.Pool.Kubeconfig != "kc" || w.Pool.Context != "ctx" || w.PoolTLS == nil || w.PoolTLS.Cert != "c" {
					t.Errorf("workers = %+v", w)
				}
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, err := NewDaemons(tc.s)
			if tc.err != "" {
				if err == nil || !strings.HasPrefix(err.Error(), tc.err) {
					t.Fatalf("NewDaemons error = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, d)
		})
	}
}
