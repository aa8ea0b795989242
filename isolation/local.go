package isolation

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/moby/buildkit/client"

	"github.com/twinforge/twinforge/internal/fsatomic"
)

// unixSocketMax is the longest unix socket path buildkitd accepts: it
// refuses more than 104 bytes (the BSD limit), below Linux's 107.
const unixSocketMax = 104

// keepMarker marks a state directory the user asked to keep, so that stale
// state reaping leaves it alone.
const keepMarker = "KEEP"

type localDaemon struct {
	opts     *options
	dir      string
	lock     *os.File // held while the daemon is ours; see ReapStale
	addr     string
	sockDir  string // set when the socket lives outside dir
	logPath  string
	cmd      *exec.Cmd
	exited   chan struct{}
	waitErr  error
	info     Info
	closeMu  sync.Once
	closeErr error
	// root is buildkitd's root: inside dir, or the cache directory's
	// when the daemon keeps a cache (cacheLock is then held).
	root      string
	cacheLock *os.File
	cache     *CacheInfo
	// unmountRoot unmounts the root's own file system (WithOwnFileSystem);
	// rootImage is the cache's image it is mounted from.
	unmountRoot func() error
	rootImage   string
}

var _ Daemon = (*localDaemon)(nil)

// Start launches a private buildkitd and waits until it answers. The caller
// must Close it. If ctx is cancelled while starting, the daemon is stopped
// and its state removed.
func Start(ctx context.Context, opts ...Option) (_ Daemon, retErr error) {
	o, err := makeOptions(opts...)
	if err != nil {
		return nil, err
	}
	buildkitd, err := lookBinary(o.buildkitd, "buildkitd", "run `make deps` to build it into bin/, or put it on PATH")
	if err != nil {
		return nil, err
	}
	runc, err := lookBinary(o.runc, "runc", "install it with `apt-get install runc` (or run `make deps`)")
	if err != nil {
		return nil, err
	}
	var shim string
	if o.shim != nil {
		if shim, err = lookBinary(o.shim.path, "twinforge-runc-shim", "run `make build` to build it into bin/"); err != nil {
			return nil, err
		}
	}
	cniDir, err := lookCNIPlugins(o.cniPluginDir)
	if err != nil {
		return nil, err
	}
	var taskset string
	if o.cpuset != "" {
		if taskset, err = lookBinary("", "taskset", "install util-linux"); err != nil {
			return nil, err
		}
	}

	daemons := filepath.Join(o.stateDir, "daemons")
	if err := os.MkdirAll(daemons, 0o700); err != nil {
		return nil, fmt.Errorf("creating state directory: %w", err)
	}
	ReapStale(o.stateDir, o.logger)

	dir, err := os.MkdirTemp(daemons, o.name+"-")
	if err != nil {
		return nil, fmt.Errorf("creating daemon state directory: %w", err)
	}
	d := &localDaemon{opts: o, dir: dir, exited: make(chan struct{}), logPath: filepath.Join(dir, "buildkitd.log")}
	if d.lock, err = lockDir(dir); err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	defer func() {
		if retErr != nil {
			if cerr := d.Close(); cerr != nil {
				retErr = fmt.Errorf("%w (cleanup: %v)", retErr, cerr)
			}
		}
	}()

	sock := filepath.Join(dir, "buildkitd.sock")
	if len(sock) > unixSocketMax {
		// The state directory is too deep for a unix socket address; keep
		// the socket in a short private directory instead.
		if d.sockDir, err = os.MkdirTemp("", "twinforge-sock-"); err != nil {
			return nil, fmt.Errorf("creating socket directory: %w", err)
		}
		sock = filepath.Join(d.sockDir, "buildkitd.sock")
	}
	d.addr = "unix://" + sock

	d.root = filepath.Join(dir, "root")
	if o.cacheScope != "" {
		root, lock, info, err := openCache(o)
		if err != nil {
			return nil, err
		}
		d.cacheLock, d.cache = lock, info
		if root != "" {
			d.root = root
		}
	}
	if o.ownFS {
		var unmount func() error
		if d.cacheLock != nil {
			d.rootImage = cacheImage(d.cache.Dir)
			unmount, err = mountImage(d.rootImage, d.root)
		} else {
			unmount, err = mountTmpfs(d.root)
		}
		if err != nil {
			o.logger.Warn("keeping the daemon's root on the state directory's file system", "name", o.name, "err", err)
			d.rootImage = ""
		}
		d.unmountRoot = unmount
	}
	if err := os.MkdirAll(d.root, 0o700); err != nil {
		return nil, fmt.Errorf("creating the daemon's root: %w", err)
	}
	if d.cacheLock != nil {
		if err := d.checkCache(); err != nil {
			return nil, err
		}
	}

	// A configuration file of its own keeps the host's /etc/buildkit out,
	// gives every container a network namespace with loopback alone and
	// switches the gateway frontend off.
	cfg := filepath.Join(dir, "buildkitd.toml")
	if err := writeConfig(dir, cfg, cniDir); err != nil {
		return nil, err
	}
	tmp := filepath.Join(dir, "tmp")
	if err := os.MkdirAll(tmp, 0o700); err != nil {
		return nil, fmt.Errorf("creating daemon temp directory: %w", err)
	}
	args := []string{
		"--config", cfg,
		"--root", d.root,
		"--addr", d.addr,
		"--oci-worker=true",
		"--containerd-worker=false",
		"--oci-worker-binary", runtimeBinary(runc, shim),
		"--oci-worker-snapshotter", o.snapshotter,
		// A daemon's state is removed when it stops, so it collects no
		// garbage while it builds; a kept cache is bounded by BuildKit's
		// default policy instead, which never removes what a build uses.
		"--oci-worker-gc=" + strconv.FormatBool(d.cacheLock != nil),
		// Beside the gRPC socket: a deep state directory moves both out of
		// it, as a unix socket address is short.
		"--otel-socket-path", filepath.Join(filepath.Dir(sock), "otel.sock"),
		"--cdi-disabled",
	}
	if o.tcp != nil {
		args = append(args, "--addr", "tcp://"+o.tcp.addr,
			"--tlscert", o.tcp.cert, "--tlskey", o.tcp.key, "--tlscacert", o.tcp.ca)
	}
	name := buildkitd
	if taskset != "" {
		args = append([]string{"-c", o.cpuset, buildkitd}, args...)
		name = taskset
	}

	env := daemonEnv(tmp)
	if shim != "" {
		env = append(env, "TWINFORGE_SHIM_RUNC="+runc, "TWINFORGE_SHIM_UMASK="+o.shim.umask, "TWINFORGE_SHIM_TZ="+o.shim.tz)
	}
	if err := d.spawn(name, args, env); err != nil {
		return nil, err
	}
	if o.keepState {
		if err := os.WriteFile(filepath.Join(dir, keepMarker), nil, 0o600); err != nil {
			return nil, fmt.Errorf("marking state to keep: %w", err)
		}
	}

	version, err := d.waitReady(ctx)
	if err != nil && d.cache != nil && d.cache.State == CacheWarm && ctx.Err() == nil {
		// A cache buildkitd will not start on (a damaged database, say)
		// is discarded; the daemon starts again, cold.
		o.logger.Warn("buildkitd would not start on its cache: discarding it and starting cold", "name", o.name, "cache", d.cache.Dir, "err", err)
		d.stop()
		if derr := d.resetCache(); derr != nil {
			return nil, fmt.Errorf("%w (discarding the cache: %v)", err, derr)
		}
		d.cache.State = CacheCold
		d.cache.Reset = fmt.Sprintf("discarded: buildkitd would not start on it (%v)", firstLine(err.Error()))
		d.exited = make(chan struct{})
		if err := d.spawn(name, args, env); err != nil {
			return nil, err
		}
		version, err = d.waitReady(ctx)
	}
	if err != nil {
		return nil, err
	}
	if d.cache != nil && d.cache.State == CacheWarm {
		d.collectGarbage(ctx)
	}
	d.info = Info{
		WorkerID:        d.info.WorkerID,
		Hostname:        d.info.Hostname,
		Node:            d.info.Hostname,
		Name:            o.name,
		Address:         d.addr,
		BuildKitVersion: version,
		Runc:            runcVersion(runc),
		Snapshotter:     o.snapshotter,
		CPUSet:          o.cpuset,
		Kernel:          kernelRelease(),
		StateDir:        dir,
		Cache:           d.cache,
		RootFS:          fsType(d.root),
	}
	if o.shim != nil {
		d.info.Umask, d.info.TZ = o.shim.umask, o.shim.tz
	}
	return d, nil
}

