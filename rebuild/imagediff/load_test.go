package imagediff

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

func TestLoad(t *testing.T) {
	ctx := context.Background()
	amd := buildImage(t, imgSpec{layers: [][]byte{tarBytes(t, tfile{name: "a", body: "amd64"})}})
	arm := buildImage(t, imgSpec{layers: [][]byte{tarBytes(t, tfile{name: "a", body: "arm64"})}, arch: "arm64"})
	amdDigest, armDigest := digestOf(t, amd), digestOf(t, arm)

	single := writeLayout(t, amd)
	multi := writeLayout(t, amd, arm)

	// A layout holding one multi-platform index (plus an attestation-like
	// manifest that must be ignored when counting images).
	nested := t.TempDir()
	lp, err := layout.Write(nested, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	idx := mutate.AppendManifests(empty.Index,
		mutate.IndexAddendum{Add: amd, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}}},
		mutate.IndexAddendum{Add: arm, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "arm64"}}},
	)
	if err := lp.AppendIndex(idx); err != nil {
		t.Fatal(err)
	}
	idxDigest, err := idx.Digest()
	if err != nil {
		t.Fatal(err)
	}

	nestedOne := t.TempDir()
	lp1, err := layout.Write(nestedOne, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	att := buildImage(t, imgSpec{layers: [][]byte{tarBytes(t, tfile{name: "att", body: "{}"})}})
	idx1 := mutate.AppendManifests(empty.Index,
		mutate.IndexAddendum{Add: arm, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "arm64"}}},
		mutate.IndexAddendum{Add: att, Descriptor: v1.Descriptor{
			Platform:    &v1.Platform{OS: "unknown", Architecture: "unknown"},
			Annotations: map[string]string{"vnd.docker.reference.type": "attestation-manifest"},
		}},
	)
	if err := lp1.AppendIndex(idx1); err != nil {
		t.Fatal(err)
	}

	// A layout whose only descriptor is not an image.
	artifact := t.TempDir()
	lpa, err := layout.Write(artifact, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	blob := []byte(`{"hello":"world"}`)
	sum := sha256.Sum256(blob)
	blobHash := v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(sum[:])}
	if err := lpa.WriteBlob(blobHash, io.NopCloser(bytes.NewReader(blob))); err != nil {
		t.Fatal(err)
	}
	if err := lpa.AppendDescriptor(v1.Descriptor{MediaType: types.MediaType("application/vnd.example.thing+json"), Digest: blobHash, Size: int64(len(blob))}); err != nil {
		t.Fatal(err)
	}

	notLayout := t.TempDir()
	if err := os.WriteFile(filepath.Join(notLayout, "README"), []byte("hi"), 0o644); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(t.TempDir(), "does-not-exist")

	tests := []struct {
		name       string
		ref        string
		wantDigest v1.Hash
		wantErr    []string
		wantIs     error
	}{
		{name: "single image", ref: single, wantDigest: amdDigest},
		{name: "oci prefix", ref: "oci:" + single, wantDigest: amdDigest},
		{name: "digest selects", ref: multi + "@" + armDigest.String(), wantDigest: armDigest},
		{name: "oci prefix with digest", ref: "oci:" + multi + "@" + amdDigest.String(), wantDigest: amdDigest},
		{name: "digest inside nested index", ref: nested + "@" + armDigest.String(), wantDigest: armDigest},
		{name: "nested index with one image and an attestation", ref: nestedOne, wantDigest: armDigest},
		{
			name:    "multiple manifests without digest",
			ref:     multi,
			wantErr: []string{"contains 2 images", multi + "@DIGEST", amdDigest.String(), armDigest.String()},
		},
		{
			name:    "nested multi-platform index without digest",
			ref:     nested,
			wantErr: []string{"contains 2 images", "linux/amd64", "linux/arm64"},
		},
		{
			name:    "digest of a multi-platform index",
			ref:     nested + "@" + idxDigest.String(),
			wantErr: []string{"contains 2 images"},
		},
		{
			name:    "unknown digest",
			ref:     multi + "@sha256:" + strings.Repeat("0", 64),
			wantErr: []string{"no manifest sha256:000", "images available", amdDigest.String()},
		},
		{name: "missing dir", ref: missing, wantErr: []string{"no OCI layout at " + missing}, wantIs: os.ErrNotExist},
		{name: "not a layout", ref: notLayout, wantErr: []string{notLayout + " is not an OCI image layout (no index.json)"}},
		{name: "not an image (digest)", ref: artifact + "@" + blobHash.String(), wantErr: []string{"application/vnd.example.thing+json"}, wantIs: ErrNotAnImage},
		{name: "not an image (only descriptor)", ref: artifact, wantErr: []string{"contains no image manifest"}, wantIs: ErrNotAnImage},
		{name: "bad digest", ref: single + "@sha256:xyz", wantErr: []string{"parsing digest"}},
		{name: "invalid reference", ref: "Not A Ref!!", wantErr: []string{"neither an OCI layout directory nor a valid image reference"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			img, err := Load(ctx, tc.ref)
			if len(tc.wantErr) > 0 {
				if err == nil {
					t.Fatalf("Load(%q) succeeded, want error", tc.ref)
				}
				for _, w := range tc.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q does not contain %q", err, w)
					}
				}
				if tc.wantIs != nil && !errors.Is(err, tc.wantIs) {
					t.Errorf("error %v is not %v", err, tc.wantIs)
				}
				return
			}
			if err != nil {
				t.Fatalf("Load(%q): %v", tc.ref, err)
			}
			if got := digestOf(t, img); got != tc.wantDigest {
				t.Errorf("digest = %s, want %s", got, tc.wantDigest)
			}
		})
	}
}

func TestSplitDigest(t *testing.T) {
	for _, tc := range []struct{ in, dir, digest string }{
		{"out/image", "out/image", ""},
		{"out/image@sha256:" + strings.Repeat("a", 64), "out/image", "sha256:" + strings.Repeat("a", 64)},
		{"weird@dir/x", "weird@dir/x", ""},
	} {
		dir, h, err := splitDigest(tc.in)
		if err != nil {
			t.Fatalf("%s: %v", tc.in, err)
		}
		got := ""
		if h != nil {
			got = h.String()
		}
		if dir != tc.dir || got != tc.digest {
			t.Errorf("splitDigest(%q) = %q, %q", tc.in, dir, got)
		}
	}
}
