package distribute

import (
	"encoding/json"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

func TestReferrerManifest(t *testing.T) {
	subject := v1.Descriptor{
		MediaType:   types.OCIManifestSchema1,
		Digest:      v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("ab", 32)},
		Size:        1234,
		Annotations: map[string]string{"dropped": "from the subject"},
	}
	a := Artifact{ArtifactType: SigstoreBundleType, Data: []byte(`{"bundle":1}`), Annotations: map[string]string{"k": "v"}}
	rm, err := newReferrerManifest(subject, a)
	if err != nil {
		t.Fatal(err)
	}
	var m v1.Manifest
	if err := json.Unmarshal(rm.raw, &m); err != nil {
		t.Fatal(err)
	}
	if m.SchemaVersion != 2 || m.MediaType != types.OCIManifestSchema1 || m.ArtifactType != SigstoreBundleType {
		t.Errorf("header = %d %s %s", m.SchemaVersion, m.MediaType, m.ArtifactType)
	}
	if m.Config.MediaType != types.OCIEmptyJSON || m.Config.Size != 2 ||
		m.Config.Digest.String() != "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a" {
		t.Errorf("config = %+v, want the OCI empty descriptor", m.Config)
	}
	if len(m.Layers) != 1 || m.Layers[0].MediaType != SigstoreBundleType || m.Layers[0].Size != int64(len(a.Data)) {
		t.Errorf("layers = %+v", m.Layers)
	}
	if m.Subject == nil || m.Subject.Digest != subject.Digest || m.Subject.Size != 1234 || m.Subject.Annotations != nil {
		t.Errorf("subject = %+v", m.Subject)
	}
	if m.Annotations["k"] != "v" {
		t.Errorf("annotations = %v", m.Annotations)
	}
	again, _ := newReferrerManifest(subject, a)
	if again.digest != rm.digest {
		t.Error("the same artifact gave two digests")
	}

	a.MediaType = InTotoType
	withMT, _ := newReferrerManifest(subject, a)
	if err := json.Unmarshal(withMT.raw, &m); err != nil {
		t.Fatal(err)
	}
	if m.Layers[0].MediaType != InTotoType || m.ArtifactType != SigstoreBundleType {
		t.Errorf("media type not used: %+v", m)
	}
}

func TestArtifactValidation(t *testing.T) {
	tests := []struct {
		a    Artifact
		want string
	}{
		{Artifact{Data: []byte("x")}, "artifact type is empty"},
		{Artifact{ArtifactType: "bundle", Data: []byte("x")}, "not a media type"},
		{Artifact{ArtifactType: "application/x; charset=utf-8", Data: []byte("x")}, "not a media type"},
		{Artifact{ArtifactType: SigstoreBundleType, MediaType: "json", Data: []byte("x")}, "media type"},
		{Artifact{ArtifactType: SigstoreBundleType}, "no data"},
	}
	for _, tt := range tests {
		err := tt.a.validate()
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("validate(%+v) = %v, want %q", tt.a, err, tt.want)
		}
	}
}
