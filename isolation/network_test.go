package isolation_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/moby/buildkit/client"

	"github.com/twinforge/twinforge/internal/testenv"
	"github.com/twinforge/twinforge/isolation"
)

// Every daemon twinforge starts gives its containers a network of loopback
// alone, says so in its worker label, and has no gateway frontend.
func TestDaemonHasNoNetwork(t *testing.T) {
	d := testenv.StartDaemon(t)
	c, err := d.Client(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ws, err := c.ListWorkers(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range ws {
		if got := w.Labels["org.mobyproject.buildkit.worker.network"]; got != "cni" {
			t.Errorf("worker %s network %q, want cni (loopback alone)", w.ID, got)
		}
	}
	cfg, err := os.ReadFile(filepath.Join(d.Info().StateDir, "buildkitd.toml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`networkMode = "cni"`, `[frontend."gateway.v0"]`, "enabled = false"} {
		if !strings.Contains(string(cfg), want) {
			t.Errorf("daemon configuration lacks %q:\n%s", want, cfg)
		}
	}
	// A gateway frontend cannot be asked for, whatever the options.
	_, err = c.Solve(t.Context(), nil, client.SolveOpt{Frontend: "gateway.v0", FrontendAttrs: map[string]string{"source": "example.test/frontend:1"}}, nil)
	if err == nil || !strings.Contains(err.Error(), "gateway.v0") {
		t.Errorf("a gateway.v0 solve: want it refused, got %v", err)
	}
}

// A daemon twinforge did not start is refused when its workers say their
// containers share the host's network (buildkitd's default): a frontend
// or any container but a RUN step would reach the build host.
func TestRemoteOnHostNetworkRefused(t *testing.T) {
	testenv.NeedDaemon(t)
	dir := t.TempDir()
	sock := filepath.Join(dir, "bk.sock")
	cfg := filepath.Join(dir, "buildkitd.toml")
	write(t, cfg, "")
	cmd := exec.Command(testenv.Binary(t, "buildkitd"), "--config", cfg, "--root", filepath.Join(dir, "root"), "--addr", "unix://"+sock,
		"--oci-worker=true", "--containerd-worker=false", "--oci-worker-gc=false", "--cdi-disabled", "--otel-socket-path", filepath.Join(dir, "otel.sock"))
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir, "TMPDIR=" + dir}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
		_ = exec.Command("umount", "-R", filepath.Join(dir, "root")).Run()
	})
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	for {
		_, err := isolation.Remote(ctx, "build", "unix://"+sock, nil)
		if errors.Is(err, isolation.ErrHostNetwork) {
			if !strings.Contains(err.Error(), `"host"`) {
				t.Errorf("the refusal does not say the network: %v", err)
			}
			return
		}
		if err == nil {
			t.Fatal("a builder on the host's network was accepted")
		}
		if ctx.Err() != nil {
			t.Fatalf("the daemon never answered: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Daemons get an allow-listed environment: never the tokens, passwords
// and proxies in twinforge's own.
func TestDaemonEnvironment(t *testing.T) {
	const secret = "tok-9c1b-never-in-a-daemon"
	for _, k := range []string{"SIGSTORE_ID_TOKEN", "TWINFORGE_IDENTITY_TOKEN", "COSIGN_PASSWORD", "ACTIONS_ID_TOKEN_REQUEST_TOKEN",
		"ACTIONS_ID_TOKEN_REQUEST_URL", "GITHUB_TOKEN", "AWS_SECRET_ACCESS_KEY", "HTTPS_PROXY", "BUILDKIT_NETWORK_BRIDGE_AUTO"} {
		t.Setenv(k, secret)
	}
	d := testenv.StartDaemon(t)
	env, err := os.ReadFile(filepath.Join("/proc", strings.TrimSpace(readFile(t, filepath.Join(d.Info().StateDir, "pid"))), "environ"))
	if err != nil {
		t.Fatal(err)
	}
	vars := strings.Split(strings.TrimRight(string(env), "\x00"), "\x00")
	names := map[string]bool{}
	for _, kv := range vars {
		k, _, _ := strings.Cut(kv, "=")
		names[k] = true
		if strings.Contains(kv, secret) {
			t.Errorf("the daemon inherited %s", k)
		}
	}
	for _, want := range []string{"PATH", "TMPDIR"} {
		if !names[want] {
			t.Errorf("the daemon has no %s (environment %v)", want, vars)
		}
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
