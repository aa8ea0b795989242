package main

import (
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/twinforge/twinforge/internal/testenv"
)

func TestLockIsByteIdentical(t *testing.T) {
	c := newCLI(t)
	ctx := c.context("files-small")
	c.lock(ctx)
	first := readFile(t, filepath.Join(ctx, "twinforge.lock"))
	os.Remove(filepath.Join(ctx, "twinforge.lock"))
	c.lock(ctx)
	if second := readFile(t, filepath.Join(ctx, "twinforge.lock")); second != first {
		t.Fatalf("locking the same tree twice gave different files:\n%s\n%s", first, second)
	}
	r := c.lock(ctx)
	assertContains(t, "relock", r.stdout, "up to date")
}

func TestLockCheckFollowsEdits(t *testing.T) {
	c := newCLI(t)
	ctx := c.context("files-small")
	c.lock(ctx)
	c.must("lock", "--check", ctx)
	write(t, filepath.Join(ctx, "hello.txt"), "edited after locking\n")
	r := c.run("lock", "--check", ctx)
	if r.code != exitRefused {
		t.Fatalf("exit %d, want 4\n%s", r.code, r.stderr)
	}
	assertContains(t, "stderr", r.stderr, "hello.txt", "twinforge lock")
}

// Each refusal comes before any build step runs: no daemon is started.
func TestBuildRefusesBeforeAnyStep(t *testing.T) {
	testenv.BaseImages(t)
	c := newCLI(t)
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Write([]byte("payload\n"))
	}))
	defer srv.Close()
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())

	tests := []struct {
		name    string
		context string
		// prepare edits the context after it was locked (or instead).
		prepare func(t *testing.T, dir string)
		lock    bool
		want    []string
	}{
		{"file edited after locking", "files-small", func(t *testing.T, dir string) {
			write(t, filepath.Join(dir, "hello.txt"), "changed\n")
		}, true, []string{"hello.txt", "does not match the lock"}},
		{"file added after locking", "files-small", func(t *testing.T, dir string) {
			write(t, filepath.Join(dir, "extra.txt"), "new\n")
		}, true, []string{"extra.txt"}},
		{"malformed lock", "files-small", func(t *testing.T, dir string) {
			l := readFile(t, filepath.Join(dir, "twinforge.lock"))
			write(t, filepath.Join(dir, "twinforge.lock"), strings.Replace(l, `"platform":`, `"platform" `, 1))
		}, true, []string{"twinforge.lock", "line"}},
		{"unknown schema version", "files-small", func(t *testing.T, dir string) {
			l := readFile(t, filepath.Join(dir, "twinforge.lock"))
			write(t, filepath.Join(dir, "twinforge.lock"), strings.Replace(l, `"schemaVersion": 1`, `"schemaVersion": 7`, 1))
		}, true, []string{"schema", "7"}},
		{"hand-edited unpinned image", "files-small", func(t *testing.T, dir string) {
			l := readFile(t, filepath.Join(dir, "twinforge.lock"))
			i := strings.Index(l, `"digest": "sha256:576724`)
			if i < 0 {
				t.Fatalf("base image digest not in the lock:\n%s", l)
			}
			write(t, filepath.Join(dir, "twinforge.lock"), l[:i]+`"digest": "",`+l[i+len(`"digest": "sha256:576724e26ab11e71e78581ea8c4b606f90b0a9f7230b3d13238a76548d360d0a",`):])
		}, true, []string{"example.test/base:1"}},
		{"image the lock does not pin", "two-stage", func(t *testing.T, dir string) {
			// A Dockerfile changed to use another image, with its lock
			// hand-edited to match the new tree but not to pin the image.
			df := strings.Replace(readFile(t, filepath.Join(dir, "Dockerfile")), "FROM example.test/base:1\nCOPY", "FROM example.test/other:2\nCOPY", 1)
			write(t, filepath.Join(dir, "Dockerfile"), df)
			relockKeepingImages(t, c, dir)
		}, true, []string{"example.test/other:2", "line 3", "twinforge lock"}},
		{"lock made for another context", "files-small", func(t *testing.T, dir string) {
			other := c.context("step-fails")
			c.lock(other)
			b, _ := os.ReadFile(filepath.Join(other, "twinforge.lock"))
			write(t, filepath.Join(dir, "twinforge.lock"), string(b))
		}, true, []string{"does not match the lock"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := c.context(tt.context)
			if tt.lock {
				c.lock(ctx)
			}
			tt.prepare(t, ctx)
			r := c.run("build", "--progress", "plain", ctx)
			if r.code != exitRefused {
				t.Fatalf("exit %d, want 4\n%s", r.code, r.stderr)
			}
			assertContains(t, "stderr", r.stderr, tt.want...)
			if strings.Contains(r.stderr, "#1 ") {
				t.Error("a build step ran before the refusal")
			}
			if _, err := os.Stat(filepath.Join(c.state, "daemons")); err == nil {
				entries, _ := os.ReadDir(filepath.Join(c.state, "daemons"))
				if len(entries) > 0 {
					t.Errorf("daemons left: %v", entries)
				}
			}
		})
	}

	t.Run("URL fetched and pinned at lock time", func(t *testing.T) {
		ctx := c.context("add-url")
		write(t, filepath.Join(ctx, "Dockerfile"), strings.ReplaceAll(readFile(t, filepath.Join(ctx, "Dockerfile")), "PORT", port))
		c.lock(ctx)
		l := readFile(t, filepath.Join(ctx, "twinforge.lock"))
		assertContains(t, "lock", l, "http://127.0.0.1:"+port+"/payload.txt", "sha256:")
	})
	t.Run("URL that cannot be pinned", func(t *testing.T) {
		ctx := c.context("add-url")
		write(t, filepath.Join(ctx, "Dockerfile"), strings.ReplaceAll(readFile(t, filepath.Join(ctx, "Dockerfile")), "PORT", "1"))
		r := c.run("lock", "--image", "example.test/base:1=oci-layout:"+testenv.BaseImages(t)[0].Layout, ctx)
		if r.code != exitRefused {
			t.Fatalf("exit %d, want 4\n%s", r.code, r.stderr)
		}
		assertContains(t, "stderr", r.stderr, "http://127.0.0.1:1/payload.txt")
	})
	t.Run("base image not found", func(t *testing.T) {
		ctx := c.context("two-stage")
		r := c.run("lock", ctx)
		if r.code != exitRefused {
			t.Fatalf("exit %d, want 4\n%s", r.code, r.stderr)
		}
		assertContains(t, "stderr", r.stderr, "example.test/base:1", "--image")
	})
}

