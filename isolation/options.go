package isolation

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// Option configures Start.
type Option func(*options) error

type options struct {
	name         string
	stateDir     string
	buildkitd    string
	runc         string
	snapshotter  string
	cpuset       string
	keepState    bool
	startTimeout time.Duration
	stopTimeout  time.Duration
	logger       *slog.Logger
	tcp          *tcpListener
	shim         *runtimeShim
	cniPluginDir string
	cacheScope   string
	ownFS        bool
}

type runtimeShim struct {
	path, umask, tz string
}

type tcpListener struct {
	addr, cert, key, ca string
}

// DefaultStateDir is where daemons keep their state when no WithStateDir
// option is given: $XDG_STATE_HOME/twinforge, else ~/.local/state/twinforge.
func DefaultStateDir() string {
	if d := os.Getenv("XDG_STATE_HOME"); d != "" {
		return filepath.Join(d, "twinforge")
	}
	if home, err := os.UserHomeDir(); err == nil {
		return filepath.Join(home, ".local", "state", "twinforge")
	}
	return filepath.Join(os.TempDir(), "twinforge-state")
}

func makeOptions(opts ...Option) (*options, error) {
	o := &options{
		name:         "build",
		stateDir:     DefaultStateDir(),
		snapshotter:  "overlayfs",
		startTimeout: 60 * time.Second,
		stopTimeout:  15 * time.Second,
		logger:       slog.New(slog.DiscardHandler),
	}
	for _, opt := range opts {
		if err := opt(o); err != nil {
			return nil, err
		}
	}
	return o, nil
}

// WithName names the daemon; the name shows in its state directory, its log
// and its Info. The default value is "build".
func WithName(name string) Option {
	return func(o *options) error {
		if name == "" || filepath.Base(name) != name {
			return fmt.Errorf("daemon name %q: use a plain word such as build or rebuild", name)
		}
		o.name = name
		return nil
	}
}

// WithStateDir sets the directory under which the daemon's private state is
// created. The default value is DefaultStateDir().
func WithStateDir(dir string) Option {
	return func(o *options) error {
		if dir == "" {
			return errors.New("state directory: empty path")
		}
		abs, err := filepath.Abs(dir)
		if err != nil {
			return fmt.Errorf("state directory %q: %w", dir, err)
		}
		o.stateDir = abs
		return nil
	}
}

// WithBuildkitd sets the buildkitd program. The default is "buildkitd" on
// PATH.
func WithBuildkitd(path string) Option {
	return func(o *options) error { o.buildkitd = path; return nil }
}

// WithRunc sets the runc program the OCI worker runs. The default is "runc"
// on PATH.
func WithRunc(path string) Option {
	return func(o *options) error { o.runc = path; return nil }
}

// WithSnapshotter sets the OCI worker's snapshotter: "overlayfs" or
// "native". The default value is "overlayfs".
func WithSnapshotter(name string) Option {
	return func(o *options) error {
		switch name {
		case "overlayfs", "native":
			o.snapshotter = name
			return nil
		}
		return fmt.Errorf("snapshotter %q: use overlayfs or native", name)
	}
}

// WithCPUSet pins the daemon, and so every build step, to a set of CPUs in
// taskset's list form ("0", "0-1"). The default is no restriction.
func WithCPUSet(cpus string) Option {
	return func(o *options) error { o.cpuset = cpus; return nil }
}

// WithKeepState keeps the daemon's state directory after Close, for
// inspection. The default is to remove it.
func WithKeepState(keep bool) Option {
	return func(o *options) error { o.keepState = keep; return nil }
}

// WithStartTimeout bounds how long Start waits for the daemon to answer.
// The default value is 60 seconds.
func WithStartTimeout(d time.Duration) Option {
	return func(o *options) error {
		if d <= 0 {
			return fmt.Errorf("start timeout %v: must be positive", d)
		}
		o.startTimeout = d
		return nil
	}
}

// WithLogger receives the package's log records. The default discards them.
func WithLogger(l *slog.Logger) Option {
	return func(o *options) error {
		if l == nil {
			return errors.New("logger: nil")
		}
		o.logger = l
		return nil
	}
}

// WithTLSListener makes the daemon also listen on tcp://addr with mutual
// TLS, for clients on other hosts. cert and key are the server's, ca
// verifies clients.
func WithTLSListener(addr, cert, key, ca string) Option {
	return func(o *options) error {
		if addr == "" || cert == "" || key == "" || ca == "" {
			return errors.New("TLS listener: address, certificate, key and CA are all required")
		}
		o.tcp = &tcpListener{addr: addr, cert: cert, key: key, ca: ca}
		return nil
	}
}

// WithRuntimeVariation runs every build step through the runtime shim at
// shim (twinforge-runc-shim), which gives it the umask (octal, "027") and
// time zone ("Asia/Tokyo") given here instead of BuildKit's fixed 0022 and
// UTC. A rebuild uses it to expose steps that depend on either. The default
// is no shim.
func WithRuntimeVariation(shim, umask, tz string) Option {
	return func(o *options) error {
		if shim == "" {
			return errors.New("runtime variation: no shim program given")
		}
		if umask != "" {
			if _, err := strconv.ParseUint(umask, 8, 32); err != nil {
				return fmt.Errorf("runtime variation: umask %q is not octal", umask)
			}
		}
		o.shim = &runtimeShim{path: shim, umask: umask, tz: tz}
		return nil
	}
}

// WithCNIPluginDir sets the directory holding the CNI loopback plugin that
// gives every container of the daemon a network of loopback alone. The
// default is the first of /usr/lib/cni (Debian's containernetworking-plugins)
// and /opt/cni/bin that holds it.
func WithCNIPluginDir(dir string) Option {
	return func(o *options) error {
		if dir == "" {
			return errors.New("CNI plugin directory: empty path")
		}
		o.cniPluginDir = dir
		return nil
	}
}
