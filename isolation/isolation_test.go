package isolation_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twinforge/twinforge/internal/testenv"
	"github.com/twinforge/twinforge/isolation"
)

func TestStartAndClose(t *testing.T) {
	testenv.NeedDaemon(t)
	state := t.TempDir()
	d, err := isolation.Start(context.Background(),
		isolation.WithStateDir(state), isolation.WithName("build"),
		isolation.WithBuildkitd(testenv.Binary(t, "buildkitd")))
	if err != nil {
		t.Fatal(err)
	}
	info := d.Info()
	if info.BuildKitVersion == "" || info.Runc == "" || info.Snapshotter != "overlayfs" || info.Remote {
		t.Errorf("incomplete daemon info: %+v", info)
	}
	if !strings.HasPrefix(d.Addr(), "unix://"+state) {
		t.Errorf("socket %s is not under the state directory %s", d.Addr(), state)
	}
	pid := daemonPid(t, info.StateDir)
	c, err := d.Client(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	workers, err := c.ListWorkers(context.Background())
	c.Close()
	if err != nil || len(workers) != 1 {
		t.Fatalf("workers: %v, %v", workers, err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	assertGone(t, pid, info.StateDir)
}

func TestTwoDaemonsShareNothing(t *testing.T) {
	a := testenv.StartDaemon(t, isolation.WithName("build"))
	b := testenv.StartDaemon(t, isolation.WithName("rebuild"), isolation.WithSnapshotter("native"))
	ia, ib := a.Info(), b.Info()
	if ia.Address == ib.Address || ia.StateDir == ib.StateDir {
		t.Fatalf("daemons share an address or state: %+v %+v", ia, ib)
	}
	if strings.HasPrefix(ia.StateDir, ib.StateDir) || strings.HasPrefix(ib.StateDir, ia.StateDir) {
		t.Fatalf("one daemon's state is inside the other's: %s %s", ia.StateDir, ib.StateDir)
	}
	if ib.Snapshotter != "native" {
		t.Errorf("snapshotter = %s, want native", ib.Snapshotter)
	}
}

func TestKeepState(t *testing.T) {
	testenv.NeedDaemon(t)
	state := t.TempDir()
	d, err := isolation.Start(context.Background(), isolation.WithStateDir(state),
		isolation.WithBuildkitd(testenv.Binary(t, "buildkitd")), isolation.WithKeepState(true))
	if err != nil {
		t.Fatal(err)
	}
	dir := d.Info().StateDir
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "buildkitd.log")); err != nil {
		t.Fatalf("kept state lost its log: %v", err)
	}
	// Kept state survives the next run's reaping.
	isolation.ReapStale(state, testenv.Logger(t))
	if _, err := os.Stat(dir); err != nil {
		t.Fatalf("kept state was reaped: %v", err)
	}
	assertNoMounts(t, dir)
}

// A run that was killed leaves a state directory with a dead pid, a mount
// and a socket; the next Start removes all of it.
func TestStaleStateIsReaped(t *testing.T) {
	testenv.NeedDaemon(t)
	state := t.TempDir()
	stale := filepath.Join(state, "daemons", "build-crashed")
	mnt := filepath.Join(stale, "root", "mnt")
	if err := os.MkdirAll(mnt, 0o700); err != nil {
		t.Fatal(err)
	}
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(stale, "pid"), strconv.Itoa(dead.ProcessState.Pid()))
	write(t, filepath.Join(stale, "buildkitd.sock"), "")
	if err := syscall.Mount("tmpfs", mnt, "tmpfs", 0, "size=1m"); err != nil {
		t.Fatalf("mounting a tmpfs to leave behind: %v", err)
	}
	t.Cleanup(func() { _ = syscall.Unmount(mnt, syscall.MNT_DETACH) })

	d, err := isolation.Start(context.Background(), isolation.WithStateDir(state),
		isolation.WithBuildkitd(testenv.Binary(t, "buildkitd")))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if _, err := os.Stat(stale); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("stale state still there: %v", err)
	}
	assertNoMounts(t, stale)
}

