package rebuild_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twinforge/twinforge/builder"
	"github.com/twinforge/twinforge/internal/testenv"
	"github.com/twinforge/twinforge/isolation"
	"github.com/twinforge/twinforge/rebuild"
	"github.com/twinforge/twinforge/rebuild/imagediff"
)

// builders starts the build daemon, the rebuild daemon with the deciding
// variations and the strict daemon with the pinned ones too.
func builders(t *testing.T) (build, rebuilder, strict builder.Builder, rebuildDaemon isolation.Daemon) {
	t.Helper()
	a := testenv.StartDaemon(t, isolation.WithName("build"))
	b := testenv.StartDaemon(t, rebuild.DaemonOptions()...)
	s := testenv.StartDaemon(t, rebuild.StrictDaemonOptions(testenv.Binary(t, "twinforge-runc-shim"))...)
	return builder.New(a), builder.New(b), builder.New(s), b
}

func logDiff(t *testing.T, err error) {
	t.Helper()
	var diff *rebuild.DiffError
	if errors.As(err, &diff) && diff.Report != nil {
		var text strings.Builder
		diff.Report.WriteText(&text)
		t.Log(text.String())
	}
}

func TestExamplesReproduceUnderAllVariations(t *testing.T) {
	bases := testenv.BaseImages(t)
	a, b, _, _ := builders(t)
	// examples/goservice is proven in TestPinnedVariationsOnlyWarn.
	for _, ex := range []string{"hello", "files"} {
		t.Run(ex, func(t *testing.T) {
			res, err := rebuild.Verify(context.Background(), a, b, builder.Request{
				ContextDir:      filepath.Join(testenv.RepoRoot(t), "examples", ex),
				BaseImages:      bases,
				SourceDateEpoch: 1700000000,
				OCILayout:       filepath.Join(t.TempDir(), ex),
			})
			if err != nil {
				logDiff(t, err)
				t.Fatal(err)
			}
			if res.Build.Digest != res.Rebuild.Digest {
				t.Fatalf("digests differ without an error: %s %s", res.Build.Digest, res.Rebuild.Digest)
			}
			names := map[string]rebuild.Class{}
			for _, v := range res.Variations {
				names[v.Name] = v.Class
			}
			for _, want := range []string{"start offset", "hostname", "ulimit", "snapshotter", "cpus", "daemon", "state"} {
				if names[want] != rebuild.Deciding {
					t.Errorf("deciding variation %q not applied: %v", want, res.Variations)
				}
			}
			for _, pinned := range []string{"umask", "tz"} {
				if _, ok := names[pinned]; ok {
					t.Errorf("pinned variation %q applied without strict variations: %v", pinned, res.Variations)
				}
			}
			if res.Strict != nil || len(res.Warnings) != 0 || len(res.Warned()) != 0 {
				t.Errorf("strict results without strict variations: %+v", res)
			}
			for _, dir := range []string{res.Build.OCILayout, res.Rebuild.OCILayout} {
				if _, err := os.Stat(filepath.Join(dir, "index.json")); err != nil {
					t.Errorf("layout not kept: %v", err)
				}
			}
		})
	}
}

// Each kind of nondeterminism that real builders differ in is caught, and
// the diff names the file and, where its shape shows it, the cause.
func TestNondeterminismIsCaught(t *testing.T) {
	bases := testenv.BaseImages(t)
	a, b, _, _ := builders(t)
	tests := []struct{ name, file, cause string }{
		{"clock", "built-at", "clock"},
		{"urandom", "random.bin", ""},
		{"hostname", "etc/built-on", "hostname"},
		{"cpus", "etc/cpus", "cpuset"},
		{"ulimit", "etc/open-files", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// The clock fixture records whole seconds (busybox's date has
			// no %N): on a loaded machine the build's step can start a
			// second late and meet the rebuild's in the same second, so
			// that case gets a wider offset.
			offset := time.Second
			if tt.name == "clock" {
				offset = 4 * time.Second
			}
			_, err := rebuild.Verify(context.Background(), a, b, builder.Request{
				ContextDir: filepath.Join("testdata", tt.name),
				BaseImages: bases,
				OCILayout:  filepath.Join(t.TempDir(), "out"),
			}, rebuild.WithStartOffset(offset))
			if !errors.Is(err, rebuild.ErrNotReproducible) {
				t.Fatalf("err = %v, want ErrNotReproducible", err)
			}
			var diff *rebuild.DiffError
			if !errors.As(err, &diff) || diff.Report == nil {
				t.Fatalf("no diff report: %v", err)
			}
			if diff.Class != rebuild.Deciding {
				t.Errorf("class %q, want deciding", diff.Class)
			}
			var text strings.Builder
			if err := diff.Report.WriteText(&text); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(text.String(), tt.file) || !strings.Contains(err.Error(), tt.file) {
				t.Errorf("the diff does not name %s:\n%s\n%v", tt.file, text.String(), err)
			}
			if tt.cause != "" && !hasCause(diff.Report, tt.file, tt.cause) {
				t.Errorf("the diff does not name the cause %s of %s:\n%s", tt.cause, tt.file, text.String())
			}
		})
	}
}

