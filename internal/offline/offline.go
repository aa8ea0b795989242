package offline

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Epoch is the timestamp of every file and of the image config.
var Epoch = time.Unix(0, 0).UTC()

// Entry is one file system entry of a layer.
type Entry struct {
	// Path is slash-separated and relative to the image root.
	Path     string
	Type     byte // tar.TypeReg, tar.TypeDir or tar.TypeSymlink
	Mode     int64
	Linkname string
	// Source is a host file to copy, or Data the content itself.
	Source string
	Data   []byte
}

// Dir is a directory entry.
func Dir(p string, mode int64) Entry { return Entry{Path: p, Type: tar.TypeDir, Mode: mode} }

// File is a regular file with the given content.
func File(p string, mode int64, data string) Entry {
	return Entry{Path: p, Type: tar.TypeReg, Mode: mode, Data: []byte(data)}
}

// Layer packs entries, sorted by path with parents added, into a layer.
// Uncompressed layers suit large build-only images: nothing spends time
// compressing what is unpacked at once.
func Layer(entries []Entry, compressed bool) (v1.Layer, error) {
	entries = withParents(entries)
	sort.Slice(entries, func(i, j int) bool { return entries[i].Path < entries[j].Path })
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		hdr := &tar.Header{
			Name:     e.Path,
			Typeflag: e.Type,
			Mode:     e.Mode,
			Linkname: e.Linkname,
			ModTime:  Epoch,
			Format:   tar.FormatPAX,
		}
		var data []byte
		switch e.Type {
		case tar.TypeDir:
			hdr.Name += "/"
		case tar.TypeReg:
			data = e.Data
			if e.Source != "" {
				b, err := os.ReadFile(e.Source)
				if err != nil {
					return nil, fmt.Errorf("reading %s: %w", e.Source, err)
				}
				data = b
			}
			hdr.Size = int64(len(data))
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, fmt.Errorf("writing %s: %w", e.Path, err)
		}
		if _, err := tw.Write(data); err != nil {
			return nil, fmt.Errorf("writing %s: %w", e.Path, err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	b := buf.Bytes()
	opener := func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
	if compressed {
		return tarball.LayerFromOpener(opener, tarball.WithMediaType(types.OCILayer))
	}
	return static.NewLayer(b, types.OCIUncompressedLayer), nil
}

func withParents(entries []Entry) []Entry {
	seen := map[string]bool{}
	for _, e := range entries {
		seen[e.Path] = true
	}
	out := append([]Entry(nil), entries...)
	for _, e := range entries {
		for d := path.Dir(e.Path); d != "." && d != "/" && !seen[d]; d = path.Dir(d) {
			seen[d] = true
			out = append(out, Dir(d, 0o755))
		}
	}
	return out
}

// Busybox is a minimal root file system around a static busybox: the
// binary, a link for each applet it lists, and the files a shell expects.
func Busybox(busybox string) ([]Entry, error) {
	out, err := exec.Command(busybox, "--list-full").Output()
	if err != nil {
		return nil, fmt.Errorf("listing applets of %s (install Debian's busybox-static): %w", busybox, err)
	}
	entries := []Entry{
		{Path: "bin/busybox", Type: tar.TypeReg, Mode: 0o755, Source: busybox},
		Dir("dev", 0o755), Dir("proc", 0o755), Dir("sys", 0o755),
		Dir("root", 0o700), Dir("tmp", 0o1777), Dir("etc", 0o755),
		File("etc/passwd", 0o644, "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"),
		File("etc/group", 0o644, "root:x:0:\nnogroup:x:65534:\n"),
	}
	seen := map[string]bool{"bin/busybox": true}
	for _, applet := range strings.Fields(string(out)) {
		applet = strings.TrimPrefix(applet, "/")
		if seen[applet] {
			continue
		}
		seen[applet] = true
		target, err := filepath.Rel(path.Dir(applet), "bin/busybox")
		if err != nil {
			return nil, err
		}
		entries = append(entries, Entry{Path: applet, Type: tar.TypeSymlink, Mode: 0o777, Linkname: filepath.ToSlash(target)})
	}
	return entries, nil
}

// Tree copies a host directory under prefix, keeping only what keep
// accepts. Modes are normalized to 0755 (executable) or 0644; symlinks are
// kept as links.
func Tree(hostDir, prefix string, keep func(rel string, d fs.DirEntry) bool) ([]Entry, error) {
	var entries []Entry
	err := filepath.WalkDir(hostDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(hostDir, p)
		if err != nil || rel == "." {
			return err
		}
		rel = filepath.ToSlash(rel)
		if !keep(rel, d) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		name := path.Join(prefix, rel)
		switch {
		case d.IsDir():
			entries = append(entries, Dir(name, 0o755))
		case d.Type()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			entries = append(entries, Entry{Path: name, Type: tar.TypeSymlink, Mode: 0o777, Linkname: target})
		case d.Type().IsRegular():
			info, err := d.Info()
			if err != nil {
				return err
			}
			mode := int64(0o644)
			if info.Mode()&0o111 != 0 {
				mode = 0o755
			}
			entries = append(entries, Entry{Path: name, Type: tar.TypeReg, Mode: mode, Source: p})
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", hostDir, err)
	}
	return entries, nil
}

// Image stacks layers into an image with the given config.
func Image(cfg v1.Config, platform v1.Platform, layers ...v1.Layer) (v1.Image, error) {
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err := mutate.AppendLayers(img, layers...)
	if err != nil {
		return nil, fmt.Errorf("adding layers: %w", err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.Config = cfg
	cf.OS, cf.Architecture, cf.Variant = platform.OS, platform.Architecture, platform.Variant
	cf.Created = v1.Time{Time: Epoch}
	cf.History = nil
	for range layers {
		cf.History = append(cf.History, v1.History{Created: v1.Time{Time: Epoch}, CreatedBy: "twinforge examples (offline)"})
	}
	return mutate.ConfigFile(img, cf)
}

// WriteLayout writes img as the only image of a new OCI layout at dir,
// tagged refName, replacing what was there. It writes beside dir and
// renames, so dir is never half written.
func WriteLayout(dir string, img v1.Image, refName string) (v1.Hash, error) {
	tmp := dir + ".tmp"
	if err := os.RemoveAll(tmp); err != nil {
		return v1.Hash{}, err
	}
	p, err := layout.Write(tmp, empty.Index)
	if err != nil {
		return v1.Hash{}, fmt.Errorf("creating layout %s: %w", tmp, err)
	}
	if err := p.AppendImage(img, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": refName})); err != nil {
		return v1.Hash{}, fmt.Errorf("writing image to %s: %w", tmp, err)
	}
	if err := os.RemoveAll(dir); err != nil {
		return v1.Hash{}, err
	}
	if err := os.Rename(tmp, dir); err != nil {
		return v1.Hash{}, err
	}
	return img.Digest()
}
