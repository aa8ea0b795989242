package builder_test

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/containerd/containerd/v2/core/content"
	"github.com/containerd/containerd/v2/plugins/content/local"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/moby/buildkit/client"
	"github.com/moby/buildkit/client/llb"
	gateway "github.com/moby/buildkit/frontend/gateway/client"
	"github.com/tonistiigi/fsutil"

	"github.com/twinforge/twinforge/builder"
	"github.com/twinforge/twinforge/hermetic"
	"github.com/twinforge/twinforge/internal/offline"
	"github.com/twinforge/twinforge/internal/testenv"
	"github.com/twinforge/twinforge/isolation"
)

// loopbackServer records every request made to it: a service on the build
// host that no build may reach.
type loopbackServer struct {
	*httptest.Server
	mu   sync.Mutex
	seen []string
}

func newLoopbackServer(t *testing.T) *loopbackServer {
	t.Helper()
	s := &loopbackServer{}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.Server = &httptest.Server{Listener: ln, Config: &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.seen = append(s.seen, r.URL.Path)
		s.mu.Unlock()
		fmt.Fprintln(w, "reached")
	})}}
	s.Start()
	t.Cleanup(s.Close)
	return s
}

func (s *loopbackServer) requests() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.seen...)
}

// frontendImage is an OCI layout of a busybox image whose entrypoint
// fetches url: run as a frontend, it would call the loopback server.
func frontendImage(t *testing.T, url string) builder.BaseImage {
	t.Helper()
	entries, err := offline.Busybox(offline.DefaultBusybox)
	if err != nil {
		t.Fatal(err)
	}
	layer, err := offline.Layer(entries, true)
	if err != nil {
		t.Fatal(err)
	}
	img, err := offline.Image(v1.Config{
		Env:        []string{"PATH=/bin"},
		Entrypoint: []string{"/bin/busybox", "sh", "-c", "echo frontend-ran; /bin/busybox wget -q -O- " + url},
	}, v1.Platform{OS: "linux", Architecture: runtime.GOARCH}, layer)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "frontend")
	h, err := offline.WriteLayout(dir, img, "1")
	if err != nil {
		t.Fatal(err)
	}
	return builder.BaseImage{Name: "example.test/frontend:1", Digest: h.String(), Layout: dir}
}