func hasCause(r *imagediff.Report, file, cause string) bool {
	for _, l := range r.Layers {
		for _, f := range l.Files {
			for _, why := range f.Why {
				if f.Path == file && why.Cause == cause {
					return true
				}
			}
		}
	}
	return false
}

// What only BuildKit's pinned umask and time zone change reproduces by
// default, is warned about with strict variations, naming file and
// variation, and fails only when strict variations are asked to fail.
func TestPinnedVariationsOnlyWarn(t *testing.T) {
	bases := testenv.BaseImages(t)
	a, b, s, _ := builders(t)
	tests := []struct {
		name, dir string
		warnings  map[string]string // file → variation
	}{
		{"umask", filepath.Join("testdata", "umask"), map[string]string{"data": "umask", "data/a": "umask", "data/c": "umask"}},
		{"tz", filepath.Join("testdata", "tz"), map[string]string{"etc/timezone-at-build": "tz"}},
		// A vendored Go service in two stages: only the binary's mode differs.
		{"goservice", filepath.Join(testenv.RepoRoot(t), "examples", "goservice"), map[string]string{"goservice": "umask"}},
	}
	for _, tt := range tests {
		req := func(t *testing.T) builder.Request {
			return builder.Request{ContextDir: tt.dir, BaseImages: bases, SourceDateEpoch: 1700000000, OCILayout: filepath.Join(t.TempDir(), "out")}
		}
		t.Run(tt.name+"/off", func(t *testing.T) {
			res, err := rebuild.Verify(context.Background(), a, b, req(t))
			if err != nil {
				logDiff(t, err)
				t.Fatalf("not reproduced on default settings: %v", err)
			}
			if res.Strict != nil || len(res.Warnings) != 0 {
				t.Errorf("strict results without strict variations: %+v", res)
			}
		})
		t.Run(tt.name+"/warn", func(t *testing.T) {
			res, err := rebuild.Verify(context.Background(), a, b, req(t), rebuild.WithStrictVariations(rebuild.StrictWarn, s))
			if err != nil {
				logDiff(t, err)
				t.Fatalf("strict variations that warn failed the build: %v", err)
			}
			if res.Strict == nil || res.Strict.Digest == res.Build.Digest || res.Rebuild.Digest != res.Build.Digest {
				t.Fatalf("want the strict rebuild to differ and the rebuild to match: %+v", res)
			}
			got := map[string][]string{}
			for _, w := range res.Warnings {
				got[w.Path] = append(got[w.Path], w.Variation)
				if !strings.Contains(w.String(), w.Path+": ") || !strings.Contains(w.Message, "BuildKit pins") || !strings.Contains(w.Message, "reproduces on BuildKit builders") {
					t.Errorf("warning %q does not say why it is only a warning", w)
				}
			}
			for file, variation := range tt.warnings {
				if !slices.Contains(got[file], variation) {
					t.Errorf("no %s warning for %s: %v", variation, file, res.Warnings)
				}
			}
			if t.Failed() && res.StrictReport != nil {
				var text strings.Builder
				res.StrictReport.WriteText(&text)
				t.Log(text.String())
			}
			if w := res.Warned(); len(w) != 2 || !slices.Contains(w, "umask") || !slices.Contains(w, "tz") {
				t.Errorf("warned variations %v, want umask and tz", w)
			}
			if slices.Contains(res.Decided(), "umask") || !slices.Contains(res.Decided(), "hostname") {
				t.Errorf("deciding variations %v", res.Decided())
			}
		})
		t.Run(tt.name+"/fail", func(t *testing.T) {
			res, err := rebuild.Verify(context.Background(), a, b, req(t), rebuild.WithStrictVariations(rebuild.StrictFail, s))
			var diff *rebuild.DiffError
			if !errors.Is(err, rebuild.ErrNotReproducible) || !errors.As(err, &diff) {
				t.Fatalf("err = %v, want a DiffError", err)
			}
			if diff.Class != rebuild.Pinned || !strings.Contains(err.Error(), "pinned variations") {
				t.Errorf("class %q (%v), want pinned", diff.Class, err)
			}
			if res == nil || len(res.Warnings) == 0 || !slices.Contains(res.Decided(), "umask") {
				t.Errorf("result %+v", res)
			}
		})
	}
	// A step that fails only under the pinned variations is one more thing
	// they change: a warning, or a failure with StrictFail.
	t.Run("step fails only under them", func(t *testing.T) {
		req := func(t *testing.T) builder.Request {
			return builder.Request{ContextDir: filepath.Join("testdata", "umask-check"), BaseImages: bases, OCILayout: filepath.Join(t.TempDir(), "out")}
		}
		res, err := rebuild.Verify(context.Background(), a, b, req(t), rebuild.WithStrictVariations(rebuild.StrictWarn, s))
		if err != nil {
			t.Fatalf("warn: %v", err)
		}
		if len(res.Warnings) != 1 || !strings.Contains(res.Warnings[0].Message, "failed in the strict rebuild") || res.Rebuild.Digest != res.Build.Digest {
			t.Errorf("warn: %+v", res.Warnings)
		}
		_, err = rebuild.Verify(context.Background(), a, b, req(t), rebuild.WithStrictVariations(rebuild.StrictFail, s))
		var sf *rebuild.StrictFailure
		if !errors.Is(err, rebuild.ErrNotReproducible) || !errors.As(err, &sf) {
			t.Errorf("fail: err = %v, want a StrictFailure", err)
		}
	})
	// An image the pinned variations do not change reproduces under them
	// without a third build.
	t.Run("unaffected", func(t *testing.T) {
		res, err := rebuild.Verify(context.Background(), a, b, builder.Request{
			ContextDir: filepath.Join("testdata", "explicit-modes"), BaseImages: bases,
			OCILayout: filepath.Join(t.TempDir(), "out"),
		}, rebuild.WithStrictVariations(rebuild.StrictFail, s))
		if err != nil {
			logDiff(t, err)
			t.Fatal(err)
		}
		if res.Strict == nil || res.Rebuild != res.Strict || len(res.Warnings) != 0 {
			t.Errorf("want the strict rebuild to decide alone: %+v", res)
		}
		if _, err := os.Stat(res.Build.OCILayout + "-rebuild"); err == nil {
			t.Error("a rebuild without the pinned variations ran although the strict one matched")
		}
	})
}

