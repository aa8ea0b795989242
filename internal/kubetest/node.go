package kubetest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/moby/sys/mountinfo"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/twinforge/twinforge/internal/offline"
	"github.com/twinforge/twinforge/internal/testenv"
)

// NodeName is the name the node of StartNode registers as. A Cluster has
// at most one node: the API server knows this node's credentials only.
const NodeName = "kubetest-node"

// PauseImage is the image of every pod's sandbox (the container holding the
// pod's namespaces): Debian's static busybox sleeping, imported into
// containerd at start, so that no registry is asked for it.
const PauseImage = "kubetest.invalid/pause:1"

// nodeReadyTimeout bounds the wait for the node to register and be Ready.
const nodeReadyTimeout = 3 * time.Minute

// The kernel settings the kubelet insists on (it writes them unless
// protectKernelDefaults, with which it refuses to start). They are global,
// not namespaced: the node's mount namespace shows the kubelet these values
// over /proc/sys instead, so the machine's own stay as they are.
var kubeletSysctls = map[string]string{
	"vm/overcommit_memory":      "1",
	"vm/panic_on_oom":           "0",
	"kernel/panic":              "10",
	"kernel/panic_on_oops":      "1",
	"kernel/keys/root_maxkeys":  "1000000",
	"kernel/keys/root_maxbytes": "25000000",
}

// Node is a Kubernetes node registered to a Cluster: containerd with runc
// from Debian and a kubelet, in a mount namespace of their own, plus the
// cluster-side components that turn workloads into running pods
// (kube-controller-manager with the workload controllers, kube-scheduler).
// Pods get an address in their own network namespace on a bridge of the
// node's own, without a gateway: pods of the node reach one another, nothing
// else reaches them or is reached (no address on the bridge, no forwarding,
// no masquerading, no kube-proxy); hostNetwork pods share the host's
// loopback. The bridge is removed when the node stops.
//
// Images are pulled by containerd from the registries UseRegistry names,
// over plain HTTP on loopback.
type Node struct {
	// Name is the node's name, NodeName.
	Name string
	// Dir holds the node's state and the logs containerd.log, kubelet.log,
	// kube-scheduler.log and kube-controller-manager.log.
	Dir string
	// CRIEndpoint is containerd's CRI socket, unix:///....
	CRIEndpoint string
	// ContainerdSocket is the path of containerd's socket (for ctr).
	ContainerdSocket string
	// CgroupRoot is the cgroup (in every hierarchy) the node's pods run
	// under, unique to this node.
	CgroupRoot string
	// Bridge is the network bridge, in the host's network namespace, the
	// pods' interfaces are attached to; unique to this node.
	Bridge string

	cluster  *Cluster
	ctr      string
	certsDir string
	holder   *process
	procs    []*process // in start order
	mntNS    string     // the node's mount namespace, "mnt:[INODE]"
	hostNet  string     // the host's network namespace, "net:[INODE]"
	podNets  map[string]bool
	cgroups  []string // the CgroupRoot directories made, one per hierarchy
	stopped  bool
}

// StartNode starts a node for c and returns once it is Ready. It is
// stopped at cleanup, and the test fails if any of its processes, mounts,
// cgroups or pod network namespaces is left. It needs root (mounts and
// cgroups) and `make node-tools`; it is skipped under -short.
func StartNode(t testing.TB, c *Cluster) *Node {
	t.Helper()
	if testing.Short() {
		t.Skip("needs containerd, runc and a kubelet; skipped with -short")
	}
	if os.Geteuid() != 0 {
		t.Fatal("the node needs root: it mounts file systems and makes cgroups")
	}
	if c.node != nil {
		t.Fatal("the cluster has a node already")
	}
	bins := map[string]string{}
	for _, b := range []string{"containerd", "containerd-shim-runc-v2", "ctr", "kubelet", "kube-scheduler", "kube-controller-manager"} {
		bins[b] = Binary(t, b)
	}
	cniDir := filepath.Dir(Binary(t, filepath.Join("cni", "bridge")))
	runc, err := exec.LookPath("runc")
	if err != nil {
		t.Fatal("runc not found: run `make apt-deps` (Debian's runc)")
	}
	busybox := offline.DefaultBusybox
	if _, err := os.Stat(busybox); err != nil {
		t.Fatalf("%s: %v: run `make apt-deps` (Debian's busybox-static)", busybox, err)
	}

	suffix := randomHex(t, 4)
	n := &Node{
		Name: NodeName, Dir: t.TempDir(), cluster: c, ctr: bins["ctr"],
		CgroupRoot: "/twinforge-kubetest-" + suffix, Bridge: "tfk" + suffix, podNets: map[string]bool{},
	}
	c.node = n
	t.Cleanup(func() { n.stop(t) })
	n.hostNet = nsOf(os.Getpid(), "net")

	n.makeCgroupRoot(t)
	n.startNamespace(t)
	n.startContainerd(t, filepath.Dir(bins["containerd-shim-runc-v2"]), runc, cniDir)
	n.importPause(t, busybox)
	n.startControllers(t, bins["kube-controller-manager"], bins["kube-scheduler"])
	n.startKubelet(t, bins["kubelet"])
	return n
}

