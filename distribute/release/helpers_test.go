package release

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// fixture is a release index on disk served over HTTP on loopback.
type fixture struct {
	t        *testing.T
	dir      string
	repo     *Repository
	rootKeys []*Key
	srv      *httptest.Server
	// serveDir is the directory served; a test may point it at an old copy.
	serveDir string
}

func newFixture(t *testing.T, opts ...Option) *fixture {
	t.Helper()
	f := &fixture{t: t, dir: t.TempDir()}
	for i := range 3 {
		k, err := GenerateKey(filepath.Join(f.dir, "offline", "root"+string(rune('1'+i))+".pem"))
		if err != nil {
			t.Fatal(err)
		}
		f.rootKeys = append(f.rootKeys, k)
	}
	repo, err := Init(filepath.Join(f.dir, "index"), InitConfig{RootKeys: f.rootKeys, RootThreshold: 2}, opts...)
	if err != nil {
		t.Fatal(err)
	}
	f.repo = repo
	f.serveDir = filepath.Join(f.dir, "index", MetadataDir)
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.FileServer(http.Dir(f.serveDir)).ServeHTTP(w, r)
	}))
	t.Cleanup(f.srv.Close)
	return f
}

// teamKey makes a key for a team.
func (f *fixture) teamKey(name string) *Key {
	f.t.Helper()
	k, err := GenerateKey(filepath.Join(f.dir, "teams", name+".pem"))
	if err != nil {
		f.t.Fatal(err)
	}
	return k
}

func (f *fixture) rootJSON() []byte {
	f.t.Helper()
	data, err := os.ReadFile(filepath.Join(f.dir, "index", MetadataDir, "1.root.json"))
	if err != nil {
		f.t.Fatal(err)
	}
	return data
}

// client is a reader of the served index with its own state directory.
func (f *fixture) client(stateDir string) *Client {
	f.t.Helper()
	if stateDir == "" {
		stateDir = f.t.TempDir()
	}
	c, err := NewClient(ClientConfig{URL: f.srv.URL, InitialRoot: f.rootJSON(), StateDir: stateDir})
	if err != nil {
		f.t.Fatal(err)
	}
	return c
}

func (f *fixture) refresh(c *Client) *Index {
	f.t.Helper()
	ix, err := c.Refresh(context.Background())
	if err != nil {
		f.t.Fatalf("refresh: %v", err)
	}
	return ix
}

// release releases repository:tag as a fresh digest and returns the target.
func (f *fixture) release(team, repository, tag string, keys ...*Key) *Target {
	f.t.Helper()
	tg, err := f.repo.Release(team, fakeTarget(repository, tag), keys)
	if err != nil {
		f.t.Fatalf("release %s:%s: %v", repository, tag, err)
	}
	return tg
}

var counter int

func fakeTarget(repository, tag string) Target {
	counter++
	sum := sha256.Sum256([]byte{byte(counter), byte(counter >> 8)})
	prov := sha256.Sum256([]byte("provenance of " + repository + tag))
	return Target{Repository: repository, Tag: tag, Digest: "sha256:" + hex.EncodeToString(sum[:]), Size: 512,
		MediaType: "application/vnd.oci.image.manifest.v1+json", Provenance: "sha256:" + hex.EncodeToString(prov[:])}
}

// wantCheck fails unless err is an *Error with check.
func wantCheck(t *testing.T, err error, check string) *Error {
	t.Helper()
	var re *Error
	if !errors.As(err, &re) {
		t.Fatalf("got %v, want a refusal %s", err, check)
	}
	if re.Check != check {
		t.Fatalf("got check %s (%v), want %s", re.Check, err, check)
	}
	return re
}

// copyDir copies the served metadata, to serve an old index later.
func copyDir(t *testing.T, src string) string {
	t.Helper()
	dst := t.TempDir()
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		data, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

var now = time.Now
