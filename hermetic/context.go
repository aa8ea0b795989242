package hermetic

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
)

// alwaysExcluded are context-root paths that are never part of the context
// digest: the lock itself (it cannot contain its own digest) and the git
// directory (its index and refs change on every git operation, so it would
// make every lock stale). The builder must exclude them from the context it
// sends to BuildKit too; [ContextExcludes] returns them.
var alwaysExcluded = []string{DefaultFileName, ".git"}

// ContextExcludes returns the exclude patterns that define the build context
// of dir for the given Dockerfile (path relative to dir): the patterns of
// the Dockerfile-specific ignore file (<Dockerfile>.dockerignore) if it
// exists, otherwise of .dockerignore, as BuildKit's Dockerfile frontend
// reads them, followed by the entries the lock never covers (the lock file
// and .git at the context root). The builder should send BuildKit exactly
// this context so that what is built is what was locked.
func ContextExcludes(dir, dockerfile string) ([]string, error) {
	patterns, _, err := readIgnoreFile(dir, dockerfile)
	if err != nil {
		return nil, err
	}
	return append(patterns, alwaysExcluded...), nil
}

// readIgnoreFile returns the patterns and the slash path (relative to dir)
// of the ignore file that applies, or "" if there is none.
func readIgnoreFile(dir, dockerfile string) ([]string, string, error) {
	candidates := []string{".dockerignore"}
	if dockerfile != "" {
		candidates = []string{path.Clean(dockerfile) + ".dockerignore", ".dockerignore"}
	}
	for _, name := range candidates {
		f, err := os.Open(filepath.Join(dir, filepath.FromSlash(name)))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, "", fmt.Errorf("reading ignore file: %w", err)
		}
		patterns, err := ignorefile.ReadAll(f)
		f.Close()
		if err != nil {
			return nil, "", fmt.Errorf("parsing %s: %w", filepath.Join(dir, filepath.FromSlash(name)), err)
		}
		return patterns, name, nil
	}
	return nil, "", nil
}

// ContextDigest lists the build context dir as BuildKit would receive it
// for the given Dockerfile (slash path relative to dir, "" for the default)
// and returns its content digest and the listing, sorted by path.
//
// The listing honours the ignore file exactly like docker/BuildKit
// (github.com/moby/patternmatcher semantics, including "!" exceptions).
// Following docker, the Dockerfile and the ignore file themselves are always
// listed even when a pattern excludes them: they determine the build. The
// lock file and .git at the context root are never listed.
//
// Each entry records the path, the kind (via Digest: content sha256,
// "symlink:<target>" or "directory") and the full permission bits
// (mode & 07777, as octal). Other file types (sockets, devices, FIFOs) are
// an error.
func ContextDigest(dir, dockerfile string) (string, []File, error) {
	files, err := listContext(dir, dockerfile)
	if err != nil {
		return "", nil, err
	}
	return filesDigest(files), files, nil
}

// filesDigest is the canonical hash of a sorted listing.
func filesDigest(files []File) string {
	h := sha256.New()
	for _, f := range files {
		// NUL cannot occur in paths; it separates the fields unambiguously.
		fmt.Fprintf(h, "%s\x00%s\x00%s\n", f.Path, f.Mode, f.Digest)
	}
	return prefixSHA256 + hex.EncodeToString(h.Sum(nil))
}

func listContext(dir, dockerfile string) ([]File, error) {
	st, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("build context %s: %w", dir, err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("build context %s is not a directory", dir)
	}
	if dockerfile == "" {
		dockerfile = "Dockerfile"
	}
	patterns, ignoreName, err := readIgnoreFile(dir, dockerfile)
	if err != nil {
		return nil, err
	}
	pm, err := patternmatcher.New(patterns)
	if err != nil {
		return nil, fmt.Errorf("compiling ignore patterns of %s: %w", dir, err)
	}
	keep := map[string]bool{path.Clean(dockerfile): true}
	if ignoreName != "" {
		keep[ignoreName] = true
	}

	var files []File
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		if rel == "." {
			return nil
		}
		slashRel := filepath.ToSlash(rel)
		if slices.Contains(alwaysExcluded, slashRel) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		excluded := false
		if len(patterns) > 0 && !keep[slashRel] {
			excluded, err = pm.MatchesOrParentMatches(rel)
			if err != nil {
				return fmt.Errorf("matching %s against ignore patterns: %w", slashRel, err)
			}
		}
		if excluded {
			// An excluded directory still has to be walked when an
			// exception ("!pattern") or an always-kept file may
			// re-include something below it.
			if d.IsDir() && !pm.Exclusions() && !hasKeepBelow(keep, slashRel) {
				return filepath.SkipDir
			}
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		f, err := fileEntry(p, slashRel, info)
		if err != nil {
			return err
		}
		files = append(files, f)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("listing build context %s: %w", dir, err)
	}
	slices.SortFunc(files, func(a, b File) int { return strings.Compare(a.Path, b.Path) })
	return files, nil
}

