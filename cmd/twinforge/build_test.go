package main

import (
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/twinforge/twinforge/internal/testenv"
)

func TestBuildExampleJSON(t *testing.T) {
	testenv.NeedDaemon(t)
	c := newCLI(t)
	out := filepath.Join(t.TempDir(), "files")
	r := c.must("build", "--progress", "plain", "--output", "json", "--oci-layout", out,
		filepath.Join(testenv.RepoRoot(t), "examples", "files"))
	var got struct {
		Digest, MediaType, Platform, OCILayout string
		DurationSeconds                        float64
		Builder                                struct{ Name, BuildKitVersion, Runc string }
		Rebuild                                struct {
			Digest, OCILayout string
			Variations        []struct{ Name, Build, Rebuild string }
		}
		Reproducible bool
		Reproduction string
	}
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil {
		t.Fatalf("--output json is not JSON: %v\n%s", err, r.stdout)
	}
	if !strings.HasPrefix(got.Digest, "sha256:") || got.OCILayout != out || got.Platform == "" ||
		got.MediaType != "application/vnd.oci.image.manifest.v1+json" || got.DurationSeconds <= 0 || got.Builder.BuildKitVersion == "" {
		t.Errorf("incomplete result: %+v", got)
	}
	if !got.Reproducible || got.Reproduction != "reproduced" || got.Rebuild.Digest != got.Digest || len(got.Rebuild.Variations) < 6 {
		t.Errorf("not proven by the rebuild: %+v", got)
	}
	if _, err := os.Stat(filepath.Join(got.Rebuild.OCILayout, "index.json")); err != nil {
		t.Errorf("rebuild layout not kept: %v", err)
	}
	assertContains(t, "progress", r.stderr, "[build] [2/4] RUN set -e", "[rebuild] [2/4] RUN set -e", "build ", " · rebuild ", "steps cached")
	if _, err := os.Stat(filepath.Join(out, "blobs", "sha256", strings.TrimPrefix(got.Digest, "sha256:"))); err != nil {
		t.Errorf("manifest not in the layout: %v", err)
	}
	c.assertClean()
}

// Each side keeps a cache of its own between builds: the second build of
// the same tree starts both sides warm and reuses their steps, --cold
// starts both from nothing, and each result says which.
func TestBuildCachesPerSide(t *testing.T) {
	testenv.NeedDaemon(t)
	c := newCLI(t)
	ex := filepath.Join(testenv.RepoRoot(t), "examples", "files")
	build := func(extra ...string) (build, rebuild string, stderr string) {
		t.Helper()
		r := c.must(append([]string{"build", "--progress", "plain", "--output", "json", "--oci-layout", filepath.Join(t.TempDir(), "out")}, append(extra, ex)...)...)
		var got struct {
			Builder struct {
				Cache *struct{ Scope, State string }
			}
			Rebuild struct {
				Builder struct {
					Cache *struct{ Scope, State string }
				}
			}
		}
		if err := json.Unmarshal([]byte(r.stdout), &got); err != nil {
			t.Fatalf("--output json: %v\n%s", err, r.stdout)
		}
		state := func(c *struct{ Scope, State string }) string {
			if c == nil {
				return "none"
			}
			return c.State
		}
		return state(got.Builder.Cache), state(got.Rebuild.Builder.Cache), r.stderr
	}
	b, rb, _ := build()
	if b != "cold" || rb != "cold" {
		t.Errorf("first build: build %s, rebuild %s; want both cold", b, rb)
	}
	b, rb, stderr := build()
	if b != "warm" || rb != "warm" {
		t.Errorf("second build: build %s, rebuild %s; want both warm", b, rb)
	}
	assertContains(t, "progress", stderr, "CACHED", "build ", "(warm, ", " · rebuild ")
	b, rb, stderr = build("--cold")
	if b != "cold" || rb != "cold" {
		t.Errorf("--cold: build %s, rebuild %s; want both cold", b, rb)
	}
	assertContains(t, "progress", stderr, "(cold, 0 of ")

	// A blob truncated in the build's cache: that side runs cold, the
	// other stays warm, and the operator is told.
	blobs, _ := filepath.Glob(filepath.Join(c.state, "cache", "*", "build", "root", "runc-*", "content", "blobs", "sha256", "*"))
	if len(blobs) == 0 {
		t.Fatal("no blob in the build's cache")
	}
	if err := os.Truncate(blobs[0], 1); err != nil {
		t.Fatal(err)
	}
	b, rb, stderr = build()
	if b != "cold" || rb != "warm" {
		t.Errorf("after corrupting the build's cache: build %s, rebuild %s; want build cold, rebuild warm", b, rb)
	}
	assertContains(t, "warning", stderr, "warning: the build's cache was not used, that side ran cold", "does not match its digest")
	c.assertClean()
}

