package testenv

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twinforge/twinforge/isolation"
	"github.com/twinforge/twinforge/isolation/workercert"
)

// Host stands in for a machine of its own: a network namespace, joined to
// this one by a veth pair of its own /30 network, in which processes run
// with a UTS namespace and host name of their own. Its address is reached
// from here over TCP, and nothing of it is reachable any other way.
type Host struct {
	// Name is the host name processes on it see.
	Name string
	// NetNS is the network namespace's name (ip netns).
	NetNS string
	// IP is the host's address; HostIP this machine's end of the link.
	IP, HostIP string
	veth       string

	mu       sync.Mutex
	nextPort int
}

// NewHost makes a host named name, removed at cleanup. It needs root and
// the ip and unshare programs.
func NewHost(t testing.TB, name string) *Host {
	t.Helper()
	NeedDaemon(t)
	for _, p := range []string{"ip", "nsenter", "unshare"} {
		if _, err := exec.LookPath(p); err != nil {
			t.Fatalf("%s not found: install iproute2 and util-linux", p)
		}
	}
	id := randomID(t)
	h := &Host{Name: name, NetNS: "tfw-" + id, veth: "tfw" + id}
	hostIP, ip := freeSubnet(t)
	h.HostIP, h.IP = hostIP.String(), ip.String()
	run := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	run("netns", "add", h.NetNS)
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "delete", h.NetNS).Run() })
	run("link", "add", h.veth+"h", "type", "veth", "peer", "name", h.veth+"w")
	t.Cleanup(func() { _ = exec.Command("ip", "link", "delete", h.veth+"h").Run() })
	run("link", "set", h.veth+"w", "netns", h.NetNS)
	run("addr", "add", h.HostIP+"/30", "dev", h.veth+"h")
	run("link", "set", h.veth+"h", "up")
	run("-n", h.NetNS, "addr", "add", h.IP+"/30", "dev", h.veth+"w")
	run("-n", h.NetNS, "link", "set", h.veth+"w", "up")
	run("-n", h.NetNS, "link", "set", "lo", "up")
	return h
}

// Command is a command that runs on the host: in its network namespace,
// under its host name, as the first process of a PID namespace with a
// mount namespace of its own, so that everything it starts (mounts, build
// steps) ends when it does, as on a machine that stops. It joins the
// network namespace with nsenter, not `ip netns exec`, which would mount a
// sysfs of its own over /sys and hide the cgroup file systems runc needs.
func (h *Host) Command(name string, args ...string) *exec.Cmd {
	script := `hostname "$0" && exec "$@"`
	return exec.Command("nsenter", append([]string{"--net=/run/netns/" + h.NetNS,
		"unshare", "--uts", "--mount", "--propagation", "private", "--pid", "--fork", "--kill-child", "--mount-proc",
		"sh", "-c", script, h.Name, name}, args...)...)
}