// relockKeepingImages relocks a context whose Dockerfile now also names
// example.test/other:2, then deletes that image from the lock: a hand edit
// that passes the tree check, so only the pinning check can refuse.
func relockKeepingImages(t *testing.T, c *cliRunner, dir string) {
	t.Helper()
	base := testenv.BaseImages(t)[0]
	c.must("lock", "--image", "example.test/base:1=oci-layout:"+base.Layout, "--image", "example.test/other:2=oci-layout:"+base.Layout, dir)
	lock := readFile(t, filepath.Join(dir, "twinforge.lock"))
	entry := "    {\n      \"name\": \"example.test/other:2\""
	start := strings.Index(lock, entry)
	if start < 0 {
		t.Fatalf("other image not in the lock:\n%s", lock)
	}
	end := start + strings.Index(lock[start:], "}") + 1
	edited := strings.Replace(lock[:start]+lock[end:], "},\n\n  ]", "}\n  ]", 1)
	edited = strings.Replace(edited, "},\n  ]", "}\n  ]", 1)
	write(t, filepath.Join(dir, "twinforge.lock"), edited)
}

// TestLockVerifyModules: lock --verify-modules proves a vendored Go
// service's modules in the Go checksum database through the module proxy
// and keeps the tree head; the same service with one vendored file edited
// is refused with exit 4, naming the module and the file.
func TestLockVerifyModules(t *testing.T) {
	if testing.Short() {
		t.Skip("reaches the Go module proxy; skipped with -short")
	}
	c := newCLI(t)
	dir := filepath.Join(t.TempDir(), "vendored")
	if err := os.CopyFS(dir, os.DirFS(filepath.Join("..", "..", "hermetic", "gomod", "testdata", "vendored"))); err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(dir, "Dockerfile"), "FROM scratch\nCOPY . /src\n")
	r := c.must("lock", "--verify-modules", dir)
	assertContains(t, "lock", r.stdout, "1 Go modules", "proven in sum.golang.org")
	lock := readFile(t, filepath.Join(dir, "twinforge.lock"))
	assertContains(t, "lock file", lock, `"path": "github.com/google/uuid"`, `"goSumDB"`, `"treeHead": "go.sum database tree`)

	f := filepath.Join(dir, "vendor", "github.com", "google", "uuid", "version4.go")
	os.Chmod(f, 0o644)
	write(t, f, readFile(t, f)+"\nfunc init() { println(\"hello from a patched dependency\") }\n")
	r = c.run("lock", "--verify-modules", dir)
	if r.code != exitRefused {
		t.Fatalf("exit %d, want 4\n%s", r.code, r.stderr)
	}
	assertContains(t, "stderr", r.stderr, "github.com/google/uuid@v1.6.0", "version4.go", "edited")

	// A go.sum line the checksum database contradicts.
	other := filepath.Join(t.TempDir(), "contradicted")
	if err := os.CopyFS(other, os.DirFS(filepath.Join("..", "..", "hermetic", "gomod", "testdata", "vendored"))); err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(other, "Dockerfile"), "FROM scratch\nCOPY . /src\n")
	sum := filepath.Join(other, "go.sum")
	os.Chmod(sum, 0o644)
	write(t, sum, strings.Replace(readFile(t, sum), "h1:TIyPZe4MgqvfeYDBFedMoGGpEw/LqOeaOT+nhxU+yHo=", "h1:TIyPZe4MgqvfeYDBFedMoGGpEw/LqOeaOT+nhxU+yHX=", 1))
	r = c.run("lock", "--verify-modules", other)
	if r.code != exitRefused {
		t.Fatalf("contradicted go.sum: exit %d, want 4\n%s", r.code, r.stderr)
	}
	assertContains(t, "stderr", r.stderr, "github.com/google/uuid@v1.6.0/go.mod", "checksum database")
}

