package rebuild_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twinforge/twinforge/builder"
	"github.com/twinforge/twinforge/internal/testenv"
	"github.com/twinforge/twinforge/isolation"
	"github.com/twinforge/twinforge/rebuild"
)

func builders(t *testing.T) (builder.Builder, builder.Builder, isolation.Daemon) {
	t.Helper()
	a := testenv.StartDaemon(t, isolation.WithName("build"))
	b := testenv.StartDaemon(t, rebuild.DaemonOptions(testenv.Binary(t, "twinforge-runc-shim"))...)
	return builder.New(a), builder.New(b), b
}

func TestExamplesReproduceUnderAllVariations(t *testing.T) {
	bases := testenv.BaseImages(t)
	a, b, _ := builders(t)
	for _, ex := range []string{"hello", "files"} {
		t.Run(ex, func(t *testing.T) {
			res, err := rebuild.Verify(context.Background(), a, b, builder.Request{
				ContextDir:      filepath.Join(testenv.RepoRoot(t), "examples", ex),
				BaseImages:      bases,
				SourceDateEpoch: 1700000000,
				OCILayout:       filepath.Join(t.TempDir(), ex),
			})
			if err != nil {
				var diff *rebuild.DiffError
				if errors.As(err, &diff) && diff.Report != nil {
					var text strings.Builder
					diff.Report.WriteText(&text)
					t.Log(text.String())
				}
				t.Fatal(err)
			}
			if res.Build.Digest != res.Rebuild.Digest {
				t.Fatalf("digests differ without an error: %s %s", res.Build.Digest, res.Rebuild.Digest)
			}
			names := map[string]bool{}
			for _, v := range res.Variations {
				names[v.Name] = true
			}
			for _, want := range []string{"start offset", "hostname", "ulimit", "snapshotter", "cpus", "umask", "tz", "daemon"} {
				if !names[want] {
					t.Errorf("variation %q not applied: %v", want, res.Variations)
				}
			}
			for _, dir := range []string{res.Build.OCILayout, res.Rebuild.OCILayout} {
				if _, err := os.Stat(filepath.Join(dir, "index.json")); err != nil {
					t.Errorf("layout not kept: %v", err)
				}
			}
		})
	}
}

// Each kind of nondeterminism is caught, and the diff names the file.
func TestNondeterminismIsCaught(t *testing.T) {
	bases := testenv.BaseImages(t)
	a, b, _ := builders(t)
	tests := []struct{ name, file string }{
		{"clock", "built-at"},
		{"urandom", "random.bin"},
		{"hostname", "etc/built-on"},
		{"umask", "data/created-with-umask"},
		{"cpus", "etc/cpus"},
		{"tz", "etc/timezone-at-build"},
		{"ulimit", "etc/open-files"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := rebuild.Verify(context.Background(), a, b, builder.Request{
				ContextDir: filepath.Join("testdata", tt.name),
				BaseImages: bases,
				OCILayout:  filepath.Join(t.TempDir(), "out"),
			})
			if !errors.Is(err, rebuild.ErrNotReproducible) {
				t.Fatalf("err = %v, want ErrNotReproducible", err)
			}
			var diff *rebuild.DiffError
			if !errors.As(err, &diff) || diff.Report == nil {
				t.Fatalf("no diff report: %v", err)
			}
			var text strings.Builder
			if err := diff.Report.WriteText(&text); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(text.String(), tt.file) || !strings.Contains(err.Error(), tt.file) {
				t.Errorf("the diff does not name %s:\n%s\n%v", tt.file, text.String(), err)
			}
		})
	}
}

// A rebuild daemon that dies mid-build stops the build too, and the error
// says which daemon failed and why.
func TestDaemonCrashStopsBoth(t *testing.T) {
	bases := testenv.BaseImages(t)
	a, b, bd := builders(t)
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