func randomID(t testing.TB) string {
	b := make([]byte, 4)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

var subnetMu sync.Mutex

// freeSubnet picks a /30 of 10.128.0.0/9 that no interface here uses.
func freeSubnet(t testing.TB) (hostIP, ip net.IP) {
	t.Helper()
	subnetMu.Lock()
	defer subnetMu.Unlock()
	out, err := exec.Command("ip", "-4", "-o", "addr").Output()
	if err != nil {
		t.Fatalf("ip addr: %v", err)
	}
	for range 100 {
		n, err := rand.Int(rand.Reader, big.NewInt(1<<21))
		if err != nil {
			t.Fatal(err)
		}
		base := uint32(10)<<24 | 1<<23 | uint32(n.Int64())<<2
		a := net.IPv4(byte(base>>24), byte(base>>16), byte(base>>8), byte(base|1))
		b := net.IPv4(byte(base>>24), byte(base>>16), byte(base>>8), byte(base|2))
		prefix := fmt.Sprintf("%d.%d.%d.", byte(base>>24), byte(base>>16), byte(base>>8))
		if !bytes.Contains(out, []byte(" "+prefix)) {
			return a, b
		}
	}
	t.Fatal("no free /30 in 10.128.0.0/9")
	return nil, nil
}

// Worker is a buildkitd on a Host, listening on the host's address with
// mutual TLS only (no unix socket reachable from here), with a worker
// certificate of its own issued by a pool's CA.
type Worker struct {
	Host *Host
	// Name is the worker's certificate name; Identity its identity.
	Name, Identity string
	// Addr is tcp://IP:PORT.
	Addr string
	// Dir holds its state, configuration and log.
	Dir string
	cmd *exec.Cmd

	mu     sync.Mutex
	done   chan struct{}
	killed bool
}

// WorkerPool is a CA and the client certificate twinforge reaches its
// workers with.
type WorkerPool struct {
	CA     *workercert.CA
	Dir    string
	CAFile string
	// Client is the client certificate's files.
	ClientCert, ClientKey string
}

// NewWorkerPool makes the CA of a pool of workers and a client
// certificate, in a temporary directory.
func NewWorkerPool(t testing.TB, pool string) *WorkerPool {
	t.Helper()
	ca, err := workercert.NewCA(pool)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := ca.Write(dir); err != nil {
		t.Fatal(err)
	}
	client, err := ca.Client("twinforge")
	if err != nil {
		t.Fatal(err)
	}
	cert, key, err := client.Write(dir)
	if err != nil {
		t.Fatal(err)
	}
	return &WorkerPool{CA: ca, Dir: dir, CAFile: filepath.Join(dir, workercert.CAFile), ClientCert: cert, ClientKey: key}
}

// TLS is the client side of mutual TLS to w, expecting its identity.
func (p *WorkerPool) TLS(w *Worker) *isolation.TLS {
	return &isolation.TLS{CACert: p.CAFile, Cert: p.ClientCert, Key: p.ClientKey, Identity: w.Identity}
}

// StartWorker starts a buildkitd on h as worker name of pool p, configured
// as twinforge configures its daemons (loopback-only CNI network, no
// gateway frontend, no entitlements) unless extraArgs add to it, and waits
// until its port accepts connections. It is killed at cleanup.
func (h *Host) StartWorker(t testing.TB, p *WorkerPool, name string, extraArgs ...string) *Worker {
	t.Helper()
	issued, err := p.CA.Worker(name, h.IP)
	if err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "twinforge-worker-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	cert, key, err := issued.Write(dir)
	if err != nil {
		t.Fatal(err)
	}
	cni := ""
	for _, d := range []string{"/usr/lib/cni", "/opt/cni/bin"} {
		if _, err := os.Stat(filepath.Join(d, "loopback")); err == nil {
			cni = d
			break
		}
	}
	if cni == "" {
		t.Fatal("CNI loopback plugin not found: run `make deps`")
	}
	netConf := filepath.Join(dir, "loopback.conflist")
	if err := os.WriteFile(netConf, []byte(isolation.LoopbackNetwork()), 0o600); err != nil {
		t.Fatal(err)
	}
	config, err := isolation.DaemonConfig(netConf, cni)
	if err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(dir, "buildkitd.toml")
	if err := os.WriteFile(cfgPath, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	h.mu.Lock()
	if h.nextPort == 0 {
		h.nextPort = 1234
	}
	port := strconv.Itoa(h.nextPort)
	h.nextPort++
	h.mu.Unlock()
	args := append([]string{
		"--config", cfgPath,
		"--root", filepath.Join(dir, "root"),
		"--addr", "tcp://" + h.IP + ":" + port,
		"--tlscert", cert, "--tlskey", key, "--tlscacert", p.CAFile,
		"--oci-worker=true", "--containerd-worker=false",
		"--oci-worker-snapshotter", "overlayfs",
		"--oci-worker-gc=false",
		"--otel-socket-path", filepath.Join(dir, "otel.sock"),
		"--cdi-disabled",
	}, extraArgs...)
	logf, err := os.Create(filepath.Join(dir, "buildkitd.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	cmd := h.Command(Binary(t, "buildkitd"), args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir, "TMPDIR=" + dir}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting buildkitd on %s: %v", h.Name, err)
	}
	w := &Worker{Host: h, Name: name, Identity: issued.Identity, Addr: "tcp://" + h.IP + ":" + port, Dir: dir, cmd: cmd, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(w.done) }()
	t.Cleanup(func() { w.stop(t) })
	deadline := time.Now().Add(60 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", h.IP+":"+port, time.Second)
		if err == nil {
			c.Close()
			return w
		}
		select {
		case <-w.done:
			t.Fatalf("buildkitd on %s exited while starting: %s", h.Name, w.Log())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("buildkitd on %s did not listen within 60s: %s", h.Name, w.Log())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Log is the end of the worker's log.
func (w *Worker) Log() string {
	b, _ := os.ReadFile(filepath.Join(w.Dir, "buildkitd.log"))
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// Kill kills the worker's buildkitd at once, as a machine that dies.
func (w *Worker) Kill() {
	w.mu.Lock()
	w.killed = true
	w.mu.Unlock()
	_ = syscall.Kill(-w.cmd.Process.Pid, syscall.SIGKILL)
	<-w.done
}

// Pid is the worker's buildkitd process.
func (w *Worker) Pid() int { return w.cmd.Process.Pid }

func (w *Worker) stop(t testing.TB) {
	select {
	case <-w.done:
	default:
		// The process group holds unshare and buildkitd, the first process
		// of its PID namespace: when it exits, so does everything it ran.
		_ = syscall.Kill(-w.cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-w.done:
		case <-time.After(15 * time.Second):
			_ = syscall.Kill(-w.cmd.Process.Pid, syscall.SIGKILL)
			<-w.done
		}
	}
}