func hasKeepBelow(keep map[string]bool, dir string) bool {
	for k := range keep {
		if strings.HasPrefix(k, dir+"/") {
			return true
		}
	}
	return false
}

func unixMode(m fs.FileMode) string {
	bits := uint32(m.Perm())
	if m&fs.ModeSetuid != 0 {
		bits |= 0o4000
	}
	if m&fs.ModeSetgid != 0 {
		bits |= 0o2000
	}
	if m&fs.ModeSticky != 0 {
		bits |= 0o1000
	}
	return fmt.Sprintf("%04o", bits)
}

func fileEntry(abs, rel string, info fs.FileInfo) (File, error) {
	f := File{Path: rel, Mode: unixMode(info.Mode())}
	switch t := info.Mode().Type(); {
	case t == 0:
		d, err := hashFile(abs)
		if err != nil {
			return File{}, err
		}
		f.Digest = d
	case t == fs.ModeDir:
		f.Digest = digestDirectory
	case t == fs.ModeSymlink:
		target, err := os.Readlink(abs)
		if err != nil {
			return File{}, err
		}
		f.Digest = prefixSymlink + filepath.ToSlash(target)
	default:
		return File{}, fmt.Errorf("%s: unsupported file type %s in build context (exclude it in .dockerignore)", rel, t)
	}
	return f, nil
}

func hashFile(p string) (string, error) {
	fh, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer fh.Close()
	h := sha256.New()
	if _, err := io.Copy(h, fh); err != nil {
		return "", fmt.Errorf("hashing %s: %w", p, err)
	}
	return prefixSHA256 + hex.EncodeToString(h.Sum(nil)), nil
}

// diffFiles describes the differences between two sorted listings, one line
// per path.
func diffFiles(locked, current []File) []string {
	var out []string
	i, j := 0, 0
	for i < len(locked) || j < len(current) {
		switch {
		case j >= len(current) || (i < len(locked) && locked[i].Path < current[j].Path):
			out = append(out, "removed: "+locked[i].Path)
			i++
		case i >= len(locked) || current[j].Path < locked[i].Path:
			out = append(out, "added: "+current[j].Path)
			j++
		default:
			a, b := locked[i], current[j]
			switch {
			case a.Digest != b.Digest && kindOf(a.Digest) != kindOf(b.Digest):
				out = append(out, fmt.Sprintf("changed: %s (%s -> %s)", a.Path, kindOf(a.Digest), kindOf(b.Digest)))
			case a.Digest != b.Digest && strings.HasPrefix(a.Digest, prefixSymlink):
				out = append(out, fmt.Sprintf("changed: %s (symlink target %s -> %s)", a.Path, strings.TrimPrefix(a.Digest, prefixSymlink), strings.TrimPrefix(b.Digest, prefixSymlink)))
			case a.Digest != b.Digest && a.Mode != b.Mode:
				out = append(out, fmt.Sprintf("changed: %s (content and mode %s -> %s)", a.Path, a.Mode, b.Mode))
			case a.Digest != b.Digest:
				out = append(out, fmt.Sprintf("changed: %s (content)", a.Path))
			case a.Mode != b.Mode:
				out = append(out, fmt.Sprintf("changed: %s (mode %s -> %s)", a.Path, a.Mode, b.Mode))
			}
			i++
			j++
		}
	}
	return out
}

func kindOf(digest string) string {
	switch {
	case digest == digestDirectory:
		return "directory"
	case strings.HasPrefix(digest, prefixSymlink):
		return "symlink"
	default:
		return "file"
	}
}
