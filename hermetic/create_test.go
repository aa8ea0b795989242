package hermetic

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// writeLayout writes an OCI layout with one random image per tag and
// returns the layout path and the digests by tag.
func writeLayout(t *testing.T, dir string, tags ...string) map[string]string {
	t.Helper()
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	digests := map[string]string{}
	for _, tag := range tags {
		img, err := random.Image(64, 1)
		if err != nil {
			t.Fatal(err)
		}
		var opts []layout.Option
		if tag != "" {
			opts = append(opts, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": tag}))
		}
		if err := p.AppendImage(img, opts...); err != nil {
			t.Fatal(err)
		}
		d, err := img.Digest()
		if err != nil {
			t.Fatal(err)
		}
		digests[tag] = d.String()
	}
	return digests
}

// baseRequest returns a request for the testdata context with the base
// image mapped to a fresh single-image OCI layout placed beside the context.
func baseRequest(t *testing.T) (Request, string) {
	t.Helper()
	ctxDir := copyTree(t, "testdata/context")
	layoutDir := filepath.Join(t.TempDir(), "base")
	d := writeLayout(t, layoutDir, "1")
	return Request{
		ContextDir: ctxDir,
		Platform:   "linux/amd64",
		Images:     map[string]string{"example.test/base:1": "oci-layout:" + layoutDir},
	}, d["1"]
}

func TestCreateDeterministic(t *testing.T) {
	req, digest := baseRequest(t)
	var outs [][]byte
	for range 2 {
		l, err := Create(t.Context(), req)
		if err != nil {
			t.Fatal(err)
		}
		b, err := l.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		outs = append(outs, b)
	}
	if !bytes.Equal(outs[0], outs[1]) {
		t.Fatalf("two locks of the same tree differ:\n%s\n%s", outs[0], outs[1])
	}
	l, err := Parse(outs[0])
	if err != nil {
		t.Fatal(err)
	}
	if l.Source.Kind != SourceKindTree || l.SourceDateEpoch != 0 || l.Dockerfile.Path != "Dockerfile" {
		t.Errorf("source = %+v epoch %d dockerfile %+v", l.Source, l.SourceDateEpoch, l.Dockerfile)
	}
	if len(l.Images) != 1 || l.Images[0].Digest != digest || !strings.HasPrefix(l.Images[0].Location, "oci-layout:../") {
		t.Errorf("images = %+v, want digest %s", l.Images, digest)
	}
	var paths []string
	for _, f := range l.Files {
		paths = append(paths, f.Path+"="+f.Mode)
	}
	// notes.log is ignored; the Dockerfile is listed although .dockerignore
	// excludes it (docker semantics).
	want := ".dockerignore=0644 Dockerfile=0644 README.md=0644 src=0755 src/main.go=0644"
	if got := strings.Join(paths, " "); got != want {
		t.Errorf("files = %s, want %s", got, want)
	}

	// The lock file itself does not change the digest.
	if err := os.WriteFile(filepath.Join(req.ContextDir, DefaultFileName), outs[0], 0o644); err != nil {
		t.Fatal(err)
	}
	if err := Check(t.Context(), l, req.ContextDir); err != nil {
		t.Fatalf("Check after writing the lock: %v", err)
	}
}

func TestContextDigestDockerignore(t *testing.T) {
	dir := copyTree(t, "testdata/context")
	base, _, err := ContextDigest(dir, "Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		files   map[string]string
		changed bool
	}{
		{"ignored file edited", map[string]string{"notes.log": "other"}, false},
		{"ignored file added", map[string]string{"other.log": "x"}, false},
		{"pattern is anchored at the root", map[string]string{"src/deep.log": "x"}, true},
		{"lock file", map[string]string{DefaultFileName: "{}"}, false},
		{"git dir", map[string]string{".git/HEAD": "ref: refs/heads/main\n"}, false},
		{"tracked file edited", map[string]string{"README.md": "bye\n"}, true},
		{"file added", map[string]string{"new.txt": ""}, true},
		{"ignore file edited", map[string]string{".dockerignore": "*.log\n"}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := copyTree(t, "testdata/context")
			writeFiles(t, d, tc.files)
			got, _, err := ContextDigest(d, "Dockerfile")
			if err != nil {
				t.Fatal(err)
			}
			if (got != base) != tc.changed {
				t.Errorf("digest changed = %v, want %v", got != base, tc.changed)
			}
		})
	}

	t.Run("exception and Dockerfile-specific ignore file", func(t *testing.T) {
		d := copyTree(t, "testdata/context")
		writeFiles(t, d, map[string]string{
			"build/Dockerfile":              "FROM scratch\n",
			"build/Dockerfile.dockerignore": "*\n!src\n",
		})
		_, files, err := ContextDigest(d, "build/Dockerfile")
		if err != nil {
			t.Fatal(err)
		}
		var paths []string
		for _, f := range files {
			paths = append(paths, f.Path)
		}
		want := "build/Dockerfile build/Dockerfile.dockerignore src src/main.go"
		if got := strings.Join(paths, " "); got != want {
			t.Errorf("files = %q, want %q", got, want)
		}
		ex, err := ContextExcludes(d, "build/Dockerfile")
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.Join(ex, " "); got != "* !src twinforge.lock .git" {
			t.Errorf("excludes = %q", got)
		}
	})

	t.Run("mode and symlink", func(t *testing.T) {
		d := copyTree(t, "testdata/context")
		if err := os.Chmod(filepath.Join(d, "README.md"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink("README.md", filepath.Join(d, "link")); err != nil {
			t.Fatal(err)
		}
		_, files, err := ContextDigest(d, "Dockerfile")
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]File{}
		for _, f := range files {
			got[f.Path] = f
		}
		if got["README.md"].Mode != "0755" || got["link"].Digest != "symlink:README.md" {
			t.Errorf("files = %+v", files)
		}
	})
}

func TestCheck(t *testing.T) {
	req, _ := baseRequest(t)
	l, err := Create(t.Context(), req)
	if err != nil {
		t.Fatal(err)
	}
	if err := Check(t.Context(), l, req.ContextDir); err != nil {
		t.Fatalf("unchanged tree: %v", err)
	}
	tests := []struct {
		name   string
		mutate func(dir string) error
		want   []string
	}{
		{"edited", func(d string) error {
			return os.WriteFile(filepath.Join(d, "src/main.go"), []byte("package x\n"), 0o644)
		}, []string{"changed: src/main.go (content)"}},
		{"added", func(d string) error { return os.WriteFile(filepath.Join(d, "src/extra.go"), nil, 0o644) }, []string{"added: src/extra.go"}},
		{"removed", func(d string) error { return os.Remove(filepath.Join(d, "README.md")) }, []string{"removed: README.md"}},
		{"mode", func(d string) error { return os.Chmod(filepath.Join(d, "README.md"), 0o600) }, []string{"changed: README.md (mode 0644 -> 0600)"}},
		{"dockerfile", func(d string) error {
			return os.WriteFile(filepath.Join(d, "Dockerfile"), []byte("FROM example.test/base:1\n"), 0o644)
		}, []string{"changed: Dockerfile"}},
		{"many", func(d string) error {
			for i := range 12 {
				if err := os.WriteFile(filepath.Join(d, fmt.Sprintf("f%02d", i)), nil, 0o644); err != nil {
					return err
				}
			}
			return nil
		}, []string{"added: f00", "added: f09", "and 2 more"}},
		{"other context", func(d string) error { return os.Remove(filepath.Join(d, "Dockerfile")) }, []string{"another context"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := copyTree(t, "testdata/context")
			if err := tc.mutate(d); err != nil {
				t.Fatal(err)
			}
			err := Check(t.Context(), l, d)
			if !errors.Is(err, ErrLockMismatch) {
				t.Fatalf("want ErrLockMismatch, got %v", err)
			}
			wantErrContains(t, err, append(tc.want, "twinforge lock "+d)...)
		})
	}
}

func TestCreateErrors(t *testing.T) {
	req, _ := baseRequest(t)
	file := filepath.Join(req.ContextDir, "README.md")
	tests := []struct {
		name string
		mod  func(r *Request)
		is   error
		want []string
	}{
		{"missing context", func(r *Request) { r.ContextDir = filepath.Join(r.ContextDir, "nope") }, os.ErrNotExist, []string{"nope"}},
		{"context is a file", func(r *Request) { r.ContextDir = file }, nil, []string{"README.md", "not a directory"}},
		{"missing Dockerfile", func(r *Request) { r.Dockerfile = "Containerfile" }, os.ErrNotExist, []string{"no Dockerfile at", "Containerfile"}},
		{"Dockerfile outside", func(r *Request) { r.Dockerfile = "../Dockerfile" }, nil, []string{"not inside the build context"}},
		{"unmapped image", func(r *Request) { r.Images = nil }, ErrImageNotFound, []string{"example.test/base:1", "line 1", "--image example.test/base:1=oci-layout:PATH"}},
		{"bad mapping", func(r *Request) { r.Images = map[string]string{"example.test/base:1": "docker:whatever"} }, nil, []string{"oci-layout:PATH"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := req
			tc.mod(&r)
			_, err := Create(t.Context(), r)
			wantErrContains(t, err, tc.want...)
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("error %v does not wrap %v", err, tc.is)
			}
		})
	}
}