// The committed locks of the examples still match their trees.
func TestExampleLocksMatch(t *testing.T) {
	testenv.BaseImages(t)
	c := newCLI(t)
	for _, ex := range []string{"hello", "files", "goservice"} {
		c.must("lock", "--check", filepath.Join(testenv.RepoRoot(t), "examples", ex))
	}
}

func TestBuildFailures(t *testing.T) {
	testenv.NeedDaemon(t)
	c := newCLI(t)
	tests := []struct {
		name     string
		context  string
		opts     []string
		code     int
		want     []string
		lockless bool
	}{
		{"step fails", "step-fails", nil, exitFailure, []string{"exit code: 7", "widget broke", "failed step"}, false},
		{"runc missing", "step-fails", []string{"--runc", "/nonexistent/runc"}, exitFailure, []string{"runc", "apt-get install runc"}, false},
		{"buildkitd missing", "step-fails", []string{"--buildkitd", "/nonexistent/buildkitd"}, exitFailure, []string{"buildkitd", "make deps"}, false},
		{"no lock", "step-fails", nil, exitRefused, []string{"no lock", "twinforge lock"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := c.context(tt.context)
			if !tt.lockless {
				c.lock(ctx)
			}
			out := filepath.Join(t.TempDir(), "out")
			r := c.run(append(append([]string{"build", "--progress", "quiet", "--oci-layout", out}, tt.opts...), ctx)...)
			if r.code != tt.code {
				t.Fatalf("exit %d, want %d\n%s", r.code, tt.code, r.stderr)
			}
			assertContains(t, "stderr", r.stderr, tt.want...)
			if _, err := os.Stat(out); err == nil {
				t.Error("a failed build left output at --oci-layout")
			}
			c.assertClean()
		})
	}
}

// A RUN step cannot reach a server on the build host's loopback, even
// when it ignores its own failure, and neither can one that asks for the
// default network.
func TestRunStepsHaveNoNetwork(t *testing.T) {
	testenv.NeedDaemon(t)
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Write([]byte("secret from the host"))
	}))
	defer srv.Close()
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	c := newCLI(t)
	ctx := c.context("network")
	write(t, filepath.Join(ctx, "Dockerfile"), strings.ReplaceAll(readFile(t, filepath.Join(ctx, "Dockerfile")), "PORT", port))
	c.lock(ctx)
	r := c.must("build", "--progress", "plain", ctx)
	if n := hits.Load(); n != 0 {
		t.Fatalf("the host server saw %d requests from a build step", n)
	}
	assertContains(t, "build log", r.stderr, "no network here")
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// Ctrl-C during a build stops the daemon and leaves no process, mount,
// socket, state or partial layout behind.
func TestInterruptCleansUp(t *testing.T) {
	testenv.NeedDaemon(t)
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		t.Run(sig.String(), func(t *testing.T) {
			c := newCLI(t)
			ctx := c.context("sleep")
			c.lock(ctx)
			out := filepath.Join(t.TempDir(), "out")
			cmd := c.command(t.Context(), "build", "--progress", "plain", "--oci-layout", out, ctx)
			var stderr strings.Builder
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			waitFor(t, func() bool { return strings.Contains(stderr.String(), "sleeping") }, "the build step to start")
			if err := cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			err := cmd.Wait()
			if err == nil {
				t.Fatal("an interrupted build exited 0")
			}
			if _, err := os.Stat(out); err == nil {
				t.Error("an interrupted build left output")
			}
			siblings, _ := filepath.Glob(filepath.Join(filepath.Dir(out), ".out.tmp-*"))
			if len(siblings) > 0 {
				t.Errorf("temporary layout left: %v", siblings)
			}
			c.assertClean()
		})
	}
}