// A BUILDKIT_* build arg would steer BuildKit itself (BUILDKIT_SYNTAX runs
// an image as the frontend): lock refuses it, and a lock edited to hold it
// is refused by lock --check and build, each naming the arg, before any
// daemon starts.
func TestBuildKitBuildArgsRefused(t *testing.T) {
	c := newCLI(t)
	ctx := c.context("files-small")
	base := testenv.BaseImages(t)[0]
	r := c.run("lock", "--image", base.Name+"=oci-layout:"+base.Layout, "--build-arg", "BUILDKIT_SYNTAX="+base.Name, ctx)
	if r.code != exitRefused {
		t.Fatalf("lock: exit %d, want 4\n%s", r.code, r.stderr)
	}
	assertContains(t, "lock stderr", r.stderr, "BUILDKIT_SYNTAX")

	c.lock(ctx)
	lockPath := filepath.Join(ctx, "twinforge.lock")
	l := readFile(t, lockPath)
	write(t, lockPath, strings.Replace(l, `"platform":`, `"buildArgs": {"BUILDKIT_SYNTAX": "`+base.Name+`"},`+"\n  "+`"platform":`, 1))
	for _, args := range [][]string{{"lock", "--check", ctx}, {"build", "--progress", "plain", ctx}} {
		r := c.run(args...)
		if r.code != exitRefused {
			t.Fatalf("%s: exit %d, want 4\n%s", args[0], r.code, r.stderr)
		}
		assertContains(t, args[0]+" stderr", r.stderr, "BUILDKIT_SYNTAX")
	}
	c.assertClean()
}

// TestLockVerifyModulesGoService: the vendored example service's module
// is proven in the Go checksum database; with one vendored file edited the
// lock is refused, naming the module and the file.
func TestLockVerifyModulesGoService(t *testing.T) {
	if testing.Short() {
		t.Skip("reaches the Go module proxy; skipped with -short")
	}
	c := newCLI(t)
	dir := filepath.Join(t.TempDir(), "goservice")
	if err := os.CopyFS(dir, os.DirFS(filepath.Join("..", "..", "examples", "goservice"))); err != nil {
		t.Fatal(err)
	}
	os.Remove(filepath.Join(dir, "twinforge.lock"))
	r := c.lock(dir, "--verify-modules")
	assertContains(t, "lock", r.stdout, "proven in sum.golang.org")
	router := filepath.Join(dir, "vendor", "github.com", "julienschmidt", "httprouter", "router.go")
	os.Chmod(router, 0o644)
	write(t, router, strings.Replace(readFile(t, router), "package httprouter", "package httprouter // patched", 1))
	args := []string{"lock", "--verify-modules"}
	for _, b := range testenv.BaseImages(t) {
		args = append(args, "--image", b.Name+"=oci-layout:"+b.Layout)
	}
	r = c.run(append(args, dir)...)
	if r.code != exitRefused {
		t.Fatalf("edited vendored file: exit %d, want 4\n%s", r.code, r.stderr)
	}
	assertContains(t, "stderr", r.stderr, "github.com/julienschmidt/httprouter@v1.3.0", "router.go", "edited")
}
