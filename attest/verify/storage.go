package verify

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/sigstore/sigstore-go/pkg/bundle"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/twinforge/twinforge/internal/fsatomic"
)

// Files beside an OCI layout.
const (
	// AttestationsDir is the directory of an OCI layout holding its bundles.
	AttestationsDir = "attestations"
	// ProvenanceFile holds the provenance bundle (a DSSE envelope of the
	// SLSA statement).
	ProvenanceFile = "provenance.sigstore.json"
	// ImageFile holds the image bundle (a message signature over the image
	// manifest's bytes).
	ImageFile = "image.sigstore.json"
	// BundleMediaType is the media type of the bundles twinforge writes.
	BundleMediaType = "application/vnd.dev.sigstore.bundle.v0.3+json"
)

// Bundles are the signatures of one image.
type Bundles struct {
	// Provenance signs the provenance statement about the image.
	Provenance *bundle.Bundle
	// Image signs the image manifest itself.
	Image *bundle.Bundle
}

// WriteBundles stores b as <layoutDir>/attestations/provenance.sigstore.json
// and image.sigstore.json (protobuf JSON of the bundles). Both are replaced
// together: the new files are written to a temporary directory which is then
// renamed into place, so a reader sees the old pair, the new pair or, for an
// instant, none, never a mix. Other files in the directory are kept.
func WriteBundles(layoutDir string, b Bundles) error {
	if b.Provenance == nil || b.Image == nil {
		return errors.New("writing bundles: both the provenance and the image bundle are required")
	}
	if _, err := os.Stat(filepath.Join(layoutDir, "oci-layout")); err != nil {
		return fmt.Errorf("writing bundles: %s is not an OCI layout: %w", layoutDir, err)
	}
	files := map[string]*bundle.Bundle{ProvenanceFile: b.Provenance, ImageFile: b.Image}
	final := filepath.Join(layoutDir, AttestationsDir)
	tmp, err := os.MkdirTemp(layoutDir, "."+AttestationsDir+".tmp-")
	if err != nil {
		return fmt.Errorf("writing bundles: %w", err)
	}
	committed := false
	defer func() {
		if !committed {
			os.RemoveAll(tmp)
		}
	}()
	if err := os.Chmod(tmp, 0o755); err != nil {
		return fmt.Errorf("writing bundles: %w", err)
	}
	for name, bd := range files {
		data, err := protojson.Marshal(bd.Bundle)
		if err != nil {
			return fmt.Errorf("writing bundles: encoding %s: %w", name, err)
		}
		if err := fsatomic.WriteFile(filepath.Join(tmp, name), data, 0o644); err != nil {
			return fmt.Errorf("writing bundles: %w", err)
		}
	}
	// Keep whatever else lives in the directory (other attestations).
	if entries, err := os.ReadDir(final); err == nil {
		for _, e := range entries {
			if _, ours := files[e.Name()]; ours || !e.Type().IsRegular() {
				continue
			}
			if err := os.Link(filepath.Join(final, e.Name()), filepath.Join(tmp, e.Name())); err != nil {
				return fmt.Errorf("writing bundles: keeping %s: %w", e.Name(), err)
			}
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("writing bundles: %w", err)
	}
	if err := fsatomic.SyncDir(tmp); err != nil {
		return fmt.Errorf("writing bundles: %w", err)
	}
	if err := fsatomic.ReplaceDir(tmp, final); err != nil {
		return fmt.Errorf("writing bundles: %w", err)
	}
	committed = true
	return nil
}

// ReadBundles reads the bundles WriteBundles stored beside an OCI layout.
// A missing file leaves its field nil (an unsigned image has neither); a
// file that is not a valid bundle is an error.
func ReadBundles(layoutDir string) (Bundles, error) {
	var out Bundles
	for name, dst := range map[string]**bundle.Bundle{ProvenanceFile: &out.Provenance, ImageFile: &out.Image} {
		b, err := ReadBundle(filepath.Join(layoutDir, AttestationsDir, name))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return Bundles{}, err
		}
		*dst = b
	}
	return out, nil
}