// A run killed outright leaves state behind; the next run clears it.
func TestStateOfKilledRunIsReaped(t *testing.T) {
	testenv.NeedDaemon(t)
	c := newCLI(t)
	ctx := c.context("sleep")
	c.lock(ctx)
	cmd := c.command(t.Context(), "build", "--progress", "plain", ctx)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return strings.Contains(stderr.String(), "sleeping") }, "the build step to start")
	cmd.Process.Kill()
	cmd.Wait()
	// The parent-death signal stops the daemon; wait for it to go.
	waitFor(t, func() bool { return !processUnder(c.state) }, "the orphaned daemon to stop")

	files := c.context("files-small")
	c.lock(files)
	c.must("build", "--progress", "quiet", files)
	c.assertClean()
}

func processUnder(dir string) bool {
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		if b, err := os.ReadFile(p); err == nil && strings.Contains(string(b), dir) {
			return true
		}
	}
	return false
}

func waitFor(t *testing.T, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// A build whose digest the rebuild cannot reproduce exits 3, signs and
// pushes nothing, keeps both layouts and prints what differs.
func TestNotReproducibleExits3(t *testing.T) {
	testenv.NeedDaemon(t)
	c := newCLI(t)
	ctx := c.context("clock")
	c.lock(ctx)
	out := filepath.Join(t.TempDir(), "clock")
	// The fixture records whole seconds (busybox's date has no %N); a
	// wider offset keeps a loaded machine from running both steps in the
	// same second.
	r := c.run("build", "--progress", "quiet", "--rebuild-offset", "4s", "--oci-layout", out, ctx)
	if r.code != exitNotReproducible {
		t.Fatalf("exit %d, want 3\n%s", r.code, r.stderr)
	}
	assertContains(t, "stdout", r.stdout, "reproduction", "not reproducible")
	assertContains(t, "stderr", r.stderr, "what differs", "built-at", "not reproducible", out+"-rebuild")
	for _, dir := range []string{out, out + "-rebuild"} {
		if _, err := os.Stat(filepath.Join(dir, "index.json")); err != nil {
			t.Errorf("layout %s not kept: %v", dir, err)
		}
	}
	// The two kept layouts are what twinforge diff compares.
	d := c.run("diff", out, out+"-rebuild")
	if d.code != exitNotReproducible {
		t.Fatalf("diff exit %d, want 3\n%s", d.code, d.stderr)
	}
	assertContains(t, "diff", d.stdout, "built-at", "content")
	same := c.run("diff", out, out)
	if same.code != 0 {
		t.Fatalf("diff of an image with itself: exit %d\n%s%s", same.code, same.stdout, same.stderr)
	}
	c.assertClean()
}

func TestNoRebuildIsRecorded(t *testing.T) {
	testenv.NeedDaemon(t)
	c := newCLI(t)
	ctx := c.context("files-small")
	c.lock(ctx)
	r := c.must("build", "--no-rebuild", "--progress", "quiet", "--output", "json", ctx)
	var got struct {
		Reproducible bool
		Reproduction string
		Rebuild      *struct{}
	}
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil {
		t.Fatal(err)
	}
	if got.Reproducible || got.Reproduction != "not reproduced" || got.Rebuild != nil {
		t.Errorf("--no-rebuild result: %+v", got)
	}
}

func TestDiffErrors(t *testing.T) {
	c := newCLI(t)
	notImage := t.TempDir()
	write(t, filepath.Join(notImage, "README"), "not a layout")
	tests := []struct {
		name string
		args []string
		code int
		want []string
	}{
		{"one argument", []string{"diff", "a"}, exitUsage, []string{"two images"}},
		{"missing layout", []string{"diff", "/nonexistent/a", "/nonexistent/b"}, exitFailure, []string{"/nonexistent/a"}},
		{"not a layout", []string{"diff", notImage, notImage}, exitFailure, []string{"not an OCI image layout"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := c.run(tt.args...)
			if r.code != tt.code {
				t.Fatalf("exit %d, want %d\n%s", r.code, tt.code, r.stderr)
			}
			assertContains(t, "stderr", r.stderr, tt.want...)
		})
	}
}
