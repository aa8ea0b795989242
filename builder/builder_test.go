package builder_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/validate"

	"github.com/twinforge/twinforge/builder"
	"github.com/twinforge/twinforge/internal/testenv"
	"github.com/twinforge/twinforge/isolation"
)

func example(t *testing.T, name string) string {
	return filepath.Join(testenv.RepoRoot(t), "examples", name)
}

// Each example, built at the same time by two daemons that share nothing,
// one on overlayfs and one on the native snapshotter, gives one digest.
func TestExamplesReproduceAcrossDaemons(t *testing.T) {
	bases := testenv.BaseImages(t)
	a := builder.New(testenv.StartDaemon(t, isolation.WithName("build")))
	b := builder.New(testenv.StartDaemon(t, isolation.WithName("rebuild"), isolation.WithSnapshotter("native")))
	for _, ex := range []string{"hello", "files"} {
		t.Run(ex, func(t *testing.T) {
			out := t.TempDir()
			var wg sync.WaitGroup
			results := make([]*builder.Result, 2)
			errs := make([]error, 2)
			for i, bld := range []builder.Builder{a, b} {
				wg.Add(1)
				go func() {
					defer wg.Done()
					results[i], errs[i] = bld.Build(context.Background(), builder.Request{
						ContextDir:      example(t, ex),
						BaseImages:      bases,
						SourceDateEpoch: 1700000000,
						OCILayout:       filepath.Join(out, string(rune('a'+i))),
					})
				}()
			}
			wg.Wait()
			for _, err := range errs {
				if err != nil {
					t.Fatal(err)
				}
			}
			if results[0].Digest != results[1].Digest {
				t.Fatalf("digests differ: %s vs %s", results[0].Digest, results[1].Digest)
			}
			img := readLayout(t, results[0].OCILayout, results[0].Digest)
			if err := validate.Image(img); err != nil {
				t.Fatalf("layout image does not validate: %v", err)
			}
			cf, err := img.ConfigFile()
			if err != nil {
				t.Fatal(err)
			}
			if cf.Created.Unix() != 1700000000 {
				t.Errorf("config created = %v, want SOURCE_DATE_EPOCH", cf.Created)
			}
			mt, _ := img.MediaType()
			if mt != "application/vnd.oci.image.manifest.v1+json" || results[0].MediaType != string(mt) {
				t.Errorf("media type %s / %s, want an OCI manifest", mt, results[0].MediaType)
			}
			skopeoDigest(t, results[0].OCILayout, results[0].Digest)
		})
	}
}

func readLayout(t *testing.T, dir, digest string) v1.Image {
	t.Helper()
	p, err := layout.FromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	h, err := v1.NewHash(digest)
	if err != nil {
		t.Fatal(err)
	}
	img, err := p.Image(h)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// skopeoDigest reads the layout with an outside tool.
func skopeoDigest(t *testing.T, dir, want string) {
	t.Helper()
	out, err := exec.Command("skopeo", "inspect", "--format", "{{.Digest}}", "oci:"+dir).CombinedOutput()
	if err != nil {
		t.Fatalf("skopeo inspect: %v\n%s", err, out)
	}
	if got := strings.TrimSpace(string(out)); got != want {
		t.Fatalf("skopeo reads digest %s, want %s", got, want)
	}
}

func TestBuildRejectsBadInput(t *testing.T) {
	bases := testenv.BaseImages(t)
	d := testenv.StartDaemon(t)
	b := builder.New(d)
	notLayout := t.TempDir()
	if err := os.WriteFile(filepath.Join(notLayout, "precious.txt"), []byte("keep me"), 0o600); err != nil {
		t.Fatal(err)
	}
	aFile := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(aFile, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		req     builder.Request
		wantErr error
		want    []string
	}{
		{"context missing", builder.Request{ContextDir: "/nonexistent/ctx"}, builder.ErrInvalidRequest, []string{"/nonexistent/ctx"}},
		{"context is a file", builder.Request{ContextDir: aFile}, builder.ErrInvalidRequest, []string{"not a directory"}},
		{"no Dockerfile", builder.Request{ContextDir: t.TempDir()}, builder.ErrInvalidRequest, []string{"no Dockerfile"}},
		{"syntax error", builder.Request{ContextDir: "testdata/syntax-error", BaseImages: bases}, builder.ErrBuildFailed, []string{"COPPY", "line 3"}},
		{"base image not provided", builder.Request{ContextDir: "testdata/unknown-base", BaseImages: bases}, builder.ErrBuildFailed, []string{"example.test/nope:2"}},
		{"URL not allowed", builder.Request{ContextDir: "testdata/fetch-url", BaseImages: bases}, builder.ErrBuildFailed, []string{"http://127.0.0.1:9/payload", "denied"}},
		{"step fails", builder.Request{ContextDir: "testdata/step-fails", BaseImages: bases}, builder.ErrBuildFailed, []string{"exit code: 7", "widget broke: no space left", "preparing the widget"}},
		{"destination is not a layout", builder.Request{ContextDir: example(t, "files"), BaseImages: bases, OCILayout: notLayout}, builder.ErrInvalidRequest, []string{"not an OCI layout"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := tt.req.OCILayout
			if out == "" {
				out = filepath.Join(t.TempDir(), "out")
				tt.req.OCILayout = out
			}
			_, err := b.Build(context.Background(), tt.req)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not mention %q:\n%v", w, err)
				}
			}
			assertNoPartialLayout(t, out)
		})
	}
	if b, _ := os.ReadFile(filepath.Join(notLayout, "precious.txt")); string(b) != "keep me" {
		t.Error("a failed build touched a directory that was not a layout")
	}
}

