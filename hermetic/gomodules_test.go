package hermetic

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/twinforge/twinforge/hermetic/gomod"
)

// TestCreateGoModules: the lock records the modules of the go.sum files
// sent to BuildKit, vendored ones with the hash of their files; the
// provenance materials list them as package URLs with their dirHash; a
// lock edited to contradict itself is refused.
func TestCreateGoModules(t *testing.T) {
	req, _ := baseRequest(t)
	dir := req.ContextDir
	src := filepath.Join("gomod", "testdata", "vendored")
	vendored := copyTree(t, src)
	for _, name := range []string{"go.mod", "go.sum", "main.go"} {
		data, _ := os.ReadFile(filepath.Join(vendored, name))
		writeFiles(t, dir, map[string]string{"app/" + name: string(data)})
	}
	if err := os.Rename(filepath.Join(vendored, "vendor"), filepath.Join(dir, "app", "vendor")); err != nil {
		t.Fatal(err)
	}
	// A go.sum kept out of the context is not the build's.
	writeFiles(t, dir, map[string]string{"ignored/go.sum": "example.test/x v1.0.0 h1:AAAA\n", ".dockerignore": "ignored\n"})
	l, err := Create(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if len(l.GoModules) != 1 {
		t.Fatalf("goModules = %+v", l.GoModules)
	}
	m := l.GoModules[0]
	if m.Path != "github.com/google/uuid" || m.Version != "v1.6.0" || m.GoSum != "app/go.sum" || !strings.HasPrefix(m.Vendored, "h1:") || m.Sum != "h1:NIvaJDMOsjHA8n1jAhLSgzrAzy1Hgr+hNrb57e+94F0=" {
		t.Fatalf("module %+v", m)
	}
	if l.GoSumDB != nil {
		t.Error("a lock made without verification records a tree head")
	}
	data, err := l.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	back, err := Parse(data)
	if err != nil || len(back.GoModules) != 1 || back.GoModules[0] != m {
		t.Fatalf("round trip: %+v %v", back, err)
	}
	for name, edit := range map[string]func(*Lock){
		"a hash that is not h1": func(l *Lock) { l.GoModules[0].Sum = "sha256:abc" },
		"a bad version":         func(l *Lock) { l.GoModules[0].Version = "1.6" },
		"no go.sum":             func(l *Lock) { l.GoModules[0].GoSum = "app/go.mod" },
		"an empty tree head":    func(l *Lock) { l.GoSumDB = &GoSumDB{Name: "sum.golang.org", TreeSize: 1} },
	} {
		c := *l
		c.GoModules = append([]gomod.Module(nil), l.GoModules...)
		edit(&c)
		if _, err := c.Marshal(); !errors.Is(err, ErrInvalidLock) {
			t.Errorf("%s: got %v, want ErrInvalidLock", name, err)
		}
	}
}