func TestOCILayoutSelection(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "multi")
	digests := writeLayout(t, dir, "1", "2")
	single := filepath.Join(t.TempDir(), "single")
	one := writeLayout(t, single, "")
	tests := []struct {
		spec    string
		want    string
		wantErr string
	}{
		{"oci-layout:" + dir + ":1", digests["1"], ""},
		{"oci-layout:" + dir + ":2", digests["2"], ""},
		{"oci-layout:" + dir + "@" + digests["2"], digests["2"], ""},
		{"oci-layout:" + dir, "", "pick one"},
		{"oci-layout:" + dir + ":3", "", "tags: 1, 2"},
		{"oci-layout:" + single, one[""], ""},
		{"oci-layout:" + filepath.Join(t.TempDir(), "none"), "", "opening OCI layout"},
	}
	for _, tc := range tests {
		t.Run(tc.spec, func(t *testing.T) {
			_, got, err := resolveOCILayout(tc.spec)
			if tc.wantErr != "" {
				wantErrContains(t, err, tc.wantErr)
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %s, %v; want %s", got, err, tc.want)
			}
		})
	}

	// Through Create: tag selection, location relative to LockDir.
	ctxDir := t.TempDir()
	writeFiles(t, ctxDir, map[string]string{"Dockerfile": "FROM example.test/base:1\nFROM example.test/base:2\n"})
	l, err := Create(t.Context(), Request{
		ContextDir: ctxDir,
		Platform:   "linux/amd64",
		LockDir:    filepath.Dir(dir),
		Images: map[string]string{
			"example.test/base:1": "oci-layout:" + dir + ":1",
			"example.test/base:2": "oci-layout:" + dir + ":2",
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []Image{
		{Name: "example.test/base:1", Digest: digests["1"], Location: "oci-layout:multi"},
		{Name: "example.test/base:2", Digest: digests["2"], Location: "oci-layout:multi"},
	}
	if fmt.Sprint(l.Images) != fmt.Sprint(want) {
		t.Errorf("images = %+v, want %+v", l.Images, want)
	}
}

type fakeResolver map[string]string

func (f fakeResolver) Resolve(_ context.Context, ref string) (string, error) {
	if d, ok := f[ref]; ok {
		return d, nil
	}
	return "", errors.New("not found")
}

func TestCreateRegistryImages(t *testing.T) {
	ctxDir := t.TempDir()
	pinned := "example.test/pinned@" + emptySHA
	writeFiles(t, ctxDir, map[string]string{"Dockerfile": "FROM example.test/base:1\nFROM " + pinned + "\n"})
	l, err := Create(t.Context(), Request{
		ContextDir: ctxDir, Platform: "linux/amd64",
		Resolver: fakeResolver{"example.test/base:1": emptySHA},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []Image{
		{Name: "example.test/base:1", Digest: emptySHA, Location: "registry:example.test/base@" + emptySHA},
		{Name: pinned, Digest: emptySHA, Location: "registry:example.test/pinned@" + emptySHA},
	}
	if fmt.Sprint(l.Images) != fmt.Sprint(want) {
		t.Errorf("images = %+v, want %+v", l.Images, want)
	}
	_, err = Create(t.Context(), Request{ContextDir: ctxDir, Platform: "linux/amd64", Resolver: fakeResolver{}})
	if !errors.Is(err, ErrImageNotFound) {
		t.Errorf("want ErrImageNotFound, got %v", err)
	}
}

func TestRegistryResolver(t *testing.T) {
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	u, _ := url.Parse(srv.URL)
	ref := u.Host + "/team/base:1"
	img, err := random.Image(64, 1)
	if err != nil {
		t.Fatal(err)
	}
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(r, img); err != nil {
		t.Fatal(err)
	}
	want, _ := img.Digest()
	got, err := RegistryResolver().Resolve(t.Context(), ref)
	if err != nil || got != want.String() {
		t.Fatalf("Resolve = %s, %v; want %s", got, err, want)
	}
	if _, err := RegistryResolver().Resolve(t.Context(), u.Host+"/team/missing:1"); err == nil {
		t.Error("resolving a missing image should fail")
	}
}

type countingFetcher struct {
	URLFetcher
	n int
}

func (c *countingFetcher) Fetch(ctx context.Context, u string) (io.ReadCloser, error) {
	c.n++
	return c.URLFetcher.Fetch(ctx, u)
}

func TestCreateURLs(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/missing" {
			http.NotFound(w, r)
			return
		}
		io.WriteString(w, "payload")
	}))
	defer srv.Close()
	payload := sha256Digest([]byte("payload"))
	layoutDir := filepath.Join(t.TempDir(), "base")
	d := writeLayout(t, layoutDir, "1")
	images := map[string]string{"example.test/base:1": "oci-layout:" + layoutDir}

	tests := []struct {
		name    string
		add     string
		fetch   bool
		want    []URL
		fetches int
		wantErr string
	}{
		{"fetched", "ADD " + srv.URL + "/file /f", true, []URL{{URL: srv.URL + "/file", Digest: payload}}, 1, ""},
		{"checksum without fetcher", "ADD --checksum=" + emptySHA + " " + srv.URL + "/file /f", false, []URL{{URL: srv.URL + "/file", Digest: emptySHA}}, 0, ""},
		{"no checksum no fetcher", "ADD " + srv.URL + "/file /f", false, nil, 0, "--checksum"},
		{"http error", "ADD " + srv.URL + "/missing /f", true, nil, 1, "404"},
		{"twice fetched once", "ADD " + srv.URL + "/file /f\nADD " + srv.URL + "/file /g", true, []URL{{URL: srv.URL + "/file", Digest: payload}}, 1, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctxDir := t.TempDir()
			writeFiles(t, ctxDir, map[string]string{"Dockerfile": "FROM example.test/base:1\n" + tc.add + "\n"})
			req := Request{ContextDir: ctxDir, Platform: "linux/amd64", Images: images}
			cf := &countingFetcher{URLFetcher: HTTPFetcher(srv.Client())}
			if tc.fetch {
				req.Fetcher = cf
			}
			l, err := Create(t.Context(), req)
			if cf.n != tc.fetches {
				t.Errorf("fetched %d times, want %d", cf.n, tc.fetches)
			}
			if tc.wantErr != "" {
				wantErrContains(t, err, tc.wantErr)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(l.URLs) != fmt.Sprint(tc.want) || l.Images[0].Digest != d["1"] {
				t.Errorf("urls = %+v, want %+v", l.URLs, tc.want)
			}
		})
	}
}

