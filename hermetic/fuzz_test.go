package hermetic

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// addTestdataSeeds adds every file matching glob under testdata as a seed.
func addTestdataSeeds(f *testing.F, glob string) {
	f.Helper()
	paths, err := filepath.Glob(filepath.Join("testdata", glob))
	if err != nil || len(paths) == 0 {
		f.Fatalf("no seeds match testdata/%s: %v", glob, err)
	}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
}

// FuzzParseLock: a lock file is read from the build context, which whoever
// opens a pull request writes. Parse never panics, every refusal wraps
// ErrInvalidLock or ErrUnsupportedSchema, and whatever it accepts has a
// canonical form that parses back to itself.
func FuzzParseLock(f *testing.F) {
	addTestdataSeeds(f, "locks/*.json")
	f.Fuzz(func(t *testing.T, data []byte) {
		l, err := Parse(data)
		if err != nil {
			if !errors.Is(err, ErrInvalidLock) && !errors.Is(err, ErrUnsupportedSchema) {
				t.Fatalf("refusal wraps neither ErrInvalidLock nor ErrUnsupportedSchema: %v", err)
			}
			return
		}
		canon, err := l.Marshal()
		if err != nil {
			t.Fatalf("an accepted lock does not marshal: %v", err)
		}
		back, err := Parse(canon)
		if err != nil {
			t.Fatalf("the canonical form of an accepted lock does not parse: %v\n%s", err, canon)
		}
		again, err := back.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(canon, again) {
			t.Fatalf("the canonical form is not stable:\n%s\nthen:\n%s", canon, again)
		}
	})
}

// FuzzAnalyzeDockerfile: the Dockerfile comes from the build context too.
// AnalyzeDockerfile never panics, and what it reports is what the lock
// check relies on: every image and URL it found names something, at a
// line of the Dockerfile.
func FuzzAnalyzeDockerfile(f *testing.F) {
	paths, _ := filepath.Glob(filepath.Join("testdata", "dockerfiles", "*.Dockerfile"))
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, "1", "")
	}
	f.Add([]byte("ARG A=x\nFROM ${A:-y}/b AS s\nFROM s\nCOPY --from=s / /\n"), "", "s")
	f.Add([]byte("FROM a\nONBUILD RUN --mount=from=b,target=/b true\n"), "", "")
	f.Add([]byte("# escape=`\nFROM a`\n:1\nRUN --mount=type=bind,from=$V,target=/x true\n"), "img:2", "")
	f.Fuzz(func(t *testing.T, dockerfile []byte, arg, target string) {
		a, err := AnalyzeDockerfile(dockerfile, map[string]string{"V": arg}, target, "linux/amd64")
		if err != nil {
			return
		}
		lines := bytes.Count(dockerfile, []byte("\n")) + 1
		for _, im := range a.Images {
			if im.Name == "" || im.Line < 1 || im.Line > lines {
				t.Errorf("image use %+v: empty name or a line outside the Dockerfile's %d", im, lines)
			}
		}
		for _, u := range a.URLs {
			if u.URL == "" || u.Line < 1 || u.Line > lines {
				t.Errorf("URL use %+v: empty or a line outside the Dockerfile's %d", u, lines)
			}
		}
		for _, g := range a.Git {
			if g.Remote == "" {
				t.Errorf("git use %+v has no remote", g)
			}
		}
		// The checks the lock relies on take any analysis.
		_ = a.CheckHermetic()
		_ = (&Lock{}).Verify(a)
	})
}
