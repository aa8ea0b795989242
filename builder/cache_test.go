package builder_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"

	"github.com/moby/buildkit/client"

	"github.com/twinforge/twinforge/builder"
	"github.com/twinforge/twinforge/internal/testenv"
	"github.com/twinforge/twinforge/isolation"
)

// stampDockerfile writes a file no two runs of its step give alike, so
// that whether the step was reused shows in the image.
func stampDockerfile(t *testing.T, bases []builder.BaseImage, extra string) string {
	t.Helper()
	dir := t.TempDir()
	df := "FROM " + bases[0].Name + "\nRUN cat /proc/sys/kernel/random/uuid > /stamp\n" + extra
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(df), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

type cachedBuild struct {
	stamp  string
	cached int
	info   isolation.Info
	err    error
}

// buildOn starts a daemon with opts, builds dir on it once and stops it.
func buildOn(t *testing.T, state string, dir string, bases []builder.BaseImage, noCache bool, opts ...isolation.Option) cachedBuild {
	t.Helper()
	base := []isolation.Option{
		isolation.WithStateDir(state),
		isolation.WithBuildkitd(testenv.Binary(t, "buildkitd")),
		isolation.WithLogger(testenv.Logger(t)),
	}
	d, err := isolation.Start(context.Background(), append(base, opts...)...)
	if err != nil {
		t.Fatalf("starting buildkitd: %v", err)
	}
	defer func() {
		if err := d.Close(); err != nil {
			t.Errorf("stopping buildkitd: %v", err)
		}
	}()
	ch := make(chan *client.SolveStatus)
	cachedSteps := map[string]bool{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for s := range ch {
			for _, v := range s.Vertexes {
				if v.Cached && strings.HasPrefix(v.Name, "[") {
					cachedSteps[v.Digest.String()] = true
				}
			}
		}
	}()
	res, err := builder.New(d).Build(t.Context(), builder.Request{ContextDir: dir, BaseImages: bases, NoCache: noCache,
		OCILayout: filepath.Join(t.TempDir(), "out"), Progress: ch})
	<-done
	out := cachedBuild{info: d.Info(), cached: len(cachedSteps), err: err}
	if err == nil {
		out.info = res.Builder
		out.stamp = fileInImage(t, res.OCILayout, res.Digest, "stamp")
	}
	return out
}

// Each side and each scope keeps a cache of its own: a step is reused only
// by a later daemon of the same name and scope, never by another side or
// tenant, and NoCache reuses nothing.
func TestCachePerSideAndScope(t *testing.T) {
	testenv.NeedDaemon(t)
	bases := testenv.BaseImages(t)
	state := t.TempDir()
	dir := stampDockerfile(t, bases, "")
	const scopeA, scopeB = "https://github.com/example/a", "https://github.com/example/b"

	first := buildOn(t, state, dir, bases, false, isolation.WithName("build"), isolation.WithCache(scopeA))
	if first.err != nil {
		t.Fatal(first.err)
	}
	if c := first.info.Cache; c == nil || c.State != isolation.CacheCold || c.Scope != scopeA || c.Dir != isolation.CacheDir(state, scopeA, "build") {
		t.Fatalf("first daemon's cache %+v: want a cold cache of scope %s in %s", c, scopeA, isolation.CacheDir(state, scopeA, "build"))
	}

	warm := buildOn(t, state, dir, bases, false, isolation.WithName("build"), isolation.WithCache(scopeA))
	if warm.err != nil {
		t.Fatal(warm.err)
	}
	if warm.info.CacheState() != isolation.CacheWarm || warm.stamp != first.stamp || warm.cached == 0 {
		t.Fatalf("same side and scope: cache %s, stamp %q (first %q), %d steps cached: want the step reused from a warm cache",
			warm.info.CacheState(), warm.stamp, first.stamp, warm.cached)
	}

	for name, opts := range map[string][]isolation.Option{
		"other side":  {isolation.WithName("rebuild"), isolation.WithCache(scopeA)},
		"other scope": {isolation.WithName("build"), isolation.WithCache(scopeB)},
		"no cache":    {isolation.WithName("build")},
	} {
		got := buildOn(t, state, dir, bases, false, opts...)
		if got.err != nil {
			t.Fatalf("%s: %v", name, got.err)
		}
		if got.info.CacheState() != isolation.CacheCold || got.stamp == first.stamp || got.cached != 0 {
			t.Errorf("%s: cache %s, stamp %q (first %q), %d steps cached: want a cold build sharing nothing", name, got.info.CacheState(), got.stamp, first.stamp, got.cached)
		}
	}

	cold := buildOn(t, state, dir, bases, true, isolation.WithName("build"), isolation.WithCache(scopeA))
	if cold.err != nil {
		t.Fatal(cold.err)
	}
	if cold.stamp == first.stamp || cold.info.CacheState() != isolation.CacheCold {
		t.Errorf("NoCache on a warm cache: stamp %q (first %q), cache %s: want every step run, recorded cold", cold.stamp, first.stamp, cold.info.CacheState())
	}
}

// A cache held by a running daemon is not shared: a second daemon of the
// same side and scope starts cold on a root of its own, and says why.
func TestCacheInUseIsNotShared(t *testing.T) {
	testenv.NeedDaemon(t)
	state := t.TempDir()
	const scope = "https://github.com/example/busy"
	opts := []isolation.Option{isolation.WithStateDir(state), isolation.WithName("build"), isolation.WithCache(scope)}
	first := testenv.StartDaemon(t, opts...)
	second := testenv.StartDaemon(t, opts...)
	if c := first.Info().Cache; c == nil || c.Dir == "" {
		t.Fatalf("first daemon: cache %+v, want it to hold the cache", c)
	}
	c := second.Info().Cache
	if c == nil || c.Dir != "" || c.State != isolation.CacheCold || !strings.Contains(c.Reset, "in use") {
		t.Fatalf("second daemon: cache %+v, want cold on a root of its own, saying the cache is in use", c)
	}
}

// A blob truncated in a cache is found before the daemon starts: the cache
// is discarded, that side runs cold and Info says why; the next run is
// warm again. So on disk and in memory (the rebuild's).
func TestCorruptedCacheIsDiscarded(t *testing.T) {
	testenv.NeedDaemon(t)
	bases := testenv.BaseImages(t)
	for name, tc := range map[string]struct {
		opts []isolation.Option
		root func(state, scope string) string
	}{
		"on disk": {
			opts: []isolation.Option{isolation.WithName("build"), isolation.WithCache("https://github.com/example/corrupt")},
			root: func(state, scope string) string {
				return filepath.Join(isolation.CacheDir(state, scope, "build"), "root")
			},
		},
		"on its own file system": {
			opts: []isolation.Option{isolation.WithName("rebuild"), isolation.WithSnapshotter("native"), isolation.WithOwnFileSystem(), isolation.WithCache("https://github.com/example/corrupt")},
			root: func(state, scope string) string {
				// The image is mounted only while a daemon runs: mount it
				// to reach a blob.
				dir := isolation.CacheDir(state, scope, "rebuild")
				mnt := t.TempDir()
				if out, err := exec.Command("mount", "-o", "loop", filepath.Join(dir, "root.img"), mnt).CombinedOutput(); err != nil {
					t.Fatalf("mounting the cache image: %v\n%s", err, out)
				}
				t.Cleanup(func() { _ = exec.Command("umount", mnt).Run() })
				return mnt
			},
		},
	} {
		t.Run(name, func(t *testing.T) {
			state := t.TempDir()
			dir := stampDockerfile(t, bases, "")
			first := buildOn(t, state, dir, bases, false, tc.opts...)
			if first.err != nil {
				t.Fatal(first.err)
			}
			rootDir := tc.root(state, "https://github.com/example/corrupt")
			blob := largestBlob(t, rootDir)
			fi, err := os.Stat(blob)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.Truncate(blob, fi.Size()/2); err != nil {
				t.Fatal(err)
			}
			if name == "on its own file system" {
				if out, err := exec.Command("umount", rootDir).CombinedOutput(); err != nil {
					t.Fatalf("unmounting the cache image: %v\n%s", err, out)
				}
			}

			got := buildOn(t, state, dir, bases, false, tc.opts...)
			if got.err != nil {
				t.Fatalf("build after the cache was corrupted: %v", got.err)
			}
			c := got.info.Cache
			if c == nil || c.State != isolation.CacheCold || !strings.Contains(c.Reset, "does not match its digest") || !strings.Contains(c.Reset, filepath.Base(blob)[:12]) {
				t.Fatalf("cache after truncating %s: %+v, want it discarded, cold, naming the blob", blob, c)
			}
			if got.stamp == first.stamp || got.cached != 0 {
				t.Errorf("the corrupted side reused a step: stamp %q (first %q), %d cached", got.stamp, first.stamp, got.cached)
			}
			again := buildOn(t, state, dir, bases, false, tc.opts...)
			if again.err != nil || again.info.CacheState() != isolation.CacheWarm || again.stamp != got.stamp {
				t.Fatalf("run after the cold one: err %v, cache %s, stamp %q (cold run %q): want warm again", again.err, again.info.CacheState(), again.stamp, got.stamp)
			}
		})
	}
}

// largestBlob is the largest blob of a BuildKit root's content store.
func largestBlob(t *testing.T, root string) string {
	t.Helper()
	var blobs []string
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() && filepath.Base(filepath.Dir(p)) == "sha256" && filepath.Base(filepath.Dir(filepath.Dir(filepath.Dir(p)))) == "content" {
			blobs = append(blobs, p)
		}
		return err
	})
	if err != nil || len(blobs) == 0 {
		t.Fatalf("no blobs under %s (%v)", root, err)
	}
	size := func(p string) int64 {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		return fi.Size()
	}
	sort.Slice(blobs, func(i, j int) bool { return size(blobs[i]) > size(blobs[j]) })
	return blobs[0]
}