// daemonEnvAllowed are the variables of twinforge's environment a daemon
// inherits: what buildkitd and runc need to find programs and a home.
// Nothing else: not the signing tokens and passwords twinforge itself
// reads (SIGSTORE_ID_TOKEN, COSIGN_PASSWORD, ACTIONS_ID_TOKEN_REQUEST_*),
// not proxies, not tracing (which puts changing variables into every RUN
// step), not BuildKit's own switches (BUILDKIT_NETWORK_BRIDGE_AUTO, ...).
var daemonEnvAllowed = []string{"PATH", "HOME", "USER", "LOGNAME", "LANG"}

// daemonEnv is the daemon's environment: the allowed variables of
// twinforge's, its own temporary directory and tracing switched off.
func daemonEnv(tmp string) []string {
	var env []string
	for _, k := range daemonEnvAllowed {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	return append(env, "TMPDIR="+tmp, "OTEL_TRACES_EXPORTER=none", "OTEL_METRICS_EXPORTER=none")
}

func (d *localDaemon) waitReady(ctx context.Context) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, d.opts.startTimeout)
	defer cancel()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-d.exited:
			return "", fmt.Errorf("%w: %s exited while starting (%v)%s", ErrDaemonFailed, d.opts.name, d.waitErr, d.logTail())
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return "", fmt.Errorf("%w: %s did not answer within %v%s", ErrDaemonFailed, d.opts.name, d.opts.startTimeout, d.logTail())
			}
			return "", fmt.Errorf("starting buildkitd %s: %w", d.opts.name, ctx.Err())
		case <-tick.C:
		}
		if v, workers, err := probe(ctx, d.addr); err == nil {
			// The configuration written must have taken: never a daemon
			// whose containers share the host's network.
			if err := checkWorkerNetwork(d.addr, workers); err != nil {
				return "", fmt.Errorf("%w: %w%s", ErrDaemonFailed, err, d.logTail())
			}
			d.info.WorkerID = workers[0].ID
			d.info.Hostname = workers[0].Labels[workerHostnameLabel]
			return v, nil
		}
	}
}