// A rebuild daemon that dies mid-build stops the build too, and the error
// says which daemon failed and why.
func TestDaemonCrashStopsBoth(t *testing.T) {
	bases := testenv.BaseImages(t)
	a, b, _, bd := builders(t)
	dir := t.TempDir()
	// The step would run for an hour: Verify waits for both builds, so its
	// returning at all shows the build was stopped when the rebuild died.
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte("FROM example.test/base:1\nRUN echo slow; sleep 3600\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	go func() {
		time.Sleep(3 * time.Second)
		pid := pidOf(t, bd.Info().StateDir)
		syscall.Kill(pid, syscall.SIGKILL)
	}()
	_, err := rebuild.Verify(context.Background(), a, b, builder.Request{ContextDir: dir, BaseImages: bases})
	if err == nil || !strings.Contains(err.Error(), "rebuild failed") {
		t.Fatalf("err = %v, want the rebuild named as failed", err)
	}
	if !errors.Is(err, isolation.ErrDaemonFailed) {
		t.Errorf("error does not say the daemon failed: %v", err)
	}
}

func pidOf(t *testing.T, dir string) int {
	b, err := os.ReadFile(filepath.Join(dir, "pid"))
	if err != nil {
		t.Error(err)
		return 0
	}
	var pid int
	for _, c := range strings.TrimSpace(string(b)) {
		pid = pid*10 + int(c-'0')
	}
	return pid
}

// The rebuild's CPUs are this machine's, all but one.
func TestRebuildCPUSet(t *testing.T) {
	cpus := rebuild.RebuildCPUSetForTest()
	if runtime.NumCPU() < 2 {
		if cpus != "" {
			t.Fatalf("CPU set %q on one CPU, want none", cpus)
		}
		return
	}
	parts := strings.Split(cpus, ",")
	if len(parts) != runtime.NumCPU()-1 {
		t.Fatalf("CPU set %q: %d CPUs, want %d", cpus, len(parts), runtime.NumCPU()-1)
	}
	for _, p := range parts {
		if n, err := strconv.Atoi(p); err != nil || n < 0 || n >= runtime.NumCPU() {
			t.Fatalf("CPU set %q: %q is not a CPU of this machine", cpus, p)
		}
	}
}
