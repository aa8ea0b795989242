package gomod

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/module"
	"golang.org/x/mod/sumdb"
	"golang.org/x/mod/sumdb/dirhash"
	"golang.org/x/mod/sumdb/note"
	modzip "golang.org/x/mod/zip"
)

// fakeModule is a module version with its zip and go.sum lines.
type fakeModule struct {
	mod   module.Version
	files map[string]string
	zip   []byte
	sum   string
	gomod string
}

func newFakeModule(t *testing.T, path, version string, files map[string]string) *fakeModule {
	t.Helper()
	m := &fakeModule{mod: module.Version{Path: path, Version: version}, files: files}
	var zfiles []modzip.File
	for name, content := range files {
		zfiles = append(zfiles, memFile{name: name, data: []byte(content)})
	}
	var buf bytes.Buffer
	if err := modzip.Create(&buf, m.mod, zfiles); err != nil {
		t.Fatal(err)
	}
	m.zip = buf.Bytes()
	tmp := filepath.Join(t.TempDir(), "m.zip")
	os.WriteFile(tmp, m.zip, 0o644)
	var err error
	if m.sum, err = dirhash.HashZip(tmp, dirhash.Hash1); err != nil {
		t.Fatal(err)
	}
	m.gomod, err = dirhash.Hash1([]string{"go.mod"}, func(string) (io.ReadCloser, error) {
		return io.NopCloser(strings.NewReader(files["go.mod"])), nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

type memFile struct {
	name string
	data []byte
}

func (f memFile) Path() string                 { return f.name }
func (f memFile) Lstat() (os.FileInfo, error)  { return memInfo(f), nil }
func (f memFile) Open() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(f.data)), nil }

// fakeDB is a module proxy with a checksum database, served on loopback.
type fakeDB struct {
	url    string
	vkey   string
	lookup map[string]string // path@version -> go.sum lines the database records
	zips   map[string][]byte
}

func newFakeDB(t *testing.T, skey, vkey string, mods ...*fakeModule) *fakeDB {
	t.Helper()
	db := &fakeDB{vkey: vkey, lookup: map[string]string{}, zips: map[string][]byte{}}
	for _, m := range mods {
		db.lookup[m.mod.String()] = fmt.Sprintf("%s %s %s\n%s %s/go.mod %s\n", m.mod.Path, m.mod.Version, m.sum, m.mod.Path, m.mod.Version, m.gomod)
		db.zips["/"+m.mod.Path+"/@v/"+m.mod.Version+".zip"] = m.zip
	}
	ts := sumdb.NewTestServer(skey, func(path, vers string) ([]byte, error) {
		if l, ok := db.lookup[path+"@"+vers]; ok {
			return []byte(l), nil
		}
		return nil, fmt.Errorf("%s@%s: not found", path, vers)
	})
	name := strings.SplitN(vkey, "+", 2)[0]
	mux := http.NewServeMux()
	mux.Handle("/sumdb/"+name+"/", http.StripPrefix("/sumdb/"+name, sumdb.NewServer(ts)))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if z, ok := db.zips[r.URL.Path]; ok {
			w.Write(z)
			return
		}
		http.NotFound(w, r)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	db.url = srv.URL
	return db
}

func newKey(t *testing.T, name string) (string, string) {
	t.Helper()
	skey, vkey, err := note.GenerateKey(rand.Reader, name)
	if err != nil {
		t.Fatal(err)
	}
	return skey, vkey
}

// vendoredTree writes a module that vendors m.
func vendoredTree(t *testing.T, m *fakeModule) string {
	t.Helper()
	dir := t.TempDir()
	write := func(rel, content string) {
		p := filepath.Join(dir, filepath.FromSlash(rel))
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("go.mod", "module example.test/app\n\ngo 1.22\n\nrequire "+m.mod.Path+" "+m.mod.Version+"\n")
	write("go.sum", fmt.Sprintf("%s %s %s\n%s %s/go.mod %s\n", m.mod.Path, m.mod.Version, m.sum, m.mod.Path, m.mod.Version, m.gomod))
	write("vendor/modules.txt", "# "+m.mod.Path+" "+m.mod.Version+"\n## explicit\n"+m.mod.Path+"\n")
	for name, content := range m.files {
		if name != "go.mod" {
			write("vendor/"+m.mod.Path+"/"+name, content)
		}
	}
	return dir
}

func TestVerify(t *testing.T) {
	skey, vkey := newKey(t, "sum.test")
	lib := newFakeModule(t, "example.test/lib", "v1.2.3", map[string]string{
		"go.mod": "module example.test/lib\n", "lib.go": "package lib\n\nconst V = 1\n", "LICENSE": "MIT\n"})
	db := newFakeDB(t, skey, vkey, lib)
	cfg := Config{Proxy: db.url, SumDB: vkey}
	ctx := context.Background()

	dir := vendoredTree(t, lib)
	mods, err := Scan(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(mods) != 1 || mods[0].Sum != lib.sum || mods[0].GoModSum != lib.gomod || mods[0].Vendored == "" || mods[0].GoSum != "go.sum" {
		t.Fatalf("Scan = %+v", mods)
	}
	res, err := Verify(ctx, dir, mods, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if res.Verified != 2 || res.Vendored != 1 || res.TreeSize < 1 || !strings.Contains(res.TreeHead, "sum.test") {
		t.Fatalf("result %+v", res)
	}
	// Again from the kept tree head: consistent.
	cfg.TreeHead = res.TreeHead
	if _, err := Verify(ctx, dir, mods, cfg); err != nil {
		t.Fatal(err)
	}

	t.Run("go.sum contradicted", func(t *testing.T) {
		bad := append([]Module(nil), mods...)
		bad[0].Sum = "h1:" + strings.Repeat("A", 43) + "="
		_, err := Verify(ctx, dir, bad, cfg)
		var me *MismatchError
		if !errors.As(err, &me) || me.Module.Path != "example.test/lib" || me.GoMod {
			t.Fatalf("got %v, want a mismatch naming example.test/lib", err)
		}
	})
	t.Run("vendored file edited", func(t *testing.T) {
		edited := vendoredTree(t, lib)
		os.WriteFile(filepath.Join(edited, "vendor/example.test/lib/lib.go"), []byte("package lib\n\nconst V = 2\n"), 0o644)
		mods, err := Scan(edited)
		if err != nil {
			t.Fatal(err)
		}
		_, err = Verify(ctx, edited, mods, cfg)
		var ve *VendorError
		if !errors.As(err, &ve) || ve.Module.Path != "example.test/lib" || ve.File != "lib.go" || !strings.Contains(err.Error(), "edited") {
			t.Fatalf("got %v, want a vendor error naming example.test/lib and lib.go", err)
		}
	})
	t.Run("vendored file added", func(t *testing.T) {
		added := vendoredTree(t, lib)
		os.WriteFile(filepath.Join(added, "vendor/example.test/lib/backdoor.go"), []byte("package lib\n"), 0o644)
		mods, _ := Scan(added)
		_, err := Verify(ctx, added, mods, cfg)
		var ve *VendorError
		if !errors.As(err, &ve) || ve.File != "backdoor.go" {
			t.Fatalf("got %v, want a vendor error naming backdoor.go", err)
		}
	})
	t.Run("forked database", func(t *testing.T) {
		// Same key, another history: the kept tree head is not an
		// ancestor of what this database serves.
		other := newFakeModule(t, "example.test/other", "v0.1.0", map[string]string{"go.mod": "module example.test/other\n", "o.go": "package o\n"})
		fork := newFakeDB(t, skey, vkey, other, lib)
		forkCfg := Config{Proxy: fork.url, SumDB: vkey}
		Verify(ctx, dir, []Module{{Path: other.mod.Path, Version: other.mod.Version, Sum: other.sum, GoSum: "go.sum"}}, forkCfg)
		forkCfg.TreeHead = res.TreeHead
		_, err := Verify(ctx, dir, mods, forkCfg)
		if !errors.Is(err, ErrSumDB) {
			t.Fatalf("got %v, want ErrSumDB", err)
		}
	})
	t.Run("another database's key", func(t *testing.T) {
		_, otherKey := newKey(t, "sum.test")
		_, err := Verify(ctx, dir, mods, Config{Proxy: db.url, SumDB: otherKey})
		if err == nil {
			t.Fatal("a database signed with another key verified")
		}
	})
	t.Run("private modules skipped", func(t *testing.T) {
		r, err := Verify(ctx, dir, mods, Config{Proxy: "http://127.0.0.1:1", SumDB: vkey, NoSumDB: []string{"example.test"}})
		if err != nil || len(r.Skipped) != 1 {
			t.Fatalf("%+v %v", r, err)
		}
	})
}

func TestScanRefusals(t *testing.T) {
	for name, files := range map[string]map[string]string{
		"bad go.sum line":            {"go.sum": "example.test/x v1.0.0\n"},
		"vendored but not in go.sum": {"go.sum": "", "vendor/modules.txt": "# example.test/x v1.0.0\nexample.test/x\n"},
		"twice with two hashes":      {"go.sum": "example.test/x v1.0.0 h1:AAAA\nexample.test/x v1.0.0 h1:BBBB\n"},
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			for rel, c := range files {
				os.MkdirAll(filepath.Dir(filepath.Join(dir, rel)), 0o755)
				os.WriteFile(filepath.Join(dir, rel), []byte(c), 0o644)
			}
			if _, err := Scan(dir); !errors.Is(err, ErrInvalid) {
				t.Fatalf("got %v, want ErrInvalid", err)
			}
		})
	}
}

type memInfo memFile

func (i memInfo) Name() string       { return filepath.Base(i.name) }
func (i memInfo) Size() int64        { return int64(len(i.data)) }
func (i memInfo) Mode() os.FileMode  { return 0o644 }
func (i memInfo) ModTime() time.Time { return time.Time{} }
func (i memInfo) IsDir() bool        { return false }
func (i memInfo) Sys() any           { return nil }