// UseRegistry lets the node pull from the registry at host
// ("127.0.0.1:PORT") over plain HTTP. containerd reads the setting at every
// pull, so it may be called while pods run.
func (n *Node) UseRegistry(t testing.TB, host string) {
	t.Helper()
	dir := filepath.Join(n.certsDir, host)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "hosts.toml"), fmt.Sprintf(`server = "http://%[1]s"

[host."http://%[1]s"]
  capabilities = ["pull", "resolve"]
`, host))
}

// Ctr runs bin/ctr against the node's containerd, in the CRI's namespace
// k8s.io, and returns its combined output.
func (n *Node) Ctr(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, n.ctr, append([]string{"--address", n.ContainerdSocket, "--namespace", "k8s.io"}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("ctr %s: %w: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return string(out), nil
}

// CRI connects to containerd's CRI runtime service; the connection is
// closed at cleanup.
func (n *Node) CRI(t testing.TB) runtimeapi.RuntimeServiceClient {
	t.Helper()
	conn, err := grpc.NewClient("unix://"+n.ContainerdSocket, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return runtimeapi.NewRuntimeServiceClient(conn)
}

// Logs returns the end of a component's log ("containerd", "kubelet",
// "kube-scheduler", "kube-controller-manager").
func (n *Node) Logs(component string) string {
	data, _ := os.ReadFile(filepath.Join(n.Dir, component+".log"))
	if len(data) > 16384 {
		data = data[len(data)-16384:]
	}
	return string(data)
}

// makeCgroupRoot makes CgroupRoot in every cgroup hierarchy: the kubelet
// refuses a root that does not exist, and a root of its own keeps this
// node's pods apart from any other node's on the machine.
func (n *Node) makeCgroupRoot(t testing.TB) {
	t.Helper()
	mounts, err := cgroupMounts()
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range mounts {
		dir := filepath.Join(m, n.CgroupRoot)
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatalf("making the node's cgroup: %v", err)
		}
		n.cgroups = append(n.cgroups, dir)
		// A cpuset cgroup runs nothing until it has CPUs and memory nodes.
		for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
			if v, err := os.ReadFile(filepath.Join(m, f)); err == nil {
				if err := os.WriteFile(filepath.Join(dir, f), v, 0o644); err != nil {
					t.Fatalf("setting %s of the node's cgroup: %v", f, err)
				}
			}
		}
	}
}

// startNamespace starts the process holding the node's mount namespace,
// where containerd, its shims and the kubelet run. Every mount they make
// (image snapshots, pod volumes, network namespace files) lives there and
// goes with it. The namespace shows them node-owned directories at /run,
// /var/log and /var/lib/cni, where they keep sockets, logs and CNI results
// whatever their configuration says, and the kubelet's kernel settings.
func (n *Node) startNamespace(t testing.TB) {
	t.Helper()
	ns := filepath.Join(n.Dir, "ns")
	var script strings.Builder
	script.WriteString("set -e\n")
	for _, p := range []string{"/run", "/var/log", "/var/lib/cni"} {
		own := filepath.Join(ns, "root", p)
		if err := os.MkdirAll(own, 0o755); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&script, "mkdir -p %s\nmount --bind %s %s\n", p, own, p)
	}
	keys := slices.Sorted(func(yield func(string) bool) {
		for k := range kubeletSysctls {
			if !yield(k) {
				return
			}
		}
	})
	for _, k := range keys {
		f := filepath.Join(ns, "sysctl", strings.ReplaceAll(k, "/", "."))
		if err := os.MkdirAll(filepath.Dir(f), 0o755); err != nil {
			t.Fatal(err)
		}
		writeFile(t, f, kubeletSysctls[k]+"\n")
		fmt.Fprintf(&script, "mount --bind -o ro %s /proc/sys/%s\n", f, k)
	}
	ready := filepath.Join(ns, "ready")
	fmt.Fprintf(&script, "touch %s\nexec sleep 2147483647\n", ready)
	writeFile(t, filepath.Join(ns, "setup.sh"), script.String())

	logf, err := os.Create(filepath.Join(n.Dir, "namespace.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("/bin/sh", filepath.Join(ns, "setup.sh"))
	cmd.Stdout, cmd.Stderr = logf, logf
	// Unshareflags CLONE_NEWNS also makes every mount private first, so
	// nothing mounted inside reaches the host.
	cmd.SysProcAttr = &syscall.SysProcAttr{Unshareflags: syscall.CLONE_NEWNS, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		t.Fatalf("starting the node's mount namespace: %v", err)
	}
	n.holder = &process{name: "namespace", cmd: cmd, done: make(chan struct{})}
	go func() {
		n.holder.err = cmd.Wait()
		logf.Close()
		close(n.holder.done)
	}()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := os.Stat(ready); err == nil {
			break
		}
		select {
		case <-n.holder.done:
			t.Fatalf("the node's mount namespace failed: %v\n%s", n.holder.err, n.Logs("namespace"))
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("the node's mount namespace is not ready after 30s\n%s", n.Logs("namespace"))
		}
	}
	n.mntNS = nsOf(cmd.Process.Pid, "mnt")
	if n.mntNS == "" || n.mntNS == nsOf(os.Getpid(), "mnt") {
		t.Fatalf("the node's mount namespace %q is not a new one", n.mntNS)
	}
}

// startInNamespace starts a node process in the node's mount namespace.
func (n *Node) startInNamespace(t testing.TB, name string, env []string, bin string, args ...string) *process {
	t.Helper()
	nsArgs := append([]string{fmt.Sprintf("--mount=/proc/%d/ns/mnt", n.holder.cmd.Process.Pid), "--", bin}, args...)
	return n.start(t, name, env, "nsenter", nsArgs...)
}

func (n *Node) start(t testing.TB, name string, env []string, bin string, args ...string) *process {
	t.Helper()
	logf, err := os.Create(filepath.Join(n.Dir, name+".log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		t.Fatalf("starting %s: %v", name, err)
	}
	p := &process{name: name, cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		logf.Close()
		close(p.done)
	}()
	n.procs = append(n.procs, p)
	return p
}

func (n *Node) startContainerd(t testing.TB, shimDir, runc, cniBin string) {
	t.Helper()
	d := filepath.Join(n.Dir, "containerd")
	n.ContainerdSocket = filepath.Join(d, "containerd.sock")
	n.CRIEndpoint = "unix://" + n.ContainerdSocket
	n.certsDir = filepath.Join(d, "certs.d")
	cniConf := filepath.Join(d, "net.d")
	for _, dir := range []string{n.certsDir, cniConf} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	writeFile(t, filepath.Join(cniConf, "10-kubetest.conflist"), fmt.Sprintf(`{
  "cniVersion": "1.0.0",
  "name": "kubetest",
  "plugins": [{
    "type": "bridge",
    "bridge": %q,
    "isGateway": false,
    "ipMasq": false,
    "hairpinMode": false,
    "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.244.0.0/24"}]], "dataDir": %q}
  }]
}
`, n.Bridge, filepath.Join(d, "ipam")))
	config := filepath.Join(d, "config.toml")
	writeFile(t, config, fmt.Sprintf(`version = 3
root = %[1]q
state = %[2]q

[grpc]
  address = %[3]q

[ttrpc]
  address = %[4]q

[plugins."io.containerd.cri.v1.runtime"]
  enable_selinux = false
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  cdi_spec_dirs = []
  [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc]
    runtime_type = "io.containerd.runc.v2"
    [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc.options]
      BinaryName = %[5]q
      SystemdCgroup = false
  [plugins."io.containerd.cri.v1.runtime".cni]
    bin_dirs = [%[6]q]
    conf_dir = %[7]q

[plugins."io.containerd.cri.v1.images"]
  snapshotter = "overlayfs"
  [plugins."io.containerd.cri.v1.images".pinned_images]
    sandbox = %[8]q
  [plugins."io.containerd.cri.v1.images".registry]
    config_path = %[9]q

[plugins."io.containerd.grpc.v1.cri"]
  disable_tcp_service = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
`, filepath.Join(d, "root"), filepath.Join(d, "state"), n.ContainerdSocket, n.ContainerdSocket+".ttrpc",
		runc, cniBin, cniConf, PauseImage, n.certsDir))

	env := []string{"PATH=" + shimDir + ":" + os.Getenv("PATH"), "OTEL_TRACES_EXPORTER=none"}
	p := n.startInNamespace(t, "containerd", env, Binary(t, "containerd"), "--config", config, "--log-level", "info")
	cri := n.CRI(t)
	deadline := time.Now().Add(readyTimeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		st, err := cri.Status(ctx, &runtimeapi.StatusRequest{})
		cancel()
		if err == nil && conditionTrue(st, runtimeapi.RuntimeReady) && conditionTrue(st, runtimeapi.NetworkReady) {
			return
		}
		select {
		case <-p.done:
			t.Fatalf("containerd exited before it was ready: %v\n%s", p.err, n.Logs("containerd"))
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("containerd not ready after %s (last: %v %v)\n%s", readyTimeout, st, err, n.Logs("containerd"))
		}
	}
}

func conditionTrue(st *runtimeapi.StatusResponse, typ string) bool {
	for _, c := range st.GetStatus().GetConditions() {
		if c.Type == typ {
			return c.Status
		}
	}
	return false
}

// importPause imports PauseImage into containerd and unpacks it.
func (n *Node) importPause(t testing.TB, busybox string) {
	t.Helper()
	img, err := offline.Base(busybox)
	if err != nil {
		t.Fatal(err)
	}
	img, err = withEntrypoint(img, []string{"/bin/busybox", "sleep", "2147483647"})
	if err != nil {
		t.Fatal(err)
	}
	n.ImportImage(t, PauseImage, img)
}

// ImportImage imports img into the node's containerd as ref, unpacked for
// the CRI, replacing any image of that name: the way to put an image on the
// node behind the registry's back.
func (n *Node) ImportImage(t testing.TB, ref string, img v1.Image) {
	t.Helper()
	tag, err := name.NewTag(ref, name.WeakValidation)
	if err != nil {
		// A name with a digest: imported under a placeholder tag, then
		// named ref.
		tag, err = name.NewTag("kubetest.invalid/import:"+randomHex(t, 4), name.WeakValidation)
		if err != nil {
			t.Fatal(err)
		}
	}
	tar := filepath.Join(n.Dir, "import-"+randomHex(t, 4)+".tar")
	if err := tarball.WriteToFile(tar, tag, img); err != nil {
		t.Fatal(err)
	}
	defer os.Remove(tar)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	platform := "linux/" + runtime.GOARCH
	if _, err := n.Ctr(ctx, "images", "import", "--platform", platform, "--snapshotter", "overlayfs", "--local", tar); err != nil {
		t.Fatal(err)
	}
	imported := tag.Name()
	if imported == ref {
		return
	}
	if _, err := n.Ctr(ctx, "images", "tag", "--force", imported, ref); err != nil {
		t.Fatal(err)
	}
	if _, err := n.Ctr(ctx, "images", "rm", imported); err != nil {
		t.Fatal(err)
	}
}

func withEntrypoint(img v1.Image, entrypoint []string) (v1.Image, error) {
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cfg := cf.Config
	cfg.Entrypoint, cfg.Cmd = entrypoint, nil
	return mutate.Config(img, cfg)
}

// startControllers runs kube-controller-manager (the controllers that make
// pods of workloads, evaluate disruption budgets, collect garbage and lift
// the not-ready taint the kubelet registers the node with) and
// kube-scheduler, both without leader election and without serving.
func (n *Node) startControllers(t testing.TB, controllerManager, scheduler string) {
	t.Helper()
	c := n.cluster
	cmConfig := c.componentKubeconfig(t, "kube-controller-manager")
	n.start(t, "kube-controller-manager", nil, controllerManager,
		"--kubeconfig="+cmConfig,
		"--leader-elect=false",
		"--secure-port=0",
		"--controllers=deployment,replicaset,daemonset,statefulset,job,cronjob,disruption,garbagecollector,podgc,namespace,nodelifecycle",
		"--concurrent-deployment-syncs=2",
		"--v=1",
	)
	n.start(t, "kube-scheduler", nil, scheduler,
		"--kubeconfig="+c.componentKubeconfig(t, "kube-scheduler"),
		"--leader-elect=false",
		"--secure-port=0",
		"--v=1",
	)
}

func (n *Node) startKubelet(t testing.TB, kubelet string) {
	t.Helper()
	c := n.cluster
	d := filepath.Join(n.Dir, "kubelet")
	if err := os.MkdirAll(d, 0o755); err != nil {
		t.Fatal(err)
	}
	// The node's address may not be loopback (the kubelet refuses it), and
	// the API server reaches the kubelet there (kubectl logs, exec): the
	// kubelet listens on the host's first global IPv4 address, with a
	// self-signed certificate, and answers only clients it authenticates.
	nodeIP := hostIPv4(t)
	for attempt := 1; ; attempt++ {
		port, healthz := testenv.FreePort(t), testenv.FreePort(t)
		config := filepath.Join(d, "config.yaml")
		writeFile(t, config, fmt.Sprintf(`apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: %s
port: %s
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: %s
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: %s}
authorization:
  mode: Webhook
containerRuntimeEndpoint: %s
cgroupDriver: cgroupfs
cgroupRoot: %s
failCgroupV1: false
failSwapOn: false
podLogsDir: %s
volumePluginDir: %s
registerNode: true
rotateCertificates: false
serializeImagePulls: false
evictionHard:
  memory.available: 100Mi
  nodefs.available: 1%%
  imagefs.available: 1%%
shutdownGracePeriod: 0s
`, nodeIP, port, healthz, c.pki.CA, n.CRIEndpoint, n.CgroupRoot,
			filepath.Join(d, "pod-logs"), filepath.Join(d, "volume-plugins")))
		p := n.startInNamespace(t, "kubelet", nil, kubelet,
			"--config="+config,
			"--kubeconfig="+c.componentKubeconfig(t, "kubelet"),
			"--root-dir="+filepath.Join(d, "root"),
			"--cert-dir="+filepath.Join(d, "pki"),
			"--hostname-override="+n.Name,
			"--node-ip="+nodeIP,
			"--v=2",
		)
		err := c.waitReady(p, "http://127.0.0.1:"+healthz+"/healthz", nil, "")
		if err == nil {
			break
		}
		if logs := n.Logs("kubelet"); attempt < 3 && strings.Contains(logs, "address already in use") {
			n.procs = slices.DeleteFunc(n.procs, func(q *process) bool { return q == p })
			continue
		}
		t.Fatalf("%v\n%s", err, n.Logs("kubelet"))
	}

	// Ready: registered, runtime and network up.
	ctx, cancel := context.WithTimeout(context.Background(), nodeReadyTimeout)
	defer cancel()
	// The API server reaches the kubelet (kubectl logs, exec) with the
	// client certificate of the cluster's PKI.
	if _, _, err := c.Kubectl(ctx, nil, "create", "clusterrolebinding", "kubetest-apiserver-kubelet",
		"--clusterrole=system:kubelet-api-admin", "--user=client"); err != nil {
		t.Fatal(err)
	}
	for {
		out, _, err := c.Kubectl(ctx, nil, "get", "node", n.Name, "-o", `jsonpath={.status.conditions[?(@.type=="Ready")].status}`)
		if err == nil && out == "True" {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("node %s not Ready after %s (%q, %v)\n%s", n.Name, nodeReadyTimeout, out, err, n.Logs("kubelet"))
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// Stop stops the node now rather than at cleanup, and fails the test for
// anything left behind (Leftovers). Stopping twice does nothing.
func (n *Node) Stop(t testing.TB) {
	t.Helper()
	n.stop(t)
}

// stop ends the node and everything it started, then fails the test for
// anything left behind.
func (n *Node) stop(t testing.TB) {
	if n.stopped {
		return
	}
	n.stopped = true
	// Pod network namespaces, to check that they are gone afterwards.
	for _, pid := range n.namespacePids() {
		if net := nsOf(pid, "net"); net != "" && net != n.hostNet {
			n.podNets[net] = true
		}
	}
	stopProc := func(p *process) {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.done
			t.Logf("%s had to be killed", p.name)
		}
	}
	var containerd *process
	for i := len(n.procs) - 1; i >= 0; i-- {
		p := n.procs[i]
		if p.name == "containerd" {
			containerd = p
			continue
		}
		stopProc(p)
	}
	// Every pod sandbox through the CRI: containerd stops the containers,
	// releases the addresses and removes the network namespaces.
	if containerd != nil {
		if err := n.removeSandboxes(); err != nil {
			t.Logf("removing the pod sandboxes: %v", err)
		}
		stopProc(containerd)
	}
	n.procs = nil
	// The runc shims outlive containerd by design; any left is killed.
	for _, pid := range n.namespacePids() {
		if n.holder != nil && pid == n.holder.cmd.Process.Pid {
			continue
		}
		t.Logf("killing process %d left in the node's namespace: %s", pid, cmdline(pid))
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	if n.holder != nil {
		_ = n.holder.cmd.Process.Kill()
		<-n.holder.done
		n.holder = nil
	}
	n.removeCgroups(t)
	if _, err := net.InterfaceByName(n.Bridge); err == nil {
		if out, err := exec.Command("ip", "link", "delete", n.Bridge).CombinedOutput(); err != nil {
			t.Logf("removing the bridge %s: %v: %s", n.Bridge, err, out)
		}
	}
	for _, l := range n.Leftovers() {
		t.Errorf("left behind by the node: %s", l)
	}
	n.cluster.node = nil
}

// removeSandboxes stops and removes every pod sandbox.
func (n *Node) removeSandboxes() error {
	conn, err := grpc.NewClient("unix://"+n.ContainerdSocket, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer conn.Close()
	cri := runtimeapi.NewRuntimeServiceClient(conn)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	list, err := cri.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{})
	if err != nil {
		return err
	}
	var errs []string
	for _, s := range list.Items {
		if _, err := cri.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: s.Id}); err != nil {
			errs = append(errs, err.Error())
		}
		if _, err := cri.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: s.Id}); err != nil {
			errs = append(errs, err.Error())
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return nil
}

// removeCgroups removes the node's cgroups, deepest first. They are empty
// once every process of the node has exited.
func (n *Node) removeCgroups(t testing.TB) {
	for _, root := range n.cgroups {
		var dirs []string
		_ = filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, p)
			}
			return nil
		})
		for i := len(dirs) - 1; i >= 0; i-- {
			// A cgroup whose last process just died can take a moment to
			// be removable.
			for try := 0; ; try++ {
				err := syscall.Rmdir(dirs[i])
				if err == nil || err == syscall.ENOENT || try == 50 {
					if err != nil && err != syscall.ENOENT {
						t.Logf("removing cgroup %s: %v", dirs[i], err)
					}
					break
				}
				time.Sleep(20 * time.Millisecond)
			}
		}
	}
}

