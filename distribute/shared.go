package distribute

import (
	"fmt"
	"io"
	"strings"
	"sync"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/cache"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"golang.org/x/sync/singleflight"
)

// sharedImage is the source image as destinations on other registries read
// it: go-containerregistry's layer cache (v1/cache, on disk in dir) in
// front of the source, filled once per layer by the first destination
// that needs it while the others wait for it (singleflight), then read
// from the cache by all of them. Destinations that hold a blob already
// never read it. The manifest and config are the source's own bytes, so
// the digest is kept.
type sharedImage struct {
	v1.Image
	cache cache.Cache
	fills singleflight.Group

	prefetching sync.Once
	running     sync.WaitGroup

	// filled are the cached layers as the cache gave them once:
	// go-containerregistry's cache hashes a blob in full each time it is
	// looked up, which for every destination cost more CPU than the upload
	// (46 % of twinforge's own CPU in BenchmarkReplicate).
	mu     sync.Mutex
	filled map[v1.Hash]v1.Layer
}

// prefetch starts filling the cache with every layer at once, so that the
// downloads run beside each other and beside the destinations' checks,
// instead of one by one as each upload first asks.
func (s *sharedImage) prefetch() {
	s.prefetching.Do(func() {
		layers, err := s.Image.Layers()
		if err != nil {
			return // each upload reads it and says why
		}
		for _, l := range layers {
			sl, ok := s.share(l).(*sharedLayer)
			if !ok {
				continue
			}
			s.running.Add(1)
			go func() {
				defer s.running.Done()
				_ = sl.fill()
			}()
		}
	})
}

// wait returns once every download prefetch started has ended.
func (s *sharedImage) wait() { s.running.Wait() }

// cached is the layer filled into the cache, looked up there once.
func (s *sharedImage) cached(d v1.Hash) (v1.Layer, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if l, ok := s.filled[d]; ok {
		return l, nil
	}
	l, err := s.cache.Get(d)
	if err != nil {
		return nil, err
	}
	if s.filled == nil {
		s.filled = map[v1.Hash]v1.Layer{}
	}
	s.filled[d] = l
	return l, nil
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
	return &sharedImage{Image: img, cache: cache.NewFilesystemCache(dir)}, nil
}

func (s *sharedImage) Layers() ([]v1.Layer, error) {
	layers, err := s.Image.Layers()
	if err != nil {
		return nil, err
	}
	out := make([]v1.Layer, len(layers))
	for i, l := range layers {
		out[i] = s.share(l)
	}
	return out, nil
}

// share routes a layer through the cache. The cache hands out a cached
// blob as gzip or zstd data as it is, but compresses anything else anew,
// which would change its digest: such layers are read from the source by
// each destination.
func (s *sharedImage) share(l v1.Layer) v1.Layer {
	mt, err := l.MediaType()
	if err != nil || !(strings.HasSuffix(string(mt), "gzip") || strings.HasSuffix(string(mt), "zstd")) {
		return l
	}
	return &sharedLayer{Layer: l, image: s}
}

func (s *sharedImage) LayerByDigest(h v1.Hash) (v1.Layer, error) {
	l, err := s.Image.LayerByDigest(h)
	if err != nil {
		return nil, err
	}
	if cfg, err := s.Image.ConfigName(); err == nil && cfg == h {
		return l, nil // the config blob is small and read as it is
	}
	return s.share(l), nil
}

// sharedLayer reads its source layer through the image's cache.
type sharedLayer struct {
	v1.Layer
	image *sharedImage
}

func (l *sharedLayer) Compressed() (io.ReadCloser, error) {
	d, err := l.Layer.Digest()
	if err != nil {
		return nil, err
	}
	if err := l.fill(); err != nil {
		return nil, fmt.Errorf("reading blob %s from the source: %w", d, err)
	}
	cached, err := l.image.cached(d)
	if err != nil {
		return nil, fmt.Errorf("reading blob %s from the cache: %w", d, err)
	}
	return cached.Compressed()
}

// fill puts the layer into the cache unless it is there, once however many
// ask at the same time; a failed fill is tried again by the next.
func (l *sharedLayer) fill() error {
	d, err := l.Layer.Digest()
	if err != nil {
		return err
	}
	// go-containerregistry checks the digest while the source is read, so
	// a corrupt source fails the fill and nothing is cached.
	_, err, _ = l.image.fills.Do(d.String(), func() (any, error) {
		if _, err := l.image.cached(d); err == nil {
			return nil, nil
		}
		put, err := l.image.cache.Put(l.Layer)
		if err != nil {
			return nil, err
		}
		rc, err := put.Compressed()
		if err != nil {
			return nil, err
		}
		_, cerr := io.Copy(io.Discard, rc)
		if err := rc.Close(); cerr == nil {
			cerr = err
		}
		if cerr != nil {
			_ = l.image.cache.Delete(d)
		}
		return nil, cerr
	})
	return err
}
