package distribute

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
)

// FromLayout returns the single image of the OCI image layout in dir, after
// checking every blob it refers to (manifest, config, layers) against its
// digest and size. A layout whose content does not match fails with
// ErrVerification; one holding no image, several, or an index is an error
// naming dir.
func FromLayout(dir string) (v1.Image, error) {
	p, err := layout.FromPath(dir)
	if err != nil {
		return nil, fmt.Errorf("reading OCI layout %s: %w", dir, err)
	}
	idx, err := p.ImageIndex()
	if err != nil {
		return nil, fmt.Errorf("reading OCI layout %s: %w", dir, err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, fmt.Errorf("reading OCI layout %s: index.json: %w", dir, err)
	}
	switch n := len(im.Manifests); {
	case n == 0:
		return nil, fmt.Errorf("OCI layout %s holds no image", dir)
	case n > 1:
		return nil, fmt.Errorf("OCI layout %s holds %d manifests; push needs exactly one image", dir, n)
	}
	desc := im.Manifests[0]
	if !desc.MediaType.IsImage() {
		return nil, fmt.Errorf("OCI layout %s holds a %s, not an image manifest", dir, desc.MediaType)
	}
	if err := checkBlob(p, desc); err != nil {
		return nil, fmt.Errorf("OCI layout %s: manifest: %w", dir, err)
	}
	img, err := p.Image(desc.Digest)
	if err != nil {
		return nil, fmt.Errorf("reading OCI layout %s: image %s: %w", dir, desc.Digest, err)
	}
	m, err := img.Manifest()
	if err != nil {
		return nil, fmt.Errorf("reading OCI layout %s: image %s: %w", dir, desc.Digest, err)
	}
	if err := checkBlob(p, m.Config); err != nil {
		return nil, fmt.Errorf("OCI layout %s: config: %w", dir, err)
	}
	for i, l := range m.Layers {
		if !l.MediaType.IsDistributable() {
			continue // foreign layers are not in the layout
		}
		if err := checkBlob(p, l); err != nil {
			return nil, fmt.Errorf("OCI layout %s: layer %d: %w", dir, i, err)
		}
	}
	return img, nil
}

// checkBlob hashes a blob of the layout and compares digest and size.
func checkBlob(p layout.Path, d v1.Descriptor) error {
	if d.Digest.Algorithm != "sha256" {
		return fmt.Errorf("%w: blob %s: only sha256 digests are supported", ErrVerification, d.Digest)
	}
	rc, err := p.Blob(d.Digest)
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("%w: blob %s is missing", ErrVerification, d.Digest)
	}
	if err != nil {
		return fmt.Errorf("opening blob %s: %w", d.Digest, err)
	}
	defer rc.Close()
	h := sha256.New()
	n, err := io.Copy(h, rc)
	if err != nil {
		return fmt.Errorf("reading blob %s: %w", d.Digest, err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != d.Digest.Hex {
		return fmt.Errorf("%w: blob %s has digest sha256:%s", ErrVerification, d.Digest, got)
	}
	if n != d.Size {
		return fmt.Errorf("%w: blob %s is %d bytes, its descriptor says %d", ErrVerification, d.Digest, n, d.Size)
	}
	return nil
}

// manifestDescriptor describes an image's manifest from its own bytes.
func manifestDescriptor(img v1.Image) (v1.Descriptor, []byte, error) {
	raw, err := img.RawManifest()
	if err != nil {
		return v1.Descriptor{}, nil, fmt.Errorf("reading the image manifest: %w", err)
	}
	mt, err := img.MediaType()
	if err != nil {
		return v1.Descriptor{}, nil, fmt.Errorf("reading the image media type: %w", err)
	}
	d, size, err := v1.SHA256(bytes.NewReader(raw))
	if err != nil {
		return v1.Descriptor{}, nil, err
	}
	return v1.Descriptor{MediaType: mt, Digest: d, Size: size}, raw, nil
}