// Leftovers lists what of the node is still on the machine: processes in
// its mount namespace or in a pod's network namespace, mounts under its
// directory, its cgroups, its bridge. Empty after a clean stop.
func (n *Node) Leftovers() []string {
	var out []string
	pids, _ := allPids()
	for _, pid := range pids {
		if n.mntNS != "" && nsOf(pid, "mnt") == n.mntNS {
			out = append(out, fmt.Sprintf("process %d in the node's mount namespace: %s", pid, cmdline(pid)))
			continue
		}
		if net := nsOf(pid, "net"); n.podNets[net] {
			out = append(out, fmt.Sprintf("process %d in a pod's network namespace %s: %s", pid, net, cmdline(pid)))
		}
	}
	if mounts, err := mountinfo.GetMounts(nil); err == nil {
		for _, m := range mounts {
			if strings.HasPrefix(m.Mountpoint, n.Dir+"/") || m.Mountpoint == n.Dir {
				out = append(out, "mount "+m.Mountpoint)
			}
			if n.podNets[strings.TrimPrefix(m.Root, "/")] {
				out = append(out, fmt.Sprintf("mount of a pod's network namespace: %s at %s", m.Root, m.Mountpoint))
			}
		}
	}
	for _, dir := range n.cgroups {
		if _, err := os.Stat(dir); err == nil {
			out = append(out, "cgroup "+dir)
		}
	}
	if _, err := net.InterfaceByName(n.Bridge); err == nil {
		out = append(out, "network interface "+n.Bridge)
	}
	return out
}