func TestStartFailures(t *testing.T) {
	testenv.NeedDaemon(t)
	failing := filepath.Join(t.TempDir(), "buildkitd")
	write(t, failing, "#!/bin/sh\necho 'buildkitd: cannot create worker: overlay not supported' >&2\nexit 3\n")
	if err := os.Chmod(failing, 0o755); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		opts    []isolation.Option
		wantErr error
		want    []string
	}{
		{"buildkitd missing", []isolation.Option{isolation.WithBuildkitd("/nonexistent/buildkitd")}, isolation.ErrMissingBinary, []string{"buildkitd", "make deps"}},
		{"runc missing", []isolation.Option{isolation.WithBuildkitd(testenv.Binary(t, "buildkitd")), isolation.WithRunc("/nonexistent/runc")}, isolation.ErrMissingBinary, []string{"runc", "apt-get install runc"}},
		{"daemon exits", []isolation.Option{isolation.WithBuildkitd(failing)}, isolation.ErrDaemonFailed, []string{"exited while starting", "overlay not supported"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			state := t.TempDir()
			_, err := isolation.Start(context.Background(), append([]isolation.Option{isolation.WithStateDir(state)}, tt.opts...)...)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			entries, _ := os.ReadDir(filepath.Join(state, "daemons"))
			if len(entries) != 0 {
				t.Errorf("state left behind: %v", entries)
			}
		})
	}
}

func TestStartCancelled(t *testing.T) {
	testenv.NeedDaemon(t)
	state := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := isolation.Start(ctx, isolation.WithStateDir(state), isolation.WithBuildkitd(testenv.Binary(t, "buildkitd")))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	entries, _ := os.ReadDir(filepath.Join(state, "daemons"))
	if len(entries) != 0 {
		t.Errorf("state left behind: %v", entries)
	}
}

// A remote builder is a buildkitd listening on TLS loopback with
// certificates made here; twinforge must reach it with mutual TLS only.
func TestRemoteTLS(t *testing.T) {
	dir := t.TempDir()
	pki := testenv.NewPKI(t, dir)
	port := testenv.FreePort(t)
	testenv.StartDaemon(t, isolation.WithTLSListener("127.0.0.1:"+port, pki.ServerCert, pki.ServerKey, pki.CA))
	addr := "tcp://127.0.0.1:" + port
	ctx := context.Background()

	r, err := isolation.Remote(ctx, "build", addr, &isolation.TLS{CACert: pki.CA, Cert: pki.ClientCert, Key: pki.ClientKey})
	if err != nil {
		t.Fatal(err)
	}
	if info := r.Info(); !info.Remote || info.BuildKitVersion == "" {
		t.Errorf("remote info: %+v", info)
	}
	c, err := r.Client(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.ListWorkers(ctx); err != nil {
		t.Fatal(err)
	}
	c.Close()

	other := testenv.NewPKI(t, t.TempDir())
	bad := []struct {
		name string
		tls  *isolation.TLS
		want string
	}{
		{"no TLS", nil, "needs --tlscacert"},
		{"untrusted server", &isolation.TLS{CACert: other.CA, Cert: pki.ClientCert, Key: pki.ClientKey}, "does not answer"},
		{"client unknown to server", &isolation.TLS{CACert: pki.CA, Cert: other.ClientCert, Key: other.ClientKey}, "does not answer"},
		{"missing file", &isolation.TLS{CACert: filepath.Join(dir, "nope.pem"), Cert: pki.ClientCert, Key: pki.ClientKey}, "nope.pem"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			_, err := isolation.Remote(ctx, "build", addr, tt.tls)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tt.want)
			}
		})
	}
	if _, err := isolation.Remote(ctx, "build", "http://127.0.0.1:1", nil); err == nil {
		t.Error("an http:// builder address was accepted")
	}
}

func daemonPid(t *testing.T, dir string) int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "pid"))
	if err != nil {
		t.Fatal(err)
	}
	pid, _ := strconv.Atoi(string(b))
	return pid
}

