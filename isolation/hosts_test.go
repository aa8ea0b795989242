package isolation_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/twinforge/twinforge/internal/testenv"
	"github.com/twinforge/twinforge/isolation"
)

// Two buildkitd workers on two stand-in hosts (network and UTS namespaces
// of their own), each with its own worker certificate, reached over TCP
// with mutual TLS only: Remote records who each is and where it runs, and
// CheckSeparate accepts them as two machines.
func TestRemoteWorkersOnTwoHosts(t *testing.T) {
	pool := testenv.NewWorkerPool(t, "builds")
	a := testenv.NewHost(t, "host-a").StartWorker(t, pool, "worker-a")
	b := testenv.NewHost(t, "host-b").StartWorker(t, pool, "worker-b")
	ctx := context.Background()

	da, err := isolation.Remote(ctx, "build", a.Addr, pool.TLS(a))
	if err != nil {
		t.Fatal(err)
	}
	db, err := isolation.Remote(ctx, "rebuild", b.Addr, pool.TLS(b))
	if err != nil {
		t.Fatal(err)
	}
	ia, ib := da.Info(), db.Info()
	for _, c := range []struct {
		info     isolation.Info
		identity string
		host     string
	}{{ia, a.Identity, "host-a"}, {ib, b.Identity, "host-b"}} {
		if !c.info.Remote || c.info.Identity != c.identity || c.info.Hostname != c.host || c.info.Node != c.host ||
			c.info.WorkerID == "" || c.info.BuildKitVersion == "" || c.info.Snapshotter != "overlayfs" || !strings.HasPrefix(c.info.Certificate, "sha256:") {
			t.Errorf("info = %+v, want identity %s on %s", c.info, c.identity, c.host)
		}
	}
	if err := isolation.CheckSeparate(ia, ib); err != nil {
		t.Errorf("two hosts refused: %v", err)
	}
	if err := da.Check(ctx); err != nil {
		t.Errorf("check: %v", err)
	}
}

// Each way a worker can fail to be what twinforge needs is refused before
// any build reaches it, with an error that names the worker and the cause.
func TestRemoteWorkerRefusals(t *testing.T) {
	pool := testenv.NewWorkerPool(t, "builds")
	h := testenv.NewHost(t, "host-a")
	good := h.StartWorker(t, pool, "worker-a")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	t.Run("certificate of another worker", func(t *testing.T) {
		tls := pool.TLS(good)
		tls.Identity = "spiffe://twinforge/workers/builds/worker-b"
		_, err := isolation.Remote(ctx, "build", good.Addr, tls)
		if !errors.Is(err, isolation.ErrWorkerIdentity) || !strings.Contains(err.Error(), good.Identity) {
			t.Fatalf("err = %v, want ErrWorkerIdentity naming %s", err, good.Identity)
		}
	})
	t.Run("worker of another pool", func(t *testing.T) {
		other := testenv.NewWorkerPool(t, "builds")
		_, err := isolation.Remote(ctx, "build", good.Addr, other.TLS(good))
		if err == nil || !errors.Is(err, isolation.ErrDaemonFailed) {
			t.Fatalf("err = %v, want the daemon refused", err)
		}
	})
	t.Run("one worker twice", func(t *testing.T) {
		d1, err := isolation.Remote(ctx, "build", good.Addr, pool.TLS(good))
		if err != nil {
			t.Fatal(err)
		}
		d2, err := isolation.Remote(ctx, "rebuild", good.Addr, pool.TLS(good))
		if err != nil {
			t.Fatal(err)
		}
		err = isolation.CheckSeparate(d1.Info(), d2.Info())
		if !errors.Is(err, isolation.ErrSameMachine) || !strings.Contains(err.Error(), "one daemon") {
			t.Fatalf("err = %v, want ErrSameMachine (one daemon)", err)
		}
	})
	t.Run("two workers on one host", func(t *testing.T) {
		second := h.StartWorker(t, pool, "worker-a2")
		d1, err := isolation.Remote(ctx, "build", good.Addr, pool.TLS(good))
		if err != nil {
			t.Fatal(err)
		}
		d2, err := isolation.Remote(ctx, "rebuild", second.Addr, pool.TLS(second))
		if err != nil {
			t.Fatal(err)
		}
		err = isolation.CheckSeparate(d1.Info(), d2.Info())
		if !errors.Is(err, isolation.ErrSameMachine) || !strings.Contains(err.Error(), "host host-a") {
			t.Fatalf("err = %v, want ErrSameMachine (host host-a)", err)
		}
	})
	t.Run("insecure entitlements", func(t *testing.T) {
		w := testenv.NewHost(t, "host-i").StartWorker(t, pool, "worker-i", "--allow-insecure-entitlement", "security.insecure")
		_, err := isolation.Remote(ctx, "build", w.Addr, pool.TLS(w))
		if !errors.Is(err, isolation.ErrInsecureEntitlements) || !strings.Contains(err.Error(), "security.insecure") {
			t.Fatalf("err = %v, want ErrInsecureEntitlements", err)
		}
	})
	t.Run("host network", func(t *testing.T) {
		w := testenv.NewHost(t, "host-n").StartWorker(t, pool, "worker-n", "--oci-worker-net", "host")
		_, err := isolation.Remote(ctx, "build", w.Addr, pool.TLS(w))
		if !errors.Is(err, isolation.ErrHostNetwork) {
			t.Fatalf("err = %v, want ErrHostNetwork", err)
		}
	})
	t.Run("private daemons", func(t *testing.T) {
		err := isolation.CheckSeparate(isolation.Info{Address: "unix:///a"}, isolation.Info{Address: "unix:///b"})
		if !errors.Is(err, isolation.ErrSameMachine) {
			t.Fatalf("err = %v, want ErrSameMachine", err)
		}
	})
}