// PodNetworkNamespaces are the network namespaces of the node's pods seen
// when it stopped, "net:[INODE]".
func (n *Node) PodNetworkNamespaces() []string {
	return slices.Sorted(func(yield func(string) bool) {
		for k := range n.podNets {
			if !yield(k) {
				return
			}
		}
	})
}

// namespacePids are the processes of the node: those in its mount
// namespace (containerd, its shims, the kubelet) and their descendants (the
// pods' processes, which runc puts in mount namespaces of their own).
func (n *Node) namespacePids() []int {
	if n.mntNS == "" {
		return nil
	}
	pids, _ := allPids()
	children := map[int][]int{}
	var out []int
	for _, pid := range pids {
		if ppid := parentPid(pid); ppid > 0 {
			children[ppid] = append(children[ppid], pid)
		}
		if nsOf(pid, "mnt") == n.mntNS {
			out = append(out, pid)
		}
	}
	seen := map[int]bool{}
	for i := 0; i < len(out); i++ {
		seen[out[i]] = true
		for _, c := range children[out[i]] {
			if !seen[c] {
				seen[c] = true
				out = append(out, c)
			}
		}
	}
	return out
}

// parentPid is a process's parent, 0 when it is gone.
func parentPid(pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// PID (COMM) STATE PPID ...: COMM may hold spaces and parentheses.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 2 {
		return 0
	}
	ppid, _ := strconv.Atoi(f[1])
	return ppid
}

