package distribute

import (
	"fmt"
	"io"
	"os"
	"sync"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// sharedImage is the source image as destinations on other registries read
// it: each layer is downloaded from the source once, by the first
// destination that lacks it, into a file that every destination then
// uploads from. Destinations that hold a blob already never read it. The
// manifest and config are the source's own bytes, so the digest is kept.
type sharedImage struct {
	v1.Image
	layers map[v1.Hash]*sharedLayer
	order  []*sharedLayer
}

// shareLayers wraps an image source so its layers are fetched once into
// dir; for an index it returns nil and destinations read the source.
func shareLayers(desc *remote.Descriptor, dir string) (*sharedImage, error) {
	if desc.MediaType.IsIndex() {
		return nil, nil
	}
	img, err := desc.Image()
	if err != nil {
		return nil, err
	}
	layers, err := img.Layers()
	if err != nil {
		return nil, err
	}
	s := &sharedImage{Image: img, layers: map[v1.Hash]*sharedLayer{}}
	for _, l := range layers {
		d, err := l.Digest()
		if err != nil {
			return nil, err
		}
		sl, ok := s.layers[d]
		if !ok {
			sl = &sharedLayer{Layer: l, dir: dir}
			s.layers[d] = sl
		}
		s.order = append(s.order, sl)
	}
	return s, nil
}

func (s *sharedImage) Layers() ([]v1.Layer, error) {
	out := make([]v1.Layer, len(s.order))
	for i, l := range s.order {
		out[i] = l
	}
	return out, nil
}

func (s *sharedImage) LayerByDigest(h v1.Hash) (v1.Layer, error) {
	if l, ok := s.layers[h]; ok {
		return l, nil
	}
	return s.Image.LayerByDigest(h)
}

// sharedLayer downloads its source layer once. go-containerregistry checks
// the digest while the download is read, so a corrupt source fails here.
type sharedLayer struct {
	v1.Layer
	dir  string
	once sync.Once
	path string
	err  error
}

func (l *sharedLayer) Compressed() (io.ReadCloser, error) {
	l.once.Do(l.fetch)
	if l.err != nil {
		return nil, l.err
	}
	return os.Open(l.path)
}

func (l *sharedLayer) fetch() {
	d, err := l.Layer.Digest()
	if err != nil {
		l.err = err
		return
	}
	rc, err := l.Layer.Compressed()
	if err != nil {
		l.err = fmt.Errorf("reading blob %s from the source: %w", d, err)
		return
	}
	defer rc.Close()
	f, err := os.CreateTemp(l.dir, d.Hex+"-")
	if err != nil {
		l.err = err
		return
	}
	defer f.Close()
	if _, err := io.Copy(f, rc); err != nil {
		l.err = fmt.Errorf("reading blob %s from the source: %w", d, err)
		return
	}
	if err := f.Close(); err != nil {
		l.err = err
		return
	}
	l.path = f.Name()
}
