package bench

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twinforge/twinforge/builder"
	"github.com/twinforge/twinforge/internal/testenv"
)

// plainBuild starts a fresh buildkitd, builds the example with buildctl
// into an OCI layout, stops the daemon and removes its state: what a user
// of plain BuildKit does for an isolated build.
func plainBuild(b *testing.B, example string, bases []builder.BaseImage) {
	b.Helper()
	root := b.TempDir()
	sock := "unix://" + filepath.Join(root, "buildkitd.sock")
	cfg := filepath.Join(root, "buildkitd.toml")
	if err := os.WriteFile(cfg, nil, 0o600); err != nil {
		b.Fatal(err)
	}
	daemon := exec.Command(testenv.Binary(b, "buildkitd"), "--config", cfg, "--root", filepath.Join(root, "root"),
		"--addr", sock, "--oci-worker=true", "--containerd-worker=false", "--oci-worker-gc=false",
		"--otel-socket-path", filepath.Join(root, "otel.sock"), "--cdi-disabled")
	daemon.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := daemon.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() {
		daemon.Process.Signal(syscall.SIGTERM)
		daemon.Wait()
		os.RemoveAll(root)
	}()
	buildctl := testenv.Binary(b, "buildctl")
	for deadline := time.Now().Add(time.Minute); ; {
		if exec.Command(buildctl, "--addr", sock, "debug", "workers").Run() == nil {
			break
		}
		if time.Now().After(deadline) {
			b.Fatal("buildkitd did not start")
		}
		time.Sleep(20 * time.Millisecond)
	}
	args := []string{"--addr", sock, "build", "--frontend", "dockerfile.v0",
		"--local", "context=" + example, "--local", "dockerfile=" + example,
		"--opt", "build-arg:SOURCE_DATE_EPOCH=0", "--opt", "force-network-mode=none",
		"--output", "type=oci,dest=" + filepath.Join(root, "out") + ",tar=false,oci-mediatypes=true,rewrite-timestamp=true,compression=gzip,force-compression=true"}
	for i, base := range bases {
		id := fmt.Sprintf("base%d", i)
		args = append(args, "--oci-layout", id+"="+base.Layout, "--opt", "context:"+base.Name+"=oci-layout://"+id+"@"+base.Digest)
	}
	if out, err := exec.Command(buildctl, args...).CombinedOutput(); err != nil {
		b.Fatalf("buildctl build: %v\n%s", err, out)
	}
}

// concurrentPlain runs n plain builds at once, each on its own fresh daemon.
func concurrentPlain(b *testing.B, n int, example string, bases []builder.BaseImage) func() {
	return func() {
		var wg sync.WaitGroup
		for range n {
			wg.Add(1)
			go func() { defer wg.Done(); plainBuild(b, example, bases) }()
		}
		wg.Wait()
	}
}

// twinforgeBuild runs the twinforge CLI on the example with its lock.
func twinforgeBuild(b *testing.B, example string, extra ...string) {
	b.Helper()
	out := b.TempDir()
	cmd := exec.Command(testenv.Binary(b, "twinforge"), append(append([]string{"build", "--progress", "quiet", "--oci-layout", filepath.Join(out, "img")}, extra...), example)...)
	cmd.Env = append(os.Environ(), "TWINFORGE_STATE_DIR="+filepath.Join(out, "state"))
	if o, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("twinforge build: %v\n%s", err, o)
	}
}

// compare runs both sides b.N times each, alternating so that both see the
// same machine load, and reports seconds per build and their ratio.
func compare(b *testing.B, ours, theirs func()) {
	testenv.NeedDaemon(b)
	var tOurs, tTheirs time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		theirs()
		tTheirs += time.Since(start)
		start = time.Now()
		ours()
		tOurs += time.Since(start)
	}
	n := float64(b.N)
	b.ReportMetric(tOurs.Seconds()/n, "twinforge-s/op")
	b.ReportMetric(tTheirs.Seconds()/n, "buildctl-s/op")
	b.ReportMetric(tOurs.Seconds()/tTheirs.Seconds(), "ratio")
}

func example(b *testing.B, name string) string {
	return filepath.Join(testenv.RepoRoot(b), "examples", name)
}