func plainContext(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for name, data := range map[string]string{
		"Dockerfile": "FROM scratch\nCOPY hello /hello\n",
		"hello":      "hello\n",
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// A locked image named as BUILDKIT_SYNTAX would run as the build's
// frontend, on the build host's network. It is refused when the lock is
// made, when a lock holding it is checked, and by the builder when a
// request carries it anyway; and were the builder's check gone, the
// daemon would still not run it, and a container that is not a RUN step
// still reaches nothing on the build host: the loopback server sees no
// request at all.
func TestBuildKitSyntaxArgNeverRunsAFrontend(t *testing.T) {
	srv := newLoopbackServer(t)
	fe := frontendImage(t, srv.URL+"/frontend")
	ctxDir := plainContext(t)
	args := map[string]string{"BUILDKIT_SYNTAX": fe.Name}

	// The lock refuses it, naming the arg.
	_, err := hermetic.Create(t.Context(), hermetic.Request{
		ContextDir: ctxDir, BuildArgs: args, Images: map[string]string{fe.Name: "oci-layout:" + fe.Layout},
	})
	if !errors.Is(err, hermetic.ErrNotHermetic) || !strings.Contains(err.Error(), "BUILDKIT_SYNTAX") {
		t.Fatalf("lock: want a refusal naming BUILDKIT_SYNTAX, got %v", err)
	}
	// A lock written by hand with it is refused by its check.
	l, err := hermetic.Create(t.Context(), hermetic.Request{ContextDir: ctxDir})
	if err != nil {
		t.Fatal(err)
	}
	l.BuildArgs = args
	lockPath := filepath.Join(ctxDir, hermetic.DefaultFileName)
	data, err := l.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(lockPath, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := builder.FromLock(t.Context(), builder.LockedInput{Lock: l, LockPath: lockPath, ContextDir: ctxDir}); !errors.Is(err, builder.ErrRefused) || !strings.Contains(err.Error(), "BUILDKIT_SYNTAX") {
		t.Fatalf("build from the lock: want a refusal naming BUILDKIT_SYNTAX, got %v", err)
	}

	d := testenv.StartDaemon(t, isolation.WithName("build"))

	// Forced past the lock into a request, the builder refuses it.
	_, err = builder.New(d).Build(t.Context(), builder.Request{
		ContextDir: ctxDir, BuildArgs: args, BaseImages: []builder.BaseImage{fe}, OCILayout: filepath.Join(t.TempDir(), "out"),
	})
	if !errors.Is(err, builder.ErrRefused) || !strings.Contains(err.Error(), "BUILDKIT_SYNTAX") {
		t.Fatalf("builder: want a refusal naming BUILDKIT_SYNTAX, got %v", err)
	}

	// Past the builder too, as the unpinned request a client could send:
	// the daemon has no gateway frontend to run the image with.
	err = rawSolve(t, d, ctxDir, fe, map[string]string{"build-arg:BUILDKIT_SYNTAX": fe.Name})
	if got := srv.requests(); len(got) > 0 {
		t.Fatalf("the frontend image ran and reached the build host's loopback server: %v (solve: %v)", got, err)
	}
	if err == nil || !strings.Contains(err.Error(), "gateway.v0") {
		t.Fatalf("an unpinned BUILDKIT_SYNTAX solve: want the gateway frontend refused, got %v", err)
	}
	// With the builder's pin, the built-in frontend builds the Dockerfile
	// and never looks at BUILDKIT_SYNTAX.
	if err := rawSolve(t, d, ctxDir, fe, map[string]string{"build-arg:BUILDKIT_SYNTAX": fe.Name, "cmdline": ""}); err != nil {
		t.Fatalf("a pinned solve with BUILDKIT_SYNTAX: %v", err)
	}

	// And the image run anyway, as a container of the gateway API (the way
	// a frontend runs, with no network mode of its own), reaches nothing.
	out := runInGatewayContainer(t, d, fe, srv.URL+"/gateway-container")
	if !strings.Contains(out, "frontend-ran") {
		t.Fatalf("the image's entrypoint did not run, the test proves nothing:\n%s", out)
	}
	if got := srv.requests(); len(got) > 0 {
		t.Fatalf("the build host's loopback server was reached: %v\n%s", got, out)
	}
	if ifaces := interfaces(out); len(ifaces) != 1 || ifaces[0] != "lo" {
		t.Fatalf("the container has network interfaces %v, want loopback alone\n%s", ifaces, out)
	}
	t.Logf("container output:\n%s", out)
}

// interfaces lists the interface names of a /proc/net/dev dump.
func interfaces(procNetDev string) []string {
	var out []string
	for _, line := range strings.Split(procNetDev, "\n") {
		name, counters, ok := strings.Cut(line, ":")
		fields := strings.Fields(counters)
		if name = strings.TrimSpace(name); !ok || name == "" || strings.ContainsAny(name, " |") || len(fields) != 16 {
			continue
		}
		if strings.Trim(strings.Join(fields, ""), "0123456789") == "" {
			out = append(out, name)
		}
	}
	return out
}

// rawSolve sends the Dockerfile frontend the request of a build of ctxDir
// with fe as a named context (as the builder serves base images) and extra
// frontend options, bypassing the builder.
func rawSolve(t *testing.T, d isolation.Daemon, ctxDir string, fe builder.BaseImage, extra map[string]string) error {
	t.Helper()
	store, err := local.NewStore(fe.Layout)
	if err != nil {
		t.Fatal(err)
	}
	attrs := map[string]string{
		"filename":           "Dockerfile",
		"force-network-mode": "none",
		"context:" + fe.Name: "oci-layout://base0@" + fe.Digest,
	}
	for k, v := range extra {
		attrs[k] = v
	}
	fs, err := fsutil.NewFS(ctxDir)
	if err != nil {
		t.Fatal(err)
	}
	c, err := d.Client(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	_, err = c.Solve(ctx, nil, client.SolveOpt{
		Frontend:      "dockerfile.v0",
		FrontendAttrs: attrs,
		LocalMounts:   map[string]fsutil.FS{"context": fs, "dockerfile": fs},
		OCIStores:     map[string]content.Store{"base0": store},
	}, nil)
	return err
}

// runInGatewayContainer starts fe's entrypoint in a container of the
// gateway API with no network mode asked for, as BuildKit runs a gateway
// frontend, and returns what it printed.
func runInGatewayContainer(t *testing.T, d isolation.Daemon, fe builder.BaseImage, url string) string {
	t.Helper()
	store, err := local.NewStore(fe.Layout)
	if err != nil {
		t.Fatal(err)
	}
	c, err := d.Client(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	var out bytes.Buffer
	_, err = c.Build(ctx, client.SolveOpt{OCIStores: map[string]content.Store{"frontend": store}}, "", func(ctx context.Context, gw gateway.Client) (*gateway.Result, error) {
		def, err := llb.OCILayout(fe.Name+"@"+fe.Digest, llb.OCIStore(gw.BuildOpts().SessionID, "frontend")).Marshal(ctx)
		if err != nil {
			return nil, err
		}
		res, err := gw.Solve(ctx, gateway.SolveRequest{Definition: def.ToPB()})
		if err != nil {
			return nil, err
		}
		ref, err := res.SingleRef()
		if err != nil {
			return nil, err
		}
		ctr, err := gw.NewContainer(ctx, gateway.NewContainerRequest{Mounts: []gateway.Mount{{Dest: "/", Ref: ref}}})
		if err != nil {
			return nil, err
		}
		defer ctr.Release(context.WithoutCancel(ctx))
		proc, err := ctr.Start(ctx, gateway.StartRequest{
			Args:   []string{"/bin/busybox", "sh", "-c", "echo frontend-ran; cat /proc/net/dev; /bin/busybox wget -q -O- " + url + "; echo wget exit $?"},
			Stdout: nopCloser{&out}, Stderr: nopCloser{&out},
		})
		if err != nil {
			return nil, err
		}
		if err := proc.Wait(); err != nil {
			return nil, fmt.Errorf("container: %w\n%s", err, out.String())
		}
		return gateway.NewResult(), nil
	}, nil)
	if err != nil {
		t.Fatalf("gateway container: %v", err)
	}
	return out.String()
}

type nopCloser struct{ *bytes.Buffer }

func (nopCloser) Close() error { return nil }

// A daemon that built before (a remote one, say) keeps its cache mounts.
// Each build gets cache mounts of its own: what one build left in a cache
// mount is not there for the next, on the same daemon.
func TestCacheMountsStartEmptyOnAUsedDaemon(t *testing.T) {
	bases := testenv.BaseImages(t)
	d := testenv.StartDaemon(t, isolation.WithName("build"))
	b := builder.New(d)
	build := func(dockerfile string) string {
		t.Helper()
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(dockerfile), 0o644); err != nil {
			t.Fatal(err)
		}
		res, err := b.Build(t.Context(), builder.Request{ContextDir: dir, BaseImages: bases, OCILayout: filepath.Join(t.TempDir(), "out")})
		if err != nil {
			t.Fatal(err)
		}
		return fileInImage(t, res.OCILayout, res.Digest, "seen")
	}
	from := "FROM " + bases[0].Name + "\n"
	build(from + "RUN --mount=type=cache,id=shared,target=/cache echo planted > /cache/marker && echo wrote > /seen\n")
	if got := build(from + "RUN --mount=type=cache,id=shared,target=/cache cat /cache/marker > /seen 2>/dev/null || echo empty > /seen\n"); strings.TrimSpace(got) != "empty" {
		t.Fatalf("the second build found %q in its cache mount: the first build's cache reached it", got)
	}
}

// fileInImage returns the content of a file of the image's top layer.
func fileInImage(t *testing.T, dir, digest, name string) string {
	t.Helper()
	img := readLayout(t, dir, digest)
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	rc, err := layers[len(layers)-1].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err != nil {
			t.Fatalf("%s not in the top layer: %v", name, err)
		}
		if strings.TrimPrefix(h.Name, "./") == name {
			data, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			return string(data)
		}
	}
}
