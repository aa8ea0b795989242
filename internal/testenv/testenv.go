// Package testenv finds the real components twinforge's tests run against
// (buildkitd, runc, the examples' base images) and fails a test that needs
// one that is missing, with the command that provides it. Tests that need a
// real daemon are skipped with -short only.
package testenv

import (
	"context"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/sirupsen/logrus"

	"github.com/twinforge/twinforge/builder"
	"github.com/twinforge/twinforge/internal/offline"
	"github.com/twinforge/twinforge/isolation"
)

func init() {
	// containerd's content store warns through logrus about every layout on
	// a file system without fs-verity; the CLI quiets it the same way.
	logrus.SetLevel(logrus.ErrorLevel)
}

// RepoRoot is the repository's top directory.
func RepoRoot(t testing.TB) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("cannot locate the repository")
	}
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// Binary returns a program the Makefile builds into bin/, or one on PATH.
// TWINFORGE_BIN overrides the directory.
func Binary(t testing.TB, name string) string {
	t.Helper()
	dir := os.Getenv("TWINFORGE_BIN")
	if dir == "" {
		dir = filepath.Join(RepoRoot(t), "bin")
	}
	if p := filepath.Join(dir, name); isExecutable(p) {
		return p
	}
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	t.Fatalf("%s not found in %s or on PATH: run `make deps`", name, dir)
	return ""
}

func isExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0
}

// NeedDaemon skips a test under -short and fails it when the daemon cannot
// run here at all.
func NeedDaemon(t testing.TB) {
	t.Helper()
	if testing.Short() {
		t.Skip("needs a real buildkitd; skipped with -short")
	}
	if os.Geteuid() != 0 {
		t.Fatal("buildkitd with runc needs root")
	}
	if _, err := exec.LookPath("runc"); err != nil {
		t.Fatal("runc not found: run `make deps` (apt-get install runc)")
	}
}

// Logger writes the package's logs into the test log.
func Logger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) { w.t.Log(string(p)); return len(p), nil }

// StartDaemon starts a private buildkitd for the test, stopped at cleanup.
func StartDaemon(t testing.TB, opts ...isolation.Option) isolation.Daemon {
	t.Helper()
	NeedDaemon(t)
	base := []isolation.Option{
		isolation.WithStateDir(t.TempDir()),
		isolation.WithBuildkitd(Binary(t, "buildkitd")),
		isolation.WithLogger(Logger(t)),
	}
	d, err := isolation.Start(context.Background(), append(base, opts...)...)
	if err != nil {
		t.Fatalf("starting buildkitd: %v", err)
	}
	t.Cleanup(func() {
		if err := d.Close(); err != nil {
			t.Errorf("stopping buildkitd: %v", err)
		}
	})
	return d
}

var (
	layoutsOnce sync.Once
	layouts     []builder.BaseImage
	layoutsErr  error
)

// BaseImages returns the examples' base images, making their layouts under
// examples/*/out with the same code as `make examples` if they are missing.
func BaseImages(t testing.TB) []builder.BaseImage {
	t.Helper()
	layoutsOnce.Do(func() {
		root := RepoRoot(t)
		base := filepath.Join(root, "examples", "base", "out")
		golang := filepath.Join(root, "examples", "golang", "out")
		goroot, err := offline.GoRoot()
		if err != nil {
			layoutsErr = err
			return
		}
		version, err := offline.GoVersion(goroot)
		if err != nil {
			layoutsErr = err
			return
		}
		specs := []struct {
			dir, name, tag string
			make           func() (v1.Image, error)
		}{
			{base, offline.BaseName, offline.BaseTag, func() (v1.Image, error) { return offline.Base(offline.DefaultBusybox) }},
			{golang, offline.GolangName, version, func() (v1.Image, error) { return offline.Golang(offline.DefaultBusybox, goroot) }},
		}
		for _, s := range specs {
			d, err := existingDigest(s.dir)
			if err != nil {
				img, err := s.make()
				if err != nil {
					layoutsErr = err
					return
				}
				h, err := offline.WriteLayout(s.dir, img, s.tag)
				if err != nil {
					layoutsErr = err
					return
				}
				d = h.String()
			}
			layouts = append(layouts, builder.BaseImage{Name: s.name + ":" + s.tag, Digest: d, Layout: s.dir})
		}
	})
	if layoutsErr != nil {
		t.Fatalf("making the examples' base images: %v", layoutsErr)
	}
	return layouts
}

func existingDigest(dir string) (string, error) {
	p, err := layout.FromPath(dir)
	if err != nil {
		return "", err
	}
	idx, err := p.ImageIndex()
	if err != nil {
		return "", err
	}
	m, err := idx.IndexManifest()
	if err != nil {
		return "", err
	}
	if len(m.Manifests) != 1 {
		return "", os.ErrNotExist
	}
	return m.Manifests[0].Digest.String(), nil
}

// LogWriter writes what a program logs into the test log.
func LogWriter(t testing.TB) io.Writer { return testWriter{t} }