func TestCreateGitRemoteSource(t *testing.T) {
	remoteDir := t.TempDir()
	git(t, remoteDir, "init", "-q", "-b", "main")
	writeFiles(t, remoteDir, map[string]string{"a": "a"})
	git(t, remoteDir, "add", "a")
	git(t, remoteDir, "commit", "-q", "-m", "one")
	git(t, remoteDir, "tag", "-a", "v1", "-m", "v1")
	commit := git(t, remoteDir, "rev-parse", "HEAD")

	// A commit-pinned ref needs no network; Dockerfile git URLs must be
	// https/ssh/git, so ls-remote is exercised directly on a local repo.
	pinnedCommit := strings.Repeat("ab", 20)
	a, err := AnalyzeDockerfile([]byte("FROM scratch\nADD https://example.test/x.git#"+pinnedCommit+" /c\n"), nil, "", "linux/amd64")
	if err != nil {
		t.Fatal(err)
	}
	l := &Lock{}
	if err := lockGit(t.Context(), l, a); err != nil {
		t.Fatal(err)
	}
	if len(l.Git) != 1 || l.Git[0].Commit != pinnedCommit {
		t.Errorf("git = %+v", l.Git)
	}
	// ls-remote resolution of a branch and an annotated tag (peeled).
	for _, ref := range []string{"main", "v1", "refs/heads/main", ""} {
		got, err := lsRemote(t.Context(), remoteDir, ref)
		if err != nil || got != commit {
			t.Errorf("lsRemote(%q) = %s, %v; want %s", ref, got, err, commit)
		}
	}
	if _, err := lsRemote(t.Context(), remoteDir, "nope"); err == nil {
		t.Error("unknown ref should fail")
	}
}