// ReadBundle reads one Sigstore bundle (JSON) from a file.
func ReadBundle(path string) (*bundle.Bundle, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading bundle: %w", err)
	}
	return ParseBundle(data)
}

// ParseBundle decodes and validates a Sigstore bundle (JSON).
func ParseBundle(data []byte) (*bundle.Bundle, error) {
	var b bundle.Bundle
	if err := b.UnmarshalJSON(data); err != nil {
		return nil, fmt.Errorf("parsing bundle: %w", err)
	}
	return &b, nil
}

// ImageDigest returns the digest of the one image manifest an OCI layout's
// index.json lists. A layout with several is an error naming them.
func ImageDigest(layoutDir string) (string, error) {
	p, err := layout.FromPath(layoutDir)
	if err != nil {
		return "", fmt.Errorf("reading OCI layout %s: %w", layoutDir, err)
	}
	idx, err := p.ImageIndex()
	if err != nil {
		return "", fmt.Errorf("reading OCI layout %s: %w", layoutDir, err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return "", fmt.Errorf("reading OCI layout %s: index.json: %w", layoutDir, err)
	}
	switch len(im.Manifests) {
	case 1:
		d := im.Manifests[0].Digest.String()
		if !sha256Digest.MatchString(d) {
			return "", fmt.Errorf("reading OCI layout %s: manifest digest %q is not sha256", layoutDir, d)
		}
		return d, nil
	case 0:
		return "", fmt.Errorf("reading OCI layout %s: index.json lists no image", layoutDir)
	}
	var ds []string
	for _, m := range im.Manifests {
		ds = append(ds, m.Digest.String())
	}
	return "", fmt.Errorf("reading OCI layout %s: index.json lists %d manifests (%s): name the one to use", layoutDir, len(ds), strings.Join(ds, ", "))
}

// maxManifestBytes bounds a manifest read from a layout.
const maxManifestBytes = 4 << 20

// ReadManifest returns the bytes of the blob digest from an OCI layout
// (blobs/sha256/<hex>), checked against the digest.
func ReadManifest(layoutDir, digest string) ([]byte, error) {
	if !sha256Digest.MatchString(digest) {
		return nil, fmt.Errorf("reading manifest: digest %q: want sha256:<64 hex digits>", digest)
	}
	h, err := v1.NewHash(digest)
	if err != nil {
		return nil, fmt.Errorf("reading manifest: %w", err)
	}
	rc, err := layout.Path(layoutDir).Blob(h)
	if err != nil {
		return nil, fmt.Errorf("reading manifest %s: %w", digest, err)
	}
	defer rc.Close()
	data, err := io.ReadAll(io.LimitReader(rc, maxManifestBytes))
	if err != nil {
		return nil, fmt.Errorf("reading manifest %s: %w", digest, err)
	}
	if got, _, err := v1.SHA256(bytes.NewReader(data)); err != nil || got != h {
		return nil, fmt.Errorf("reading manifest %s: blob content does not match its digest", digest)
	}
	return data, nil
}

// SBOMFilePrefix starts the names of the SBOM bundles stored beside an OCI
// layout: attestations/sbom-spdx.sigstore.json, sbom-cyclonedx.sigstore.json.
const SBOMFilePrefix = "sbom-"

// ReadSBOMs reads the SBOM bundles stored beside an OCI layout, sorted by
// file name; none is no error.
func ReadSBOMs(layoutDir string) ([]*bundle.Bundle, error) {
	matches, err := filepath.Glob(filepath.Join(layoutDir, AttestationsDir, SBOMFilePrefix+"*.sigstore.json"))
	if err != nil {
		return nil, err
	}
	var out []*bundle.Bundle
	for _, m := range matches {
		b, err := ReadBundle(m)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", m, err)
		}
		out = append(out, b)
	}
	return out, nil
}