// probe asks the daemon for its version and workers.
func probe(ctx context.Context, addr string, opts ...client.ClientOpt) (string, []*client.WorkerInfo, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	c, err := client.New(ctx, addr, opts...)
	if err != nil {
		return "", nil, err
	}
	defer c.Close()
	ws, err := c.ListWorkers(ctx)
	if err != nil {
		return "", nil, err
	}
	if len(ws) == 0 {
		return "", nil, errors.New("daemon has no workers")
	}
	info, err := c.Info(ctx)
	if err != nil {
		return "", nil, err
	}
	return info.BuildkitVersion.Version, ws, nil
}

func (d *localDaemon) Addr() string { return d.addr }
func (d *localDaemon) Info() Info   { return d.info }

func (d *localDaemon) Check(ctx context.Context) error {
	if _, _, err := probe(ctx, d.addr); err != nil {
		// Give a dying process a moment to be reaped, for its exit status.
		select {
		case <-d.exited:
		case <-time.After(500 * time.Millisecond):
		}
		status := "not answering"
		select {
		case <-d.exited:
			status = fmt.Sprintf("exited (%v)", d.waitErr)
		default:
		}
		return fmt.Errorf("%w: %s daemon %s: %v%s", ErrDaemonFailed, d.opts.name, status, err, d.logTail())
	}
	return nil
}

func (d *localDaemon) Client(ctx context.Context) (*client.Client, error) {
	select {
	case <-d.exited:
		return nil, fmt.Errorf("%w: %s is not running (%v)%s", ErrDaemonFailed, d.opts.name, d.waitErr, d.logTail())
	default:
	}
	c, err := client.New(ctx, d.addr)
	if err != nil {
		return nil, fmt.Errorf("connecting to buildkitd %s: %w", d.opts.name, err)
	}
	return c, nil
}

// Close stops the daemon: SIGTERM, then SIGKILL to its process group after
// the stop timeout; then it unmounts what is left under its root and
// removes its state unless asked to keep it.
func (d *localDaemon) Close() error {
	d.closeMu.Do(func() {
		var errs []error
		start := time.Now()
		defer func() {
			d.opts.logger.Debug("buildkitd closed", "name", d.opts.name, "took", time.Since(start))
		}()
		d.stop()
		d.opts.logger.Debug("buildkitd stopped", "name", d.opts.name, "took", time.Since(start))
		// A daemon that was killed left its steps running.
		killOrphanSteps(d.root)
		if err := unmountUnder(d.dir); err != nil {
			errs = append(errs, err)
		}
		// A root kept as a cache or on its own file system: what a step
		// left mounted in it goes, then the file system itself, cleanly.
		if err := unmountBelow(d.root); err != nil {
			errs = append(errs, err)
		}
		if d.unmountRoot != nil {
			if err := d.unmountRoot(); err != nil {
				errs = append(errs, err)
			}
		}
		if d.sockDir != "" {
			if err := os.RemoveAll(d.sockDir); err != nil {
				errs = append(errs, fmt.Errorf("removing socket directory: %w", err))
			}
		}
		if d.opts.keepState {
			d.opts.logger.Info("kept daemon state", "name", d.opts.name, "dir", d.dir)
		} else if err := removeAll(d.dir); err != nil {
			errs = append(errs, fmt.Errorf("removing daemon state %s: %w", d.dir, err))
		}
		if d.cacheLock != nil {
			_ = d.cacheLock.Close()
		}
		if d.lock != nil {
			_ = d.lock.Close()
		}
		d.closeErr = errors.Join(errs...)
	})
	return d.closeErr
}

