package main

import (
	"archive/tar"
	"compress/gzip"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/random"

	"github.com/twinforge/twinforge/internal/testenv"
)

// Signing material and tokens never enter a build container: a RUN step
// that dumps its whole environment records none of them.
func TestTokensNeverReachBuildSteps(t *testing.T) {
	testenv.NeedDaemon(t)
	c := newCLI(t)
	ctx := c.context("env-dump")
	c.lock(ctx)
	const secret = "tok-4f1d2e-never-in-a-build"
	for _, k := range []string{"SIGSTORE_ID_TOKEN", "TWINFORGE_IDENTITY_TOKEN", "COSIGN_PASSWORD", "ACTIONS_ID_TOKEN_REQUEST_TOKEN", "HTTPS_PROXY"} {
		t.Setenv(k, secret)
	}
	out := filepath.Join(t.TempDir(), "img")
	c.must("build", "--no-rebuild", "--progress", "quiet", "--oci-layout", out, ctx)
	found := false
	blobs, _ := filepath.Glob(filepath.Join(out, "blobs", "sha256", "*"))
	for _, b := range blobs {
		content := layerText(t, b)
		if strings.Contains(content, "build-env") {
			found = true
		}
		if strings.Contains(content, secret) {
			t.Fatalf("a secret from twinforge's environment reached the image (blob %s)", filepath.Base(b))
		}
	}
	if !found {
		t.Fatal("the environment dump is not in the image: the test proves nothing")
	}
}

// layerText is a blob's bytes, and for a gzip tar layer its file names and
// contents too.
func layerText(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		b, _ := os.ReadFile(path)
		return string(b)
	}
	var sb strings.Builder
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if err != nil {
			break
		}
		sb.WriteString(h.Name + "\n")
		io.Copy(&sb, tr)
	}
	return sb.String()
}

// lock keeps the base image digest it pinned while the layout changes;
// lock --update re-resolves it.
func TestLockUpdateReresolves(t *testing.T) {
	c := newCLI(t)
	base := filepath.Join(t.TempDir(), "base")
	writeLayout := func() string {
		img, err := random.Image(512, 1)
		if err != nil {
			t.Fatal(err)
		}
		os.RemoveAll(base)
		p, err := layout.Write(base, empty.Index)
		if err != nil {
			t.Fatal(err)
		}
		if err := p.AppendImage(img, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": "1"})); err != nil {
			t.Fatal(err)
		}
		d, _ := img.Digest()
		return d.String()
	}
	first := writeLayout()
	ctx := c.context("files-small")
	c.must("lock", "--image", "example.test/base:1=oci-layout:"+base, ctx)
	lockPath := filepath.Join(ctx, "twinforge.lock")
	if !strings.Contains(readFile(t, lockPath), first) {
		t.Fatalf("lock does not pin %s", first)
	}
	second := writeLayout()
	// Without --update the old pin is kept, and the layout no longer holds it.
	if r := c.run("lock", ctx); r.code != exitRefused || !strings.Contains(r.stderr, "--update") && !strings.Contains(r.stderr, first) {
		t.Fatalf("relock without --update: exit %d\n%s", r.code, r.stderr)
	}
	c.must("lock", "--update", ctx)
	l := readFile(t, lockPath)
	if !strings.Contains(l, second) || strings.Contains(l, first) {
		t.Fatalf("lock --update did not re-resolve to %s:\n%s", second, l)
	}
}