func assertGone(t *testing.T, pid int, dir string) {
	t.Helper()
	if err := syscall.Kill(pid, 0); err == nil {
		t.Errorf("buildkitd %d still running", pid)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("state %s still there: %v", dir, err)
	}
	assertNoMounts(t, dir)
}

func assertNoMounts(t *testing.T, dir string) {
	t.Helper()
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), dir) {
		t.Errorf("mounts left under %s", dir)
	}
}

func write(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
}

// Daemons started at once in one state directory reap none of each
// other's state, whatever moment of set-up each is caught in.
func TestConcurrentStartsKeepEachOther(t *testing.T) {
	testenv.NeedDaemon(t)
	state := t.TempDir()
	const n = 4
	daemons := make([]isolation.Daemon, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			daemons[i], errs[i] = isolation.Start(context.Background(), isolation.WithStateDir(state),
				isolation.WithBuildkitd(testenv.Binary(t, "buildkitd")))
		}()
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		defer daemons[i].Close()
	}
	for _, d := range daemons {
		if _, err := os.Stat(filepath.Join(d.Info().StateDir, "tmp")); err != nil {
			t.Errorf("a concurrent start removed part of %s: %v", d.Info().StateDir, err)
		}
		if err := d.Check(context.Background()); err != nil {
			t.Errorf("daemon stopped answering: %v", err)
		}
	}
}

// State whose owner holds its lock is never reaped, even with a pid file
// that cannot be read yet.
func TestLockedStateIsNotReaped(t *testing.T) {
	state := t.TempDir()
	dir := filepath.Join(state, "daemons", "build-busy")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(dir, "pid"), "")
	f, err := os.OpenFile(filepath.Join(dir, "lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		t.Fatal(err)
	}
	isolation.ReapStale(state, testenv.Logger(t))
	if _, err := os.Stat(dir); err != nil {
		t.Fatalf("state with its lock held was reaped: %v", err)
	}
	// Once the owner is gone (its lock released) and no daemon runs, it is.
	f.Close()
	isolation.ReapStale(state, testenv.Logger(t))
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("abandoned state was kept: %v", err)
	}
}

// A daemon on a file system of its own gets a tmpfs, or an XFS image when
// it keeps a cache; neither stays mounted after Close, and the cache is
// there again for the next daemon.
func TestOwnFileSystem(t *testing.T) {
	testenv.NeedDaemon(t)
	state := t.TempDir()
	start := func(opts ...isolation.Option) isolation.Daemon {
		t.Helper()
		d, err := isolation.Start(context.Background(), append([]isolation.Option{isolation.WithStateDir(state), isolation.WithName("rebuild"),
			isolation.WithSnapshotter("native"), isolation.WithOwnFileSystem(),
			isolation.WithBuildkitd(testenv.Binary(t, "buildkitd")), isolation.WithLogger(testenv.Logger(t))}, opts...)...)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	mounted := func() []string {
		raw, _ := os.ReadFile("/proc/self/mounts")
		var out []string
		for _, l := range strings.Split(string(raw), "\n") {
			if strings.Contains(l, state) {
				out = append(out, l)
			}
		}
		return out
	}
	d := start()
	if got := d.Info().RootFS; got != "tmpfs" {
		d.Close()
		t.Fatalf("root on %q, want a tmpfs of its own", got)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if m := mounted(); len(m) > 0 {
		t.Fatalf("still mounted after Close: %v", m)
	}

	const scope = "https://github.com/example/ownfs"
	for i, want := range []string{isolation.CacheCold, isolation.CacheWarm} {
		d := start(isolation.WithCache(scope))
		info := d.Info()
		if info.RootFS != "xfs" || info.CacheState() != want {
			d.Close()
			t.Fatalf("cached daemon %d: root on %q, cache %s; want an XFS image, %s", i, info.RootFS, info.CacheState(), want)
		}
		if err := d.Close(); err != nil {
			t.Fatal(err)
		}
		if m := mounted(); len(m) > 0 {
			t.Fatalf("still mounted after Close: %v", m)
		}
	}
}
