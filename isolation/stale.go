package isolation

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/moby/sys/mountinfo"
)

// ReapStale removes the state of daemons whose process is gone: what a run
// that crashed or was killed left behind (mounts, sockets, snapshots). State
// kept on purpose and state of daemons still running are left alone.
func ReapStale(stateDir string, logger *slog.Logger) {
	entries, err := os.ReadDir(filepath.Join(stateDir, "daemons"))
	if err != nil {
		return
	}
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		dir := filepath.Join(stateDir, "daemons", e.Name())
		if _, err := os.Stat(filepath.Join(dir, keepMarker)); err == nil {
			continue
		}
		if alive(dir) {
			continue
		}
		killOrphanSteps(filepath.Join(dir, "root"))
		if err := unmountUnder(dir); err != nil {
			logger.Warn("stale daemon state: unmounting", "dir", dir, "err", err)
			continue
		}
		if err := removeAll(dir); err != nil {
			logger.Warn("stale daemon state: removing", "dir", dir, "err", err)
			continue
		}

		logger.Info("removed state left by an earlier run", "dir", dir)
	}
	reapStaleCaches(stateDir, logger)
}

// reapStaleCaches unmounts what a run that crashed or was killed left
// mounted in the caches no daemon holds (network namespaces, snapshots, a
// cache's own file system), keeping their content: the cache of one scope
// may not be opened again, and so cleaned by openCache, for a long time.
func reapStaleCaches(stateDir string, logger *slog.Logger) {
	dirs, _ := filepath.Glob(filepath.Join(stateDir, "cache", "*", "*"))
	for _, dir := range dirs {
		f, err := os.OpenFile(filepath.Join(dir, lockFile), os.O_RDWR, 0)
		if err != nil {
			continue
		}
		// Held, the cache is a running daemon's; closing the file
		// releases the lock taken here.
		if syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) == nil {
			root := filepath.Join(dir, "root")
			killOrphanSteps(root)
			if mounts, _ := mountsUnder(root); len(mounts) > 0 {
				if err := errors.Join(unmountBelow(root), detach(root)); err != nil {
					logger.Warn("stale cache mounts: unmounting", "dir", dir, "err", err)
				} else {
					logger.Info("unmounted what an earlier run left in a cache", "dir", dir, "mounts", len(mounts))
				}
			}
			// The loop device of a cache's own file system stays attached
			// to its image once unmounted, until it is detached.
			if image := cacheImage(dir); fileExists(image) {
				if err := releaseStale(image); err != nil {
					logger.Warn("stale cache image: detaching its loop device", "image", image, "err", err)
				}
			}
		}
		f.Close()
	}
}

// lockFile is held, with flock, by the twinforge process that owns a
// daemon's state directory for as long as the daemon is its own; the kernel
// releases it when that process exits, however it exits.
const lockFile = "lock"

// lockDir takes the lock of a new daemon state directory.
func lockDir(dir string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(dir, lockFile), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("locking daemon state: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("locking daemon state %s: %w", dir, err)
	}
	return f, nil
}

// alive reports whether the daemon that owns dir may still be in use: its
// owner holds the lock, or its buildkitd still runs. A directory with no
// lock and no pid file is being set up by a concurrent Start, so it counts
// as alive unless it is old.
func alive(dir string) bool {
	if f, err := os.OpenFile(filepath.Join(dir, lockFile), os.O_RDWR, 0); err == nil {
		defer f.Close()
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
			return true // the owner holds it
		}
		defer syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		return pidAlive(dir)
	}
	return pidAlive(dir)
}

// pidAlive reports whether the buildkitd recorded in dir still runs.
func pidAlive(dir string) bool {
	b, err := os.ReadFile(filepath.Join(dir, "pid"))
	if err != nil {
		fi, serr := os.Stat(dir)
		return serr == nil && timeSince(fi) < 120
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return false
	}
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return false
	}
	// The pid may have been reused by another program.
	return bytes.Contains(cmdline, []byte(dir)) || bytes.Contains(cmdline, []byte("buildkitd"))
}

// unmountUnder lazily unmounts every mount point under dir, deepest first.
func unmountUnder(dir string) error {
	mounts, err := mountsUnder(dir)
	if err != nil {
		return err
	}
	var errs []error
	for _, m := range mounts {
		if err := syscall.Unmount(m, syscall.MNT_DETACH); err != nil && !errors.Is(err, syscall.EINVAL) && !errors.Is(err, syscall.ENOENT) {
			errs = append(errs, fmt.Errorf("unmounting %s: %w", m, err))
		}
	}
	return errors.Join(errs...)
}

func mountsUnder(dir string) ([]string, error) {
	infos, err := mountinfo.GetMounts(mountinfo.PrefixFilter(filepath.Clean(dir)))
	if err != nil {
		return nil, fmt.Errorf("reading mounts: %w", err)
	}
	mounts := make([]string, 0, len(infos))
	for _, m := range infos {
		mounts = append(mounts, m.Mountpoint)
	}
	sort.Slice(mounts, func(i, j int) bool { return len(mounts[i]) > len(mounts[j]) })
	return mounts, nil
}

// removeAll removes dir; overlay work directories can be left without
// write permission, which os.RemoveAll handles, but busy mounts cannot.
func removeAll(dir string) error {
	err := os.RemoveAll(dir)
	if err == nil {
		return nil
	}
	if err := unmountUnder(dir); err != nil {
		return err
	}
	return os.RemoveAll(dir)
}

// tailLines returns up to n last non-empty lines of a file.
func tailLines(path string, n int) []string {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	var lines []string
	for _, l := range strings.Split(strings.TrimRight(string(b), "\n"), "\n") {
		if strings.TrimSpace(l) != "" {
			lines = append(lines, l)
		}
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return lines
}

// timeSince is the age of a file in seconds.
func timeSince(fi os.FileInfo) float64 {
	return time.Since(fi.ModTime()).Seconds()
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// killOrphanSteps kills the processes of build steps that a daemon which
// died left running. runc runs each step in the cgroup buildkit/ID, ID
// the name of the step's directory under the daemon's root
// (runc-SNAPSHOTTER/executor/ID); a daemon killed outright cannot stop
// them, and they would hold its mounts (and a cache's loop device) for as
// long as they run.
func killOrphanSteps(root string) {
	dirs, _ := filepath.Glob(filepath.Join(root, "runc-*", "executor", "*"))
	if len(dirs) == 0 {
		return
	}
	ids := map[string]bool{}
	for _, d := range dirs {
		ids[filepath.Base(d)] = true
	}
	for range 40 {
		pids := stepProcesses(ids)
		if len(pids) == 0 {
			return
		}
		for _, pid := range pids {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// stepProcesses lists the processes in a cgroup .../buildkit/ID for one of
// ids.
func stepProcesses(ids map[string]bool) []int {
	procs, _ := filepath.Glob("/proc/[0-9]*/cgroup")
	var out []int
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			// HIERARCHY-ID:CONTROLLERS:PATH
			parts := strings.SplitN(line, ":", 3)
			if len(parts) == 3 && strings.Contains(parts[2], "/buildkit/") && ids[filepath.Base(parts[2])] {
				if pid, err := strconv.Atoi(filepath.Base(filepath.Dir(p))); err == nil {
					out = append(out, pid)
				}
				break
			}
		}
	}
	return out
}
