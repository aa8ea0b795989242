package distribute

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
)

// AttachmentFile is a file pushed as a referrer of ArtifactType beside
// an image (twinforge push --attachment FILE=ARTIFACT_TYPE).
type AttachmentFile struct {
	Path, ArtifactType string
}

// ParseAttachments parses FILE=ARTIFACT_TYPE values. The type is after
// the last "=", so file names may contain one.
func ParseAttachments(values []string) ([]AttachmentFile, error) {
	var out []AttachmentFile
	for _, v := range values {
		i := strings.LastIndex(v, "=")
		if i <= 0 || i == len(v)-1 {
			return nil, fmt.Errorf("--attachment %q: use FILE=ARTIFACT_TYPE, e.g. bundle.json=%s", v, SigstoreBundleType)
		}
		out = append(out, AttachmentFile{Path: v[:i], ArtifactType: v[i+1:]})
	}
	return out, nil
}

// InvalidPushError is a PushLayout request refused before anything is
// pushed: a layout that is not a directory, or a file that cannot be read.
type InvalidPushError struct{ Err error }

func (e *InvalidPushError) Error() string { return e.Err.Error() }
func (e *InvalidPushError) Unwrap() error { return e.Err }

// PushLayout pushes the image of the OCI layout dir by digest to ref, with
// files as its referrers (Push).
func PushLayout(ctx context.Context, dir string, ref name.Reference, files []AttachmentFile, opts ...Option) (*PushResult, error) {
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		return nil, &InvalidPushError{fmt.Errorf("LAYOUT %s: not a directory; give an OCI image layout, e.g. the --oci-layout of 'twinforge build'", dir)}
	}
	for _, f := range files {
		if fi, err := os.Stat(f.Path); err != nil || fi.IsDir() {
			return nil, &InvalidPushError{fmt.Errorf("--attachment %s: not a readable file", f.Path)}
		}
	}
	img, err := FromLayout(dir)
	if err != nil {
		return nil, err
	}
	artifacts := make([]Artifact, len(files))
	for i, f := range files {
		if artifacts[i].Data, err = os.ReadFile(f.Path); err != nil {
			return nil, &InvalidPushError{fmt.Errorf("--attachment %s: %w", f.Path, err)}
		}
		artifacts[i].ArtifactType = f.ArtifactType
	}
	return Push(ctx, img, ref, artifacts, opts...)
}
