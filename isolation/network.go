package isolation

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/moby/buildkit/client"
)

// How a daemon keeps every container off the network.
//
// BuildKit v0.34's OCI worker has no "none" network mode: its modes are
// host, cni, bridge and auto (netproviders.Providers), and the default,
// auto, is the host's network unless a CNI configuration exists. RUN steps
// are cut off per build (force-network-mode=none), but containers that are
// not RUN steps get the worker's default: a gateway frontend's container,
// a container a client starts through the gateway API. So the daemon runs
// its worker in cni mode with a CNI network made of the loopback plugin
// alone: every container gets a network namespace of its own holding only
// lo, and the build host's services (its 127.0.0.1 included) are out of
// reach. The worker reports the mode as its
// org.mobyproject.buildkit.worker.network label, which Remote checks.
//
// The mode goes into the configuration file: buildkitd v0.34.2's
// --oci-cni-config-path flag reads another flag's value and is always
// empty.
const (
	cniNetworkName = "twinforge-loopback"
	cniConfigFile  = "loopback.conflist"
	// workerNetworkLabel is the worker label saying its default network.
	workerNetworkLabel = "org.mobyproject.buildkit.worker.network"
	// workerNetworkHost is that label on a worker whose containers share
	// the host's network.
	workerNetworkHost = "host"
	// workerHostnameLabel and workerSnapshotterLabel say the host name
	// of the daemon's machine (or pod) and its snapshotter.
	workerHostnameLabel    = "org.mobyproject.buildkit.worker.hostname"
	workerSnapshotterLabel = "org.mobyproject.buildkit.worker.snapshotter"
	// workerProcessModeLabel is "sandbox" for an OCI worker that gives
	// every step a PID namespace, "no-sandbox" for one that does not.
	workerProcessModeLabel = "org.mobyproject.buildkit.worker.oci.process-mode"
)

// cniPluginDirs are where CNI plugins are installed: Debian's
// containernetworking-plugins package, then the upstream default.
var cniPluginDirs = []string{"/usr/lib/cni", "/opt/cni/bin"}

// lookCNIPlugins finds the directory holding the CNI loopback plugin.
func lookCNIPlugins(explicit string) (string, error) {
	dirs := cniPluginDirs
	if explicit != "" {
		dirs = []string{explicit}
	}
	for _, d := range dirs {
		if fi, err := os.Stat(filepath.Join(d, "loopback")); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return d, nil
		}
	}
	return "", fmt.Errorf("%w: the CNI loopback plugin (looked in %s), which gives build containers a network of loopback alone: install it with `apt-get install containernetworking-plugins` (or run `make deps`)",
		ErrMissingBinary, strings.Join(dirs, ", "))
}

// writeConfig writes the daemon's configuration file cfg and the CNI
// network it names, both inside the daemon's state directory dir.
func writeConfig(dir, cfg, cniPlugins string) error {
	netDir := filepath.Join(dir, "cni")
	if err := os.MkdirAll(netDir, 0o700); err != nil {
		return fmt.Errorf("writing daemon configuration: %w", err)
	}
	netConf := filepath.Join(netDir, cniConfigFile)
	if err := os.WriteFile(netConf, []byte(LoopbackNetwork()), 0o600); err != nil {
		return fmt.Errorf("writing daemon network configuration: %w", err)
	}
	config, err := DaemonConfig(netConf, cniPlugins)
	if err != nil {
		return fmt.Errorf("writing daemon configuration: %w", err)
	}
	if err := os.WriteFile(cfg, []byte(config), 0o600); err != nil {
		return fmt.Errorf("writing daemon configuration: %w", err)
	}
	return nil
}

// LoopbackNetwork is the CNI network of the loopback plugin alone that
// every container of a twinforge daemon gets (a .conflist file).
func LoopbackNetwork() string {
	return `{"cniVersion": "1.0.0", "name": "` + cniNetworkName + `", "plugins": [{"type": "loopback"}]}` + "\n"
}

// DaemonConfig is the buildkitd.toml of a daemon that builds for
// twinforge: the OCI worker in cni mode on the network in cniConfigPath
// (LoopbackNetwork), with the CNI plugins in cniBinaryPath, and the
// gateway frontend off. twinforge's private daemons and the workers it
// deploys run with it; Remote checks what a worker reports of it.
func DaemonConfig(cniConfigPath, cniBinaryPath string) (string, error) {
	for _, p := range []string{cniConfigPath, cniBinaryPath} {
		if strings.ContainsAny(p, "\"\\\n\r\t") {
			return "", fmt.Errorf("path %q: quotes, backslashes and control characters are not supported", p)
		}
	}
	// The gateway frontend runs an image as the frontend: twinforge never
	// asks for it (builder pins the built-in Dockerfile frontend), and with
	// it off no option can.
	return `# buildkitd configuration written by twinforge for this daemon alone.
[worker.oci]
  networkMode = "cni"
  cniConfigPath = "` + cniConfigPath + `"
  cniBinaryPath = "` + cniBinaryPath + `"

[frontend."gateway.v0"]
  enabled = false
`, nil
}

// ErrHostNetwork is returned by Remote for a daemon whose workers run
// containers on the host's network.
var ErrHostNetwork = errors.New("build daemon runs containers on its host's network")

// checkWorkerNetwork refuses workers that say they give containers the
// host's network, or do not say what network they give. BuildKit reports
// the mode alone: whether a cni network reaches anything is the daemon
// operator's to configure (twinforge's own daemons use loopback alone).
func checkWorkerNetwork(addr string, workers []*client.WorkerInfo) error {
	if len(workers) == 0 {
		return fmt.Errorf("builder %s has no workers", addr)
	}
	for _, w := range workers {
		switch mode := w.Labels[workerNetworkLabel]; mode {
		case workerNetworkHost:
			return fmt.Errorf("%w: builder %s worker %s reports network %q: a frontend or any container that is not a RUN step would reach the build host's network; run it with a CNI network (buildkitd.toml [worker.oci] networkMode = \"cni\" with a loopback-only network), as twinforge's own daemons are", ErrHostNetwork, addr, w.ID, mode)
		case "":
			return fmt.Errorf("%w: builder %s worker %s does not report its network (label %s): it may be the host's", ErrHostNetwork, addr, w.ID, workerNetworkLabel)
		}
	}
	return nil
}

// checkProcessSandbox refuses OCI workers started with
// --oci-worker-no-process-sandbox: their steps share the daemon's PID
// namespace, see its processes and outlive the step.
func checkProcessSandbox(addr string, workers []*client.WorkerInfo) error {
	for _, w := range workers {
		if w.Labels[workerProcessModeLabel] == "no-sandbox" {
			return fmt.Errorf("%w: builder %s worker %s runs steps in its own PID namespace (--oci-worker-no-process-sandbox): a step sees and can signal the daemon's processes; run it with a process sandbox", ErrNoProcessSandbox, addr, w.ID)
		}
	}
	return nil
}
