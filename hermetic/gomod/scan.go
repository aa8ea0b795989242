package gomod

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"golang.org/x/mod/module"
	"golang.org/x/mod/sumdb/dirhash"
)

// Module is one module version a Go source pins.
type Module struct {
	// Path and Version name the module version.
	Path    string `json:"path"`
	Version string `json:"version"`
	// Sum is the go.sum hash of the module's zip ("h1:..."); empty when
	// go.sum lists only its go.mod (a module in the graph whose code is
	// not built).
	Sum string `json:"sum,omitempty"`
	// GoModSum is the go.sum hash of the module's go.mod.
	GoModSum string `json:"goModSum,omitempty"`
	// GoSum is the go.sum file listing it, relative to the scanned
	// directory, slash-separated.
	GoSum string `json:"goSum"`
	// Vendored is the h1 hash of the files vendor/<path>/ holds for the
	// module (vendor/modules.txt lists it); empty when not vendored.
	Vendored string `json:"vendored,omitempty"`
}

// String is path@version.
func (m Module) String() string { return m.Path + "@" + m.Version }

// ErrInvalid is wrapped by errors about a go.sum or vendor/modules.txt
// that cannot be read as the go command writes them.
var ErrInvalid = errors.New("invalid Go module files")

// Scan finds every go.sum under dir (vendor directories and testdata
// aside) and returns the modules each lists, with the hash of each module
// the vendor/modules.txt beside it vendors, sorted by go.sum, path and
// version. A vendored module that go.sum does not list is an error.
func Scan(dir string) ([]Module, error) {
	var sums []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && p != dir && (d.Name() == "vendor" || d.Name() == "testdata" || strings.HasPrefix(d.Name(), ".")) {
			return filepath.SkipDir
		}
		if !d.IsDir() && d.Name() == "go.sum" {
			sums = append(sums, p)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("scanning %s for go.sum: %w", dir, err)
	}
	sort.Strings(sums)
	var out []Module
	for _, sum := range sums {
		rel, err := filepath.Rel(dir, sum)
		if err != nil {
			return nil, err
		}
		mods, err := scanModule(filepath.Dir(sum), filepath.ToSlash(rel))
		if err != nil {
			return nil, err
		}
		out = append(out, mods...)
	}
	return out, nil
}

func scanModule(modDir, goSumRel string) ([]Module, error) {
	data, err := os.ReadFile(filepath.Join(modDir, "go.sum"))
	if err != nil {
		return nil, err
	}
	byKey, keys, err := parseGoSum(data, goSumRel)
	if err != nil {
		return nil, err
	}
	vendored, err := readModulesTxt(modDir)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path.Join(path.Dir(goSumRel), "vendor/modules.txt"), err)
	}
	var vendoredPaths []string
	for _, v := range vendored {
		vendoredPaths = append(vendoredPaths, v.Path)
	}
	for _, v := range vendored {
		m := byKey[v.String()]
		if m == nil || m.Sum == "" {
			return nil, fmt.Errorf("%w: vendor/modules.txt vendors %s, which %s does not list: run `go mod tidy && go mod vendor`", ErrInvalid, v, goSumRel)
		}
		files, err := VendoredFiles(modDir, v.Path, vendoredPaths)
		if err != nil {
			return nil, err
		}
		h, err := hashFiles(filepath.Join(modDir, "vendor", filepath.FromSlash(v.Path)), files)
		if err != nil {
			return nil, fmt.Errorf("hashing vendored %s: %w", v, err)
		}
		m.Vendored = h
	}
	sort.Strings(keys)
	out := make([]Module, 0, len(keys))
	for _, k := range keys {
		out = append(out, *byKey[k])
	}
	return out, nil
}

