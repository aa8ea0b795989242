package isolation

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/moby/sys/mountinfo"
)

// WithOwnFileSystem puts the daemon's BuildKit root (snapshots, content
// store, cache) on a file system of its own, mounted while the daemon
// runs: a tmpfs for a daemon that keeps nothing, and for one with
// WithCache an XFS image in its cache directory, whose copies are
// reflinks and whose flushes stay in memory. A rebuild uses it with the
// native snapshotter: copying a parent snapshot then costs a memory copy
// or a reflink, not a disk write waited on, and the file system under the
// snapshots is another one than the build's, so directory order and inode
// numbers differ in every directory, not only in those a step changed.
//
// When it cannot be mounted (no CAP_SYS_ADMIN, no loop device, no
// mkfs.xfs) the root stays on the state directory's file system and a
// warning is logged; Info().RootFS says where it was. The default is the
// state directory's file system.
func WithOwnFileSystem() Option {
	return func(o *options) error { o.ownFS = true; return nil }
}

// mountTmpfs mounts a tmpfs of at most a quarter of the machine's memory
// at dir.
func mountTmpfs(dir string) (unmount func() error, err error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	if err := syscall.Mount("twinforge", dir, "tmpfs", syscall.MS_NOSUID|syscall.MS_NODEV, "mode=0700,size=25%"); err != nil {
		return nil, fmt.Errorf("mounting a tmpfs at %s: %w", dir, err)
	}
	return func() error { return detach(dir) }, nil
}

// imageSize is the apparent size of a cache's XFS image; the file is
// sparse and is given its freed blocks back when it is unmounted (fstrim).
const imageSize = 64 << 30

// mountImage mounts the XFS image at image on dir, making it first if it
// is missing. The loop device is write-through, so the flushes BuildKit's
// databases ask for reach the image file's page cache, not the disk: the
// image is a cache, checked before every use.
func mountImage(image, dir string) (unmount func() error, err error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	if _, err := os.Stat(image); errors.Is(err, os.ErrNotExist) {
		if err := makeImage(image); err != nil {
			return nil, err
		}
	}
	// An image still attached is never attached twice: two XFS mounts of
	// one image would corrupt it. A device a crashed run left attached but
	// unmounted is let go (the caller holds the cache's lock); one still
	// mounted (an unmount deferred while busy) makes the daemon go without.
	if err := releaseStale(image); err != nil {
		return nil, err
	}
	out, err := exec.Command("losetup", "--find", "--show", image).Output()
	if err != nil {
		return nil, fmt.Errorf("attaching %s to a loop device: %w", image, exitText(err))
	}
	dev := strings.TrimSpace(string(out))
	release := func() { _ = exec.Command("losetup", "--detach", dev).Run() }
	// Best effort: a device that keeps its write-back cache only costs
	// time.
	_ = os.WriteFile(filepath.Join("/sys/block", filepath.Base(dev), "queue", "write_cache"), []byte("write through"), 0o644)
	// No online discard: it punches a hole in the image file for every
	// file a native snapshot frees, while the step waits (about a second
	// of a warm rebuild); one fstrim at unmount gives the space back.
	if err := syscall.Mount(dev, dir, "xfs", syscall.MS_NOATIME, ""); err != nil {
		release()
		return nil, fmt.Errorf("mounting %s (%s) at %s: %w", image, dev, dir, err)
	}
	return func() error {
		// Best effort: space not given back now is given back next time.
		_ = exec.Command("fstrim", dir).Run()
		if err := syscall.Unmount(dir, 0); err != nil && !errors.Is(err, syscall.EINVAL) {
			// Busy: detach lazily; the loop device goes when it is free
			// (autoclear), and until then the image is not mounted again.
			_ = syscall.Unmount(dir, syscall.MNT_DETACH)
			release()
			return fmt.Errorf("unmounting cache image at %s: %w", dir, err)
		}
		release()
		return nil
	}, nil
}

