package distribute_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/random"

	"github.com/twinforge/twinforge/distribute"
)

func TestFromLayout(t *testing.T) {
	blobPath := func(dir string, h v1.Hash) string { return filepath.Join(dir, "blobs", h.Algorithm, h.Hex) }
	tests := []struct {
		name             string
		damage           func(t *testing.T, dir string, img v1.Image)
		wantVerification bool
		want             string
	}{
		{"intact", func(*testing.T, string, v1.Image) {}, false, ""},
		{"layer flipped", func(t *testing.T, dir string, img v1.Image) {
			ls, _ := img.Layers()
			d, _ := ls[1].Digest()
			flip(t, blobPath(dir, d))
		}, true, "layer 1"},
		{"layer missing", func(t *testing.T, dir string, img v1.Image) {
			ls, _ := img.Layers()
			d, _ := ls[0].Digest()
			if err := os.Remove(blobPath(dir, d)); err != nil {
				t.Fatal(err)
			}
		}, true, "missing"},
		{"layer truncated", func(t *testing.T, dir string, img v1.Image) {
			ls, _ := img.Layers()
			d, _ := ls[2].Digest()
			if err := os.Truncate(blobPath(dir, d), 10); err != nil {
				t.Fatal(err)
			}
		}, true, "layer 2"},
		{"config flipped", func(t *testing.T, dir string, img v1.Image) {
			d, _ := img.ConfigName()
			flip(t, blobPath(dir, d))
		}, true, "config"},
		{"manifest flipped", func(t *testing.T, dir string, img v1.Image) {
			d, _ := img.Digest()
			flip(t, blobPath(dir, d))
		}, true, "manifest"},
		{"two images", func(t *testing.T, dir string, _ v1.Image) {
			other, _ := random.Image(100, 1)
			p, _ := layout.FromPath(dir)
			if err := p.AppendImage(other); err != nil {
				t.Fatal(err)
			}
		}, false, "2 manifests"},
		{"an index", func(t *testing.T, dir string, _ v1.Image) {
			if err := os.RemoveAll(dir); err != nil {
				t.Fatal(err)
			}
			idx, _ := random.Index(100, 1, 2)
			p, _ := layout.Write(dir, empty.Index)
			if err := p.AppendIndex(idx); err != nil {
				t.Fatal(err)
			}
		}, false, "not an image manifest"},
		{"empty", func(t *testing.T, dir string, _ v1.Image) {
			if err := os.RemoveAll(dir); err != nil {
				t.Fatal(err)
			}
			if _, err := layout.Write(dir, empty.Index); err != nil {
				t.Fatal(err)
			}
		}, false, "no image"},
		{"not a layout", func(t *testing.T, dir string, _ v1.Image) {
			if err := os.Remove(filepath.Join(dir, "index.json")); err != nil {
				t.Fatal(err)
			}
		}, false, "index.json"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			img, err := random.Image(1024, 3)
			if err != nil {
				t.Fatal(err)
			}
			dir := filepath.Join(t.TempDir(), "oci")
			p, err := layout.Write(dir, empty.Index)
			if err != nil {
				t.Fatal(err)
			}
			if err := p.AppendImage(img); err != nil {
				t.Fatal(err)
			}
			tt.damage(t, dir, img)

			got, err := distribute.FromLayout(dir)
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				if g, w := digestOf(t, got), digestOf(t, img); g != w {
					t.Errorf("digest %s, want %s", g, w)
				}
				return
			}
			if err == nil {
				t.Fatal("FromLayout accepted a bad layout")
			}
			t.Logf("error: %v", err)
			if errors.Is(err, distribute.ErrVerification) != tt.wantVerification {
				t.Errorf("errors.Is(ErrVerification) = %v, want %v", !tt.wantVerification, tt.wantVerification)
			}
			if !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), dir) {
				t.Errorf("error %q should name %s and mention %q", err, dir, tt.want)
			}
		})
	}
}

func flip(t *testing.T, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0xff
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}