func allPids() ([]int, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	var pids []int
	for _, e := range entries {
		if pid, err := strconv.Atoi(e.Name()); err == nil {
			pids = append(pids, pid)
		}
	}
	return pids, nil
}

// nsOf is a process's namespace of a kind ("mnt", "net"): "mnt:[INODE]",
// or "" when the process is gone.
func nsOf(pid int, kind string) string {
	l, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/%s", pid, kind))
	if err != nil {
		return ""
	}
	return l
}

func cmdline(pid int) string {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	return strings.TrimSpace(strings.ReplaceAll(string(b), "\x00", " "))
}

// cgroupMounts are the mount points of the cgroup hierarchies, v1 and v2.
func cgroupMounts() ([]string, error) {
	mounts, err := mountinfo.GetMounts(mountinfo.FSTypeFilter("cgroup", "cgroup2"))
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(mounts))
	for _, m := range mounts {
		out = append(out, m.Mountpoint)
	}
	return out, nil
}

func randomHex(t testing.TB, n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// WaitPodRunning waits until a pod of namespace matching selector is
// Running with every container ready, and returns its name. It fails the
// test after nodeReadyTimeout, with the pod's state and the kubelet's log.
func WaitPodRunning(t testing.TB, c *Cluster, namespace, selector string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), nodeReadyTimeout)
	defer cancel()
	var last string
	for {
		out, _, err := c.Kubectl(ctx, nil, "get", "pods", "-n", namespace, "-l", selector, "-o",
			`jsonpath={range .items[*]}{.metadata.name} {.status.phase} {.status.containerStatuses[*].ready}{"\n"}{end}`)
		if err == nil {
			last = out
			for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
				f := strings.Fields(line)
				if len(f) >= 3 && f[1] == "Running" && !slices.Contains(f[2:], "false") {
					return f[0]
				}
			}
		}
		select {
		case <-ctx.Done():
			desc, _, _ := c.Kubectl(context.Background(), nil, "describe", "pods", "-n", namespace, "-l", selector)
			logs := ""
			if c.node != nil {
				for _, comp := range []string{"kube-controller-manager", "kube-scheduler", "kubelet"} {
					logs += "--- " + comp + "\n" + c.node.Logs(comp) + "\n"
				}
			}
			t.Fatalf("no pod %s in %s Running after %s: %q, %v\n%s\n%s", selector, namespace, nodeReadyTimeout, last, err, desc, logs)
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// hostIPv4 is the host's first global unicast IPv4 address.
func hostIPv4(t testing.TB) string {
	t.Helper()
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok && ipn.IP.To4() != nil && ipn.IP.IsGlobalUnicast() {
			return ipn.IP.String()
		}
	}
	t.Fatal("the node needs a non-loopback IPv4 address: the kubelet refuses loopback node addresses")
	return ""
}
