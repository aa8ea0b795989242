package gomod

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/mod/module"
)

// FuzzGoSum: go.sum files come with the build context. Parsing never
// panics, a refusal wraps ErrInvalid, and every module it accepts is a
// valid module version with h1 hashes only.
func FuzzGoSum(f *testing.F) {
	b, err := os.ReadFile(filepath.Join("testdata", "vendored", "go.sum"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add([]byte("golang.org/x/mod v0.20.0 h1:utOm6MM3R3dnawAiJgn0y+xvuYRsm1RKM/4giyfDgV0=\ngolang.org/x/mod v0.20.0/go.mod h1:hTbmBsO62+eylJbnUtE2MGJUyE7QWk4xUqPFrRgJ+7c=\n"))
	f.Add([]byte("example.test/a v1.0.0 h1:x\nexample.test/a v1.0.0 h1:y\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		byKey, keys, err := parseGoSum(data, "go.sum")
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("refusal is not ErrInvalid: %v", err)
			}
			return
		}
		if len(keys) != len(byKey) {
			t.Fatalf("%d keys for %d modules", len(keys), len(byKey))
		}
		for _, k := range keys {
			m := byKey[k]
			if m == nil || m.String() != k {
				t.Fatalf("key %s names %v", k, m)
			}
			if err := module.Check(m.Path, m.Version); err != nil {
				t.Fatalf("accepted %s: %v", m, err)
			}
			for _, h := range []string{m.Sum, m.GoModSum} {
				if h != "" && !strings.HasPrefix(h, "h1:") {
					t.Fatalf("accepted hash %q for %s", h, m)
				}
			}
		}
	})
}

// FuzzModulesTxt: vendor/modules.txt comes with the build context too.
// Parsing never panics, a refusal wraps ErrInvalid, and every module it
// says is vendored is a valid module version.
func FuzzModulesTxt(f *testing.F) {
	b, err := os.ReadFile(filepath.Join("testdata", "vendored", "vendor", "modules.txt"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add([]byte("# example.test/a v1.0.0 => ../a\nexample.test/a\n# example.test/b v1.2.0\n## explicit; go 1.22\nexample.test/b/pkg\n"))
	f.Add([]byte("# example.test/c v1.0.0\n" + strings.Repeat("x", 70000) + "\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		mods, err := parseModulesTxt(data)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("refusal is not ErrInvalid: %v", err)
			}
			return
		}
		for _, m := range mods {
			if err := module.Check(m.Path, m.Version); err != nil {
				t.Fatalf("accepted %s: %v", m, err)
			}
		}
	})
}