func TestCreateGitContext(t *testing.T) {
	repo := t.TempDir()
	git(t, repo, "init", "-q", "-b", "main")
	git(t, repo, "remote", "add", "origin", "https://user:secret@example.test/org/repo.git")
	ctxDir := filepath.Join(repo, "app")
	writeFiles(t, ctxDir, map[string]string{
		"Dockerfile": "FROM example.test/base:1\n",
		"main.go":    "package main\n",
	})
	writeFiles(t, repo, map[string]string{"other/file": "x"})
	git(t, repo, "add", ".")
	git(t, repo, "commit", "-q", "-m", "init")
	commit := git(t, repo, "rev-parse", "HEAD")
	tree := git(t, repo, "rev-parse", "HEAD:app")

	layoutDir := filepath.Join(t.TempDir(), "base")
	writeLayout(t, layoutDir, "1")
	req := Request{ContextDir: ctxDir, Platform: "linux/amd64", Images: map[string]string{"example.test/base:1": "oci-layout:" + layoutDir}}
	l, err := Create(t.Context(), req)
	if err != nil {
		t.Fatal(err)
	}
	want := Source{Kind: SourceKindGit, Repository: "https://example.test/org/repo.git", Commit: commit, Tree: tree, Ref: "refs/heads/main", Digest: l.Source.Digest}
	if l.Source != want {
		t.Errorf("source = %+v, want %+v", l.Source, want)
	}
	if l.SourceDateEpoch != 1700000000 {
		t.Errorf("SourceDateEpoch = %d, want 1700000000", l.SourceDateEpoch)
	}
	epoch := int64(42)
	req.SourceDateEpoch = &epoch
	if l2, err := Create(t.Context(), req); err != nil || l2.SourceDateEpoch != 42 {
		t.Errorf("explicit epoch: %v %+v", err, l2)
	}
	req.SourceDateEpoch = nil

	// The lock file itself and changes outside the context do not make the
	// context dirty.
	b, _ := l.Marshal()
	writeFiles(t, ctxDir, map[string]string{DefaultFileName: string(b)})
	writeFiles(t, repo, map[string]string{"other/file": "changed"})
	if _, err := Create(t.Context(), req); err != nil {
		t.Fatalf("lock file / outside change made the tree dirty: %v", err)
	}
	// Committing the lock moves HEAD but Check still passes.
	git(t, repo, "add", "app/"+DefaultFileName)
	git(t, repo, "commit", "-q", "-m", "lock")
	if err := Check(t.Context(), l, ctxDir); err != nil {
		t.Errorf("Check after committing the lock: %v", err)
	}

	writeFiles(t, ctxDir, map[string]string{"main.go": "package changed\n", "new.txt": "n"})
	_, err = Create(t.Context(), req)
	if !errors.Is(err, ErrDirtyTree) {
		t.Fatalf("want ErrDirtyTree, got %v", err)
	}
	wantErrContains(t, err, "app/main.go", "app/new.txt", "--allow-dirty")

	req.AllowDirty = true
	l3, err := Create(t.Context(), req)
	if err != nil {
		t.Fatal(err)
	}
	if !l3.Source.Dirty || l3.Source.Commit == commit || l3.Source.Digest == l.Source.Digest {
		t.Errorf("dirty source = %+v", l3.Source)
	}
	err = Check(t.Context(), l, ctxDir)
	wantErrContains(t, err, "changed: main.go", "added: new.txt", "HEAD is now")
}