// BenchmarkBuildHello: `twinforge build --no-rebuild` against one plain
// buildctl build on a fresh daemon. Target: ratio ≤ 1.05.
func BenchmarkBuildHello(b *testing.B) {
	bases := testenv.BaseImages(b)
	ex := example(b, "hello")
	compare(b, func() { twinforgeBuild(b, ex, "--no-rebuild") }, func() { plainBuild(b, ex, bases) })
}

// BenchmarkVerifiedBuildHello: `twinforge build` (build ∥ rebuild, compare)
// against two plain buildctl builds run concurrently on two fresh daemons.
// Target: ratio ≤ 1.10 plus the 1s start offset.
func BenchmarkVerifiedBuildHello(b *testing.B) {
	bases := testenv.BaseImages(b)
	ex := example(b, "hello")
	compare(b, func() { twinforgeBuild(b, ex) }, concurrentPlain(b, 2, ex, bases))
}

// BenchmarkVerifiedBuildHelloOverlay is the verified build with the rebuild
// on overlayfs too (--rebuild-snapshotter overlayfs): every variation but
// the snapshotter, against the same baseline.
func BenchmarkVerifiedBuildHelloOverlay(b *testing.B) {
	bases := testenv.BaseImages(b)
	ex := example(b, "hello")
	compare(b, func() { twinforgeBuild(b, ex, "--rebuild-snapshotter", "overlayfs") }, concurrentPlain(b, 2, ex, bases))
}

// BenchmarkVerifiedBuildHelloStrict: `twinforge build --strict-variations`
// against the same two concurrent plain builds. examples/hello's binary
// follows the umask, so the strict rebuild differs and the rebuild runs
// after it: the cost of strict variations on an image they change.
func BenchmarkVerifiedBuildHelloStrict(b *testing.B) {
	bases := testenv.BaseImages(b)
	ex := example(b, "hello")
	compare(b, func() { twinforgeBuild(b, ex, "--strict-variations") }, concurrentPlain(b, 2, ex, bases))
}

// BenchmarkThirdConcurrentBuild prices the design not chosen for strict
// variations: a third daemon building beside the build and the rebuild,
// against two, all plain buildctl builds. Its ratio is what every strict
// build would pay; folding the strict rebuild into the rebuild pays it
// only when the pinned variations change the image.
func BenchmarkThirdConcurrentBuild(b *testing.B) {
	bases := testenv.BaseImages(b)
	ex := example(b, "hello")
	compare(b, concurrentPlain(b, 3, ex, bases), concurrentPlain(b, 2, ex, bases))
}

// BenchmarkVerifiedBuildHelloRemoteWorkers: `twinforge build` with the
// build on one remote worker and the rebuild on another (two stand-in
// hosts, each a buildkitd of its own reached over TCP with mutual TLS)
// against the same verified build on local private daemons, alternating
// in one run. The workers are started fresh, empty, before each remote
// build and are not timed: a pool's workers are running when a build
// comes; the local build starts its daemons and is timed with them.
func BenchmarkVerifiedBuildHelloRemoteWorkers(b *testing.B) {
	testenv.NeedDaemon(b)
	testenv.BaseImages(b)
	ex := example(b, "hello")
	var tRemote, tLocal time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		pool := testenv.NewWorkerPool(b, "bench")
		w1 := testenv.NewHost(b, fmt.Sprintf("bench-a%d", i)).StartWorker(b, pool, "worker-a")
		w2 := testenv.NewHost(b, fmt.Sprintf("bench-b%d", i)).StartWorker(b, pool, "worker-b")
		start := time.Now()
		twinforgeBuild(b, ex, "--builder", w1.Addr, "--builder-identity", w1.Identity,
			"--rebuilder", w2.Addr, "--rebuilder-identity", w2.Identity,
			"--tlscacert", pool.CAFile, "--tlscert", pool.ClientCert, "--tlskey", pool.ClientKey)
		tRemote += time.Since(start)
		start = time.Now()
		twinforgeBuild(b, ex)
		tLocal += time.Since(start)
	}
	n := float64(b.N)
	b.ReportMetric(tRemote.Seconds()/n, "remote-s/op")
	b.ReportMetric(tLocal.Seconds()/n, "local-s/op")
	b.ReportMetric(tRemote.Seconds()/tLocal.Seconds(), "ratio")
}
