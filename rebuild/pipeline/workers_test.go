package pipeline_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moby/buildkit/client"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/twinforge/twinforge/attest"
	"github.com/twinforge/twinforge/attest/verify"
	"github.com/twinforge/twinforge/hermetic"
	"github.com/twinforge/twinforge/internal/testenv"
	"github.com/twinforge/twinforge/isolation"
	"github.com/twinforge/twinforge/rebuild"
	"github.com/twinforge/twinforge/rebuild/pipeline"
)

// twoHosts starts a worker on each of two stand-in hosts, of one pool.
func twoHosts(t *testing.T) (*testenv.WorkerPool, *testenv.Worker, *testenv.Worker) {
	t.Helper()
	pool := testenv.NewWorkerPool(t, "builds")
	a := testenv.NewHost(t, "host-a").StartWorker(t, pool, "worker-a")
	b := testenv.NewHost(t, "host-b").StartWorker(t, pool, "worker-b")
	return pool, a, b
}

func keySigner(t *testing.T) attest.Signer {
	t.Helper()
	keys := filepath.Join(testenv.RepoRoot(t), "attest", "testdata", "keys")
	s, err := attest.NewSigner(context.Background(), attest.SignerConfig{KeyPath: filepath.Join(keys, "cosign.key"), KeyPassword: []byte("twinforge-test")})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// A build on one host and its rebuild on another, each a worker reached
// over TCP with mutual TLS only: the digests agree, and the provenance
// names both workers by the identity in their certificates and the host
// they reported.
func TestBuildOnTwoWorkers(t *testing.T) {
	pool, a, b := twoHosts(t)
	testenv.BaseImages(t)
	ctx := context.Background()
	layout := filepath.Join(t.TempDir(), "img")
	res, err := pipeline.Run(ctx, pipeline.Request{
		ContextDir: filepath.Join(testenv.RepoRoot(t), "examples", "files"),
		OCILayout:  layout,
		Daemons: rebuild.Daemons{StateDir: t.TempDir(), Workers: &rebuild.Workers{
			Build: a.Addr, BuildTLS: pool.TLS(a), Rebuild: b.Addr, RebuildTLS: pool.TLS(b),
		}},
		Signer: keySigner(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Reproduction() != "reproduced" {
		t.Fatalf("reproduction %s", res.Reproduction())
	}
	if got := res.Build.Builder; got.Identity != a.Identity || got.Node != "host-a" {
		t.Errorf("build ran on %+v, want %s on host-a", got, a.Identity)
	}
	if got := res.Proof.Rebuild.Builder; got.Identity != b.Identity || got.Node != "host-b" {
		t.Errorf("rebuild ran on %+v, want %s on host-b", got, b.Identity)
	}
	st := provenanceStatement(t, layout)
	for _, want := range []string{a.Identity, b.Identity, `"workerNode":"host-a"`, `"workerNode":"host-b"`} {
		if !strings.Contains(st, want) {
			t.Errorf("provenance does not name %s", want)
		}
	}
}

func provenanceStatement(t *testing.T, layout string) string {
	t.Helper()
	b, err := verify.ReadBundles(layout)
	if err != nil {
		t.Fatal(err)
	}
	d, err := verify.Describe(b.Provenance)
	if err != nil {
		t.Fatal(err)
	}
	out, _ := protojson.Marshal(d.Statement)
	return string(out)
}

// Two workers of one host, or one worker at two addresses, are one
// machine: the build is refused before anything is built, and nothing is
// written.
func TestWorkersOnOneHostRefused(t *testing.T) {
	pool := testenv.NewWorkerPool(t, "builds")
	h := testenv.NewHost(t, "host-a")
	a := h.StartWorker(t, pool, "worker-a")
	a2 := h.StartWorker(t, pool, "worker-a2")
	layout := filepath.Join(t.TempDir(), "img")
	for name, w := range map[string]*rebuild.Workers{
		"two workers on one host": {Build: a.Addr, BuildTLS: pool.TLS(a), Rebuild: a2.Addr, RebuildTLS: pool.TLS(a2)},
		"one worker twice":        {Build: a.Addr, BuildTLS: pool.TLS(a), Rebuild: a.Addr, RebuildTLS: pool.TLS(a)},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := pipeline.Run(context.Background(), pipeline.Request{
				ContextDir: filepath.Join(testenv.RepoRoot(t), "examples", "files"),
				OCILayout:  layout,
				Daemons:    rebuild.Daemons{StateDir: t.TempDir(), Workers: w},
				Signer:     keySigner(t),
			})
			if !errors.Is(err, isolation.ErrSameMachine) {
				t.Fatalf("err = %v, want ErrSameMachine", err)
			}
			if _, err := os.Stat(layout); !os.IsNotExist(err) {
				t.Errorf("a layout was written: %v", err)
			}
		})
	}
}

// A rebuild worker that dies mid-build fails the build with an error that
// says so; nothing is signed, and no layout claims a digest.
func TestWorkerKilledMidBuild(t *testing.T) {
	pool, a, b := twoHosts(t)
	base := testenv.BaseImages(t)[0]
	ctxDir := t.TempDir()
	dockerfile := "FROM " + base.Name + "\nRUN sleep 120 && echo done > /done\n"
	if err := os.WriteFile(filepath.Join(ctxDir, "Dockerfile"), []byte(dockerfile), 0o644); err != nil {
		t.Fatal(err)
	}
	l, err := hermetic.Create(t.Context(), hermetic.Request{ContextDir: ctxDir, Images: map[string]string{base.Name: "oci-layout:" + base.Layout}})
	if err != nil {
		t.Fatal(err)
	}
	data, err := l.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(ctxDir, hermetic.DefaultFileName), data, 0o644); err != nil {
		t.Fatal(err)
	}

	progress := make(chan *client.SolveStatus)
	sleeping := make(chan struct{})
	go func() {
		closed := false
		for s := range progress {
			for _, v := range s.Vertexes {
				if !closed && v.Started != nil && strings.HasPrefix(v.Name, "[rebuild] ") && strings.Contains(v.Name, "sleep 120") {
					close(sleeping)
					closed = true
				}
			}
		}
	}()
	layout := filepath.Join(t.TempDir(), "img")
	done := make(chan error, 1)
	go func() {
		_, err := pipeline.Run(context.Background(), pipeline.Request{
			ContextDir: ctxDir,
			OCILayout:  layout,
			Daemons: rebuild.Daemons{StateDir: t.TempDir(), Workers: &rebuild.Workers{
				Build: a.Addr, BuildTLS: pool.TLS(a), Rebuild: b.Addr, RebuildTLS: pool.TLS(b),
			}},
			Progress: progress,
			Signer:   keySigner(t),
		})
		done <- err
	}()
	select {
	case <-sleeping:
	case err := <-done:
		t.Fatalf("the build ended before the rebuild's step ran: %v", err)
	case <-time.After(5 * time.Minute):
		t.Fatal("the rebuild's step did not start within 5 minutes")
	}
	b.Kill()
	var runErr error
	select {
	case runErr = <-done:
	case <-time.After(3 * time.Minute):
		t.Fatal("the build did not fail within 3 minutes of its rebuild worker dying")
	}
	t.Logf("the build failed: %v", runErr)
	if !errors.Is(runErr, isolation.ErrDaemonFailed) || !strings.Contains(runErr.Error(), "rebuild") || !strings.Contains(runErr.Error(), b.Addr) {
		t.Fatalf("err = %v, want the rebuild worker %s named as failed", runErr, b.Addr)
	}
	if b, err := verify.ReadBundles(layout); err != nil || b.Provenance != nil || b.Image != nil {
		t.Errorf("bundles were written for a build whose rebuild died: %+v %v", b, err)
	}
}