// A disk that fills up mid-build fails the build with an error that says
// so, and leaves the cache usable: the next build on it, with space again,
// reuses what the first one built.
func TestFullDiskLeavesCacheUsable(t *testing.T) {
	testenv.NeedDaemon(t)
	bases := testenv.BaseImages(t)
	state := t.TempDir()
	// A small file system of its own stands for the full disk.
	if err := syscall.Mount("tmpfs", state, "tmpfs", 0, "size=96m,mode=0700"); err != nil {
		t.Skipf("cannot mount a small tmpfs (needs root): %v", err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(state, syscall.MNT_DETACH); err != nil {
			t.Errorf("unmounting %s: %v", state, err)
		}
	})
	const scope = "https://github.com/example/full"
	opts := []isolation.Option{isolation.WithName("build"), isolation.WithCache(scope)}
	dir := stampDockerfile(t, bases, "")
	first := buildOn(t, state, dir, bases, false, opts...)
	if first.err != nil {
		t.Fatal(first.err)
	}

	// The same first step, then one that writes more than the disk holds.
	full := stampDockerfile(t, bases, "RUN dd if=/dev/zero of=/fill bs=1M count=200\n")
	got := buildOn(t, state, full, bases, false, opts...)
	if !errors.Is(got.err, builder.ErrBuildFailed) || !strings.Contains(got.err.Error(), "no space left on device") || !strings.Contains(got.err.Error(), "disk holding") {
		t.Fatalf("build that fills the disk: %v, want a build failure saying the disk is full", got.err)
	}
	t.Logf("a full disk reads: %v", got.err)

	again := buildOn(t, state, dir, bases, false, opts...)
	if again.err != nil {
		t.Fatalf("build after the disk was full: %v", again.err)
	}
	if again.info.CacheState() != isolation.CacheWarm || again.stamp != first.stamp {
		t.Fatalf("after a full disk: cache %s, stamp %q (first %q): want the cache kept and its step reused", again.info.CacheState(), again.stamp, first.stamp)
	}
}
