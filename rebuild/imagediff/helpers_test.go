package imagediff

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// tfile describes one tar entry of a test layer.
type tfile struct {
	name   string
	typ    byte  // default tar.TypeReg
	mode   int64 // default 0644 (0755 for dirs)
	uid    int
	mtime  int64
	body   string
	link   string
	xattrs map[string]string
	format tar.Format
}

func tarBytes(t testing.TB, files ...tfile) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		h := &tar.Header{
			Name:     f.name,
			Typeflag: f.typ,
			Mode:     f.mode,
			Uid:      f.uid,
			ModTime:  time.Unix(f.mtime, 0),
			Linkname: f.link,
			Format:   f.format,
		}
		if h.Typeflag == 0 {
			h.Typeflag = tar.TypeReg
		}
		if h.Mode == 0 {
			h.Mode = 0o644
			if h.Typeflag == tar.TypeDir {
				h.Mode = 0o755
			}
		}
		if h.Typeflag == tar.TypeReg {
			h.Size = int64(len(f.body))
		}
		for k, v := range f.xattrs {
			if h.PAXRecords == nil {
				h.PAXRecords = map[string]string{}
			}
			h.PAXRecords["SCHILY.xattr."+k] = v
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			if _, err := io.WriteString(tw, f.body); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// imgSpec describes a test image.
type imgSpec struct {
	layers [][]byte
	env    []string
	arch   string // default amd64
	// uncompressed uses static uncompressed layers (digest == diffID)
	// instead of gzip layers from tarball.LayerFromOpener.
	uncompressed []bool
}

func gzLayer(t testing.TB, b []byte) v1.Layer {
	t.Helper()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(b)), nil
	}, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func buildImage(t testing.TB, s imgSpec) v1.Image {
	t.Helper()
	var ls []v1.Layer
	for i, b := range s.layers {
		if i < len(s.uncompressed) && s.uncompressed[i] {
			ls = append(ls, static.NewLayer(b, types.OCIUncompressedLayer))
		} else {
			ls = append(ls, gzLayer(t, b))
		}
	}
	img, err := mutate.AppendLayers(empty.Image, ls...)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS = "linux"
	cf.Architecture = s.arch
	if cf.Architecture == "" {
		cf.Architecture = "amd64"
	}
	cf.Config.Env = s.env
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		t.Fatal(err)
	}
	img = mutate.MediaType(img, types.OCIManifestSchema1)
	return mutate.ConfigMediaType(img, types.OCIConfigJSON)
}

// writeLayout writes imgs into a fresh OCI layout and returns its directory.
func writeLayout(t testing.TB, imgs ...v1.Image) string {
	t.Helper()
	dir := t.TempDir()
	lp, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	for _, img := range imgs {
		if err := lp.AppendImage(img); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// viaLayout round-trips img through an OCI layout and Load.
func viaLayout(t testing.TB, img v1.Image) v1.Image {
	t.Helper()
	got, err := Load(context.Background(), writeLayout(t, img))
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func digestOf(t testing.TB, img v1.Image) v1.Hash {
	t.Helper()
	h, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return h
}