// parseGoSum reads a go.sum as the go command writes it: the modules it
// lists by path@version, each with its zip and go.mod hashes, and their
// keys in file order.
func parseGoSum(data []byte, goSumRel string) (map[string]*Module, []string, error) {
	byKey := map[string]*Module{}
	var keys []string
	for i, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		f := strings.Fields(line)
		if len(f) != 3 || !strings.HasPrefix(f[2], "h1:") {
			return nil, nil, fmt.Errorf("%w: %s line %d: want MODULE VERSION[/go.mod] h1:HASH", ErrInvalid, goSumRel, i+1)
		}
		vers, goMod := strings.CutSuffix(f[1], "/go.mod")
		if err := module.Check(f[0], vers); err != nil {
			return nil, nil, fmt.Errorf("%w: %s line %d: %v", ErrInvalid, goSumRel, i+1, err)
		}
		key := f[0] + "@" + vers
		m := byKey[key]
		if m == nil {
			m = &Module{Path: f[0], Version: vers, GoSum: goSumRel}
			byKey[key] = m
			keys = append(keys, key)
		}
		dst := &m.Sum
		if goMod {
			dst = &m.GoModSum
		}
		if *dst != "" && *dst != f[2] {
			return nil, nil, fmt.Errorf("%w: %s line %d: %s is listed twice with different hashes", ErrInvalid, goSumRel, i+1, f[1])
		}
		*dst = f[2]
	}
	return byKey, keys, nil
}

// readModulesTxt returns the modules vendor/modules.txt vendors ("# path
// version" lines that have packages or are explicit), replacements aside.
func readModulesTxt(modDir string) ([]module.Version, error) {
	data, err := os.ReadFile(filepath.Join(modDir, "vendor", "modules.txt"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return parseModulesTxt(data)
}

// parseModulesTxt reads a vendor/modules.txt: the modules it vendors.
func parseModulesTxt(data []byte) ([]module.Version, error) {
	var out []module.Version
	var cur *module.Version
	hasPackages := false
	flush := func() {
		if cur != nil && hasPackages {
			out = append(out, *cur)
		}
		cur, hasPackages = nil, false
	}
	// Lines of any length: the go command writes package paths as long
	// as they are.
	for i, line := range strings.Split(string(data), "\n") {
		n, line := i+1, strings.TrimSuffix(line, "\r")
		switch {
		case strings.HasPrefix(line, "# "):
			flush()
			f := strings.Fields(strings.TrimPrefix(line, "# "))
			if len(f) >= 4 && f[2] == "=>" {
				// A replaced module: its content is not what go.sum hashes
				// under its own path (local replacements have none).
				continue
			}
			if len(f) != 2 {
				return nil, fmt.Errorf("%w: line %d: want # MODULE VERSION", ErrInvalid, n)
			}
			if err := module.Check(f[0], f[1]); err != nil {
				return nil, fmt.Errorf("%w: line %d: %v", ErrInvalid, n, err)
			}
			cur = &module.Version{Path: f[0], Version: f[1]}
		case strings.HasPrefix(line, "## "):
		case line != "" && !strings.HasPrefix(line, "#"):
			hasPackages = true
		}
	}
	flush()
	return out, nil
}

// VendoredFiles lists the files under vendor/<modPath> that belong to the
// module (not to a vendored module nested in its path), slash-separated
// and relative to that directory, sorted.
func VendoredFiles(modDir, modPath string, vendored []string) ([]string, error) {
	root := filepath.Join(modDir, "vendor", filepath.FromSlash(modPath))
	var nested []string
	for _, p := range vendored {
		if p != modPath && strings.HasPrefix(p, modPath+"/") {
			nested = append(nested, strings.TrimPrefix(p, modPath+"/"))
		}
	}
	var files []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		rel = filepath.ToSlash(rel)
		if d.IsDir() {
			if rel != "." && slices.ContainsFunc(nested, func(n string) bool { return rel == n }) {
				return filepath.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() {
			return fmt.Errorf("vendored %s: %s is not a regular file", modPath, rel)
		}
		files = append(files, rel)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("listing vendored files of %s: %w", modPath, err)
	}
	sort.Strings(files)
	return files, nil
}

func hashFiles(root string, files []string) (string, error) {
	return dirhash.Hash1(files, func(name string) (io.ReadCloser, error) {
		return os.Open(filepath.Join(root, filepath.FromSlash(name)))
	})
}
