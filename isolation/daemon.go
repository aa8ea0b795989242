package isolation

import (
	"context"
	"errors"

	"github.com/moby/buildkit/client"
)

// Daemon is a BuildKit daemon that builds can be sent to.
type Daemon interface {
	// Addr is the daemon's gRPC address, unix:// or tcp://.
	Addr() string
	// Client dials the daemon. The caller closes the client.
	Client(ctx context.Context) (*client.Client, error)
	// Info describes the daemon, for results and provenance.
	Info() Info
	// Check reports whether the daemon still answers; its error says why
	// not, with the end of the daemon's log when twinforge started it.
	Check(ctx context.Context) error
	// Close stops a private daemon and removes its state; for a remote
	// daemon it only forgets it. Close is safe to call more than once.
	Close() error
}

// Info describes a daemon.
type Info struct {
	// Name tells daemons of one run apart ("build", "rebuild").
	Name string `json:"name"`
	// Address is the gRPC address the daemon listens on.
	Address string `json:"address"`
	// Remote is true for a daemon twinforge did not start.
	Remote bool `json:"remote"`
	// BuildKitVersion is the version buildkitd reports.
	BuildKitVersion string `json:"buildkitVersion,omitempty"`
	// Runc is the OCI runtime's version line, for a private daemon.
	Runc string `json:"runc,omitempty"`
	// Snapshotter is the worker's snapshotter.
	Snapshotter string `json:"snapshotter,omitempty"`
	// CPUSet is the CPU affinity the daemon runs under, if restricted.
	CPUSet string `json:"cpuset,omitempty"`
	// Umask and TZ are what build steps see when a runtime variation is
	// set; empty means BuildKit's own (0022, UTC).
	Umask string `json:"umask,omitempty"`
	TZ    string `json:"tz,omitempty"`
	// Kernel is the release of the kernel build steps run on, for a
	// private daemon; empty when unknown (a remote daemon).
	Kernel string `json:"kernel,omitempty"`
	// StateDir is where a private daemon's state lives.
	StateDir string `json:"stateDir,omitempty"`
	// WorkerID is the BuildKit worker's ID, made once per daemon state:
	// two addresses that report one ID reach one daemon.
	WorkerID string `json:"workerId,omitempty"`
	// Hostname is the host name the daemon reports: its machine's, or its
	// pod's on Kubernetes.
	Hostname string `json:"hostname,omitempty"`
	// Node is the machine the daemon runs on: the Kubernetes node its pod
	// was placed on, else the host name it reports.
	Node string `json:"node,omitempty"`
	// Cluster is the API server of a worker on Kubernetes, Pod its pod
	// (NAMESPACE/NAME).
	Cluster string `json:"cluster,omitempty"`
	Pod     string `json:"pod,omitempty"`
	// Identity is the worker identity in a remote daemon's TLS
	// certificate (package workercert), Certificate the certificate's
	// sha256 fingerprint.
	Identity    string `json:"identity,omitempty"`
	Certificate string `json:"certificate,omitempty"`
	// Cache is what the daemon's persistent cache held when it started
	// (WithCache); nil for a daemon that started from nothing and keeps
	// nothing, or a remote one.
	Cache *CacheInfo `json:"cache,omitempty"`
	// RootFS is the type of the file system holding a private daemon's
	// snapshots ("ext4", "tmpfs"); empty when unknown.
	RootFS string `json:"rootFS,omitempty"`
}

// CacheState is CacheWarm or CacheCold for a private daemon: cold unless
// it started on a cache an earlier daemon left. A remote daemon's is
// CacheRemote, unless a build made it cold (builder.Request.NoCache).
func (i Info) CacheState() string {
	switch {
	case i.Cache != nil:
		return i.Cache.State
	case i.Remote:
		return CacheRemote
	}
	return CacheCold
}

// ErrMissingBinary is returned when buildkitd or runc cannot be found.
var ErrMissingBinary = errors.New("required program not found")

// ErrDaemonFailed is returned when a daemon does not start or stops
// answering; the error text carries the last lines of its log.
var ErrDaemonFailed = errors.New("buildkit daemon failed")