// spawn starts buildkitd as name with args and env, logging to the
// daemon's log.
func (d *localDaemon) spawn(name string, args, env []string) error {
	logf, err := os.OpenFile(d.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("opening daemon log: %w", err)
	}
	defer logf.Close()

	cmd := exec.Command(name, args...)
	cmd.Stdout = logf
	cmd.Stderr = logf
	cmd.Dir = d.dir
	cmd.Env = env
	// Its own process group keeps a terminal's Ctrl-C away from the daemon,
	// so twinforge decides the order of shutdown; the parent-death signal
	// stops it if twinforge itself is killed.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting buildkitd: %w", err)
	}
	d.cmd = cmd
	exited := d.exited
	go func() {
		d.waitErr = cmd.Wait()
		close(exited)
	}()
	if err := fsatomic.WriteFile(filepath.Join(d.dir, "pid"), []byte(strconv.Itoa(cmd.Process.Pid)), 0o600); err != nil {
		return fmt.Errorf("writing daemon pid: %w", err)
	}
	d.opts.logger.Debug("buildkitd started", "name", d.opts.name, "pid", cmd.Process.Pid, "addr", d.addr, "root", d.root)
	return nil
}

// stop ends the daemon process: SIGTERM, then SIGKILL to its process
// group after the stop timeout.
func (d *localDaemon) stop() {
	if d.cmd == nil || d.cmd.Process == nil {
		return
	}
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.exited:
	case <-time.After(d.opts.stopTimeout):
		d.opts.logger.Warn("buildkitd did not stop in time; killing it", "name", d.opts.name)
		_ = syscall.Kill(-d.cmd.Process.Pid, syscall.SIGKILL)
		<-d.exited
	}
	// runc shims or build processes may outlive the daemon in its group.
	_ = syscall.Kill(-d.cmd.Process.Pid, syscall.SIGKILL)
}

// collectGarbage drops what a daemon's kept state holds that no cache
// record does (leftovers of a run that crashed or failed), before a
// build needs the space: a prune that matches no record still runs
// BuildKit's garbage collection.
func (d *localDaemon) collectGarbage(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	c, err := client.New(ctx, d.addr)
	if err != nil {
		return
	}
	defer c.Close()
	if err := c.Prune(ctx, nil, client.WithFilter([]string{"id==twinforge-collect-garbage-only"})); err != nil {
		d.opts.logger.Warn("collecting the cache's garbage", "name", d.opts.name, "err", err)
	}
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

// logTail returns the last lines of the daemon log, ready to append to an
// error message.
func (d *localDaemon) logTail() string {
	lines := tailLines(d.logPath, 15)
	if len(lines) == 0 {
		return ""
	}
	return "\nlast lines of " + d.logPath + ":\n  " + strings.Join(lines, "\n  ")
}

func lookBinary(explicit, name, hint string) (string, error) {
	p := explicit
	if p == "" {
		p = name
	}
	path, err := exec.LookPath(p)
	if err != nil {
		return "", fmt.Errorf("%w: %s (%s): %s", ErrMissingBinary, name, p, hint)
	}
	return path, nil
}

func runcVersion(runc string) string {
	out, err := exec.Command(runc, "--version").Output()
	if err != nil {
		return ""
	}
	line, _, _ := strings.Cut(string(out), "\n")
	return strings.TrimSpace(line)
}

// runtimeBinary is the OCI runtime the worker runs: runc, or the shim that
// varies its containers before running runc.
func runtimeBinary(runc, shim string) string {
	if shim != "" {
		return shim
	}
	return runc
}

// kernelRelease is uname -r of the machine private daemons run on.
func kernelRelease() string {
	var u syscall.Utsname
	if err := syscall.Uname(&u); err != nil {
		return ""
	}
	b := make([]byte, 0, len(u.Release))
	for _, c := range u.Release {
		if c == 0 {
			break
		}
		b = append(b, byte(c))
	}
	return string(b)
}