// assertNoPartialLayout checks that a failed build left neither the layout
// nor its temporary sibling.
func assertNoPartialLayout(t *testing.T, out string) {
	t.Helper()
	if fi, err := os.Stat(out); err == nil && fi.IsDir() {
		if _, err := os.Stat(filepath.Join(out, "index.json")); err == nil {
			t.Errorf("layout written at %s by a failed build", out)
		}
	}
	siblings, _ := filepath.Glob(filepath.Join(filepath.Dir(out), "."+filepath.Base(out)+".tmp-*"))
	if len(siblings) > 0 {
		t.Errorf("temporary layout left: %v", siblings)
	}
}

// A rebuilt layout replaces the earlier one at the same path atomically.
func TestBuildReplacesEarlierLayout(t *testing.T) {
	bases := testenv.BaseImages(t)
	b := builder.New(testenv.StartDaemon(t))
	out := filepath.Join(t.TempDir(), "files")
	var digests []string
	for _, epoch := range []int64{1, 2} {
		res, err := b.Build(context.Background(), builder.Request{ContextDir: example(t, "files"), BaseImages: bases, OCILayout: out, SourceDateEpoch: epoch})
		if err != nil {
			t.Fatal(err)
		}
		digests = append(digests, res.Digest)
	}
	if digests[0] == digests[1] {
		t.Fatal("different SOURCE_DATE_EPOCH gave the same digest")
	}
	readLayout(t, out, digests[1])
	p, _ := layout.FromPath(out)
	idx, _ := p.ImageIndex()
	m, _ := idx.IndexManifest()
	if len(m.Manifests) != 1 {
		t.Errorf("layout holds %d manifests, want only the new one", len(m.Manifests))
	}
}

// A build sent to a remote buildkitd over mutual TLS gives the same digest
// as a private daemon.
func TestBuildOnRemoteTLSDaemon(t *testing.T) {
	bases := testenv.BaseImages(t)
	dir := t.TempDir()
	certs := testenv.NewPKI(t, dir)
	port := testenv.FreePort(t)
	testenv.StartDaemon(t, isolation.WithTLSListener("127.0.0.1:"+port, certs.ServerCert, certs.ServerKey, certs.CA))
	r, err := isolation.Remote(context.Background(), "build", "tcp://127.0.0.1:"+port, &isolation.TLS{CACert: certs.CA, Cert: certs.ClientCert, Key: certs.ClientKey})
	if err != nil {
		t.Fatal(err)
	}
	local := builder.New(testenv.StartDaemon(t))
	req := builder.Request{ContextDir: example(t, "files"), BaseImages: bases, SourceDateEpoch: 42}
	req.OCILayout = filepath.Join(dir, "remote")
	rr, err := builder.New(r).Build(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	req.OCILayout = filepath.Join(dir, "local")
	lr, err := local.Build(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if rr.Digest != lr.Digest || !rr.Builder.Remote {
		t.Fatalf("remote %s (remote=%v) vs local %s", rr.Digest, rr.Builder.Remote, lr.Digest)
	}
}

// A checkout's file times are not source: a context file older than
// SOURCE_DATE_EPOCH, which BuildKit's rewrite would keep, and the same file
// checked out now give one digest.
func TestContextFileTimesDoNotMatter(t *testing.T) {
	bases := testenv.BaseImages(t)
	b := builder.New(testenv.StartDaemon(t))
	var digests []string
	for _, mtime := range []time.Time{time.Unix(1000, 0), time.Now()} {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte("FROM example.test/base:1\nCOPY data.txt /data.txt\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		data := filepath.Join(dir, "data.txt")
		if err := os.WriteFile(data, []byte("data\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(data, mtime, mtime); err != nil {
			t.Fatal(err)
		}
		res, err := b.Build(context.Background(), builder.Request{ContextDir: dir, BaseImages: bases, SourceDateEpoch: 1700000000, OCILayout: filepath.Join(t.TempDir(), "out")})
		if err != nil {
			t.Fatal(err)
		}
		digests = append(digests, res.Digest)
	}
	if digests[0] != digests[1] {
		t.Fatalf("file times changed the image: %s vs %s", digests[0], digests[1])
	}
}

// A context file edited between two builds on one daemon, to the same
// size (its time is SOURCE_DATE_EPOCH either way), reaches the second
// build: the image is the one a fresh daemon builds from the edited file.
func TestContextEditKeepingSizeOnOneDaemon(t *testing.T) {
	bases := testenv.BaseImages(t)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte("FROM example.test/base:1\nCOPY data.txt /data.txt\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	build := func(b builder.Builder, content string) string {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, "data.txt"), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		res, err := b.Build(context.Background(), builder.Request{ContextDir: dir, BaseImages: bases, SourceDateEpoch: 1700000000, OCILayout: filepath.Join(t.TempDir(), "out")})
		if err != nil {
			t.Fatal(err)
		}
		return res.Digest
	}
	kept := builder.New(testenv.StartDaemon(t))
	first, second := build(kept, "one\n"), build(kept, "two\n")
	if first == second {
		t.Fatal("the edit did not reach the second build: both gave " + first)
	}
	if fresh := build(builder.New(testenv.StartDaemon(t)), "two\n"); fresh != second {
		t.Fatalf("the second build on the kept daemon gave %s, a fresh daemon %s", second, fresh)
	}
}
