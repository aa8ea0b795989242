package distribute

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Common artifact and media types for Artifact.
const (
	// SigstoreBundleType is the media type of a Sigstore bundle v0.3, used
	// both as the artifact type and as the layer's media type.
	SigstoreBundleType = "application/vnd.dev.sigstore.bundle.v0.3+json"
	// InTotoType is the media type of an in-toto statement (SLSA
	// provenance, SBOMs wrapped in a statement).
	InTotoType = "application/vnd.in-toto+json"
)

// Artifact is something attached to an image as an OCI 1.1 referrer: a
// manifest whose subject is the image, whose artifactType is ArtifactType and
// whose single layer holds Data with media type MediaType. The config is the
// OCI empty descriptor, as the image spec recommends for artifacts.
type Artifact struct {
	// ArtifactType says what the artifact is, e.g. SigstoreBundleType.
	ArtifactType string
	// MediaType is the media type of Data. Empty means ArtifactType.
	MediaType string
	// Data is the artifact's content.
	Data []byte
	// Annotations go on the referrer manifest (and so into referrers
	// listings). Optional.
	Annotations map[string]string
}

// emptyJSON is the OCI empty descriptor's content, "{}".
var emptyJSON = []byte("{}")

func (a Artifact) validate() error {
	if a.ArtifactType == "" {
		return errors.New("artifact type is empty")
	}
	if err := checkMediaType(a.ArtifactType); err != nil {
		return fmt.Errorf("artifact type: %w", err)
	}
	if a.MediaType != "" {
		if err := checkMediaType(a.MediaType); err != nil {
			return fmt.Errorf("media type: %w", err)
		}
	}
	if len(a.Data) == 0 {
		return errors.New("artifact has no data")
	}
	return nil
}

func checkMediaType(mt string) error {
	t, params, err := mime.ParseMediaType(mt)
	if err != nil || len(params) != 0 || !strings.Contains(t, "/") {
		return fmt.Errorf("%q is not a media type like application/vnd.example+json", mt)
	}
	return nil
}

func (a Artifact) layerMediaType() types.MediaType {
	if a.MediaType != "" {
		return types.MediaType(a.MediaType)
	}
	return types.MediaType(a.ArtifactType)
}

// referrerManifest is an artifact's manifest, ready to push.
type referrerManifest struct {
	raw    []byte
	digest v1.Hash
	layer  []byte // the artifact's data
	art    Artifact
}

// RawManifest and MediaType make a referrerManifest a remote.Taggable.
func (m *referrerManifest) RawManifest() ([]byte, error)        { return m.raw, nil }
func (m *referrerManifest) MediaType() (types.MediaType, error) { return types.OCIManifestSchema1, nil }

// newReferrerManifest builds an artifact's OCI image manifest with the image
// as its subject. The same artifact for the same image always gives the same
// bytes and digest.
func newReferrerManifest(subject v1.Descriptor, a Artifact) (*referrerManifest, error) {
	if err := a.validate(); err != nil {
		return nil, err
	}
	layerDigest, layerSize, err := v1.SHA256(bytes.NewReader(a.Data))
	if err != nil {
		return nil, err
	}
	emptyDigest, emptySize, err := v1.SHA256(bytes.NewReader(emptyJSON))
	if err != nil {
		return nil, err
	}
	sub := v1.Descriptor{MediaType: subject.MediaType, Digest: subject.Digest, Size: subject.Size}
	m := v1.Manifest{
		SchemaVersion: 2,
		MediaType:     types.OCIManifestSchema1,
		ArtifactType:  a.ArtifactType,
		Config:        v1.Descriptor{MediaType: types.OCIEmptyJSON, Digest: emptyDigest, Size: emptySize, Data: emptyJSON},
		Layers:        []v1.Descriptor{{MediaType: a.layerMediaType(), Digest: layerDigest, Size: layerSize}},
		Annotations:   a.Annotations,
		Subject:       &sub,
	}
	raw, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("encoding referrer manifest: %w", err)
	}
	d, _, err := v1.SHA256(bytes.NewReader(raw))
	if err != nil {
		return nil, err
	}
	return &referrerManifest{raw: raw, digest: d, layer: a.Data, art: a}, nil
}