// releaseStale detaches loop devices attached to image that nothing has
// mounted, and fails if one is still mounted.
func releaseStale(image string) error {
	out, err := exec.Command("losetup", "--noheadings", "--output", "NAME", "--associated", image).Output()
	if err != nil {
		return fmt.Errorf("checking loop devices of %s: %w", image, exitText(err))
	}
	for _, dev := range strings.Fields(string(out)) {
		if mounted, _ := mountinfo.GetMounts(func(m *mountinfo.Info) (skip, stop bool) { return m.Source != dev, false }); len(mounted) > 0 {
			return fmt.Errorf("cache image %s is still mounted from %s", image, dev)
		}
		if err := exec.Command("losetup", "--detach", dev).Run(); err != nil {
			return fmt.Errorf("detaching %s from %s: %w", dev, image, exitText(err))
		}
	}
	return nil
}

// imageMinFree is the free space a cache image is made in only: making
// one writes 65 MiB at once (its XFS log alone is 64), which on a nearly
// full disk would take the last of it from the daemons beside it.
const imageMinFree = 128 << 20

func makeImage(image string) error {
	var st syscall.Statfs_t
	if err := syscall.Statfs(filepath.Dir(image), &st); err == nil && st.Bavail*uint64(st.Bsize) < imageMinFree {
		return fmt.Errorf("making cache image: %d MiB free in %s, want %d: no space left on device", st.Bavail*uint64(st.Bsize)>>20, filepath.Dir(image), imageMinFree>>20)
	}
	tmp := image + ".tmp"
	_ = os.Remove(tmp)
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_WRONLY|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	err = f.Truncate(imageSize)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("making cache image: %w", err)
	}
	if err := exec.Command("mkfs.xfs", "-q", "-m", "reflink=1", tmp).Run(); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("making cache image with mkfs.xfs (apt-get install xfsprogs): %w", exitText(err))
	}
	return os.Rename(tmp, image)
}

// unmountBelow unmounts what is mounted under dir, not dir itself.
func unmountBelow(dir string) error {
	mounts, err := mountsUnder(dir)
	if err != nil {
		return err
	}
	var errs []error
	for _, m := range mounts {
		if m == filepath.Clean(dir) {
			continue
		}
		if err := syscall.Unmount(m, syscall.MNT_DETACH); err != nil && !errors.Is(err, syscall.EINVAL) && !errors.Is(err, syscall.ENOENT) {
			errs = append(errs, fmt.Errorf("unmounting %s: %w", m, err))
		}
	}
	return errors.Join(errs...)
}

// detach unmounts dir, lazily if something still holds it.
func detach(dir string) error {
	if err := syscall.Unmount(dir, 0); err != nil && !errors.Is(err, syscall.EINVAL) && !errors.Is(err, syscall.ENOENT) {
		if err := syscall.Unmount(dir, syscall.MNT_DETACH); err != nil && !errors.Is(err, syscall.EINVAL) {
			return fmt.Errorf("unmounting %s: %w", dir, err)
		}
	}
	return nil
}

func exitText(err error) error {
	var ee *exec.ExitError
	if errors.As(err, &ee) && len(ee.Stderr) > 0 {
		return fmt.Errorf("%w: %s", err, strings.TrimSpace(string(ee.Stderr)))
	}
	return err
}

// fsType names the file system holding path ("ext4", "tmpfs", "xfs"),
// from the mount table; empty when unknown.
func fsType(path string) string {
	abs, err := filepath.EvalSymlinks(path)
	if err != nil {
		abs = path
	}
	infos, err := mountinfo.GetMounts(nil)
	if err != nil {
		return ""
	}
	best, typ := "", ""
	for _, m := range infos {
		mp := m.Mountpoint
		if (abs == mp || strings.HasPrefix(abs, strings.TrimSuffix(mp, "/")+"/")) && len(mp) >= len(best) {
			best, typ = mp, m.FSType
		}
	}
	return typ
}
