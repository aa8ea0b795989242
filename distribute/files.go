package distribute

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// AnnotationTitle names a file layer of an artifact, as ORAS does.
const AnnotationTitle = "org.opencontainers.image.title"

// maxFilesArtifact bounds what PullFiles reads: layers and bytes.
const (
	maxFiles     = 1024
	maxFileBytes = 16 << 20
)

// File is one file of a files artifact: a layer of the artifact manifest
// whose AnnotationTitle is Name.
type File struct {
	Name      string
	MediaType string
	Data      []byte
}

// FilesArtifact is an artifact read by PullFiles.
type FilesArtifact struct {
	// Ref names the artifact manifest by digest.
	Ref          name.Digest
	ArtifactType string
	Files        []File
}

// PushFiles publishes files as one OCI artifact (an image manifest with
// artifactType, the empty config and a layer per file, sorted by name) to
// ref: the blobs and the manifest by digest first, then everything is
// read back, and only then is the tag moved. It is the form in which
// files that must travel with images (a release index) reach a registry.
func PushFiles(ctx context.Context, ref name.Tag, artifactType string, files []File, opts ...Option) (*PushResult, error) {
	o, err := makeOptions(opts...)
	if err != nil {
		return nil, fmt.Errorf("pushing files to %s: %w", ref, err)
	}
	res, err := pushFiles(ctx, o, ref, artifactType, files)
	if err != nil {
		return nil, fmt.Errorf("pushing files to %s: %w", ref, explain(err))
	}
	return res, nil
}

func pushFiles(ctx context.Context, o *options, ref name.Tag, artifactType string, files []File) (*PushResult, error) {
	repo := ref.Context()
	if err := o.checkRegistry(repo.Registry); err != nil {
		return nil, err
	}
	if err := checkMediaType(artifactType); err != nil {
		return nil, fmt.Errorf("artifact type: %w", err)
	}
	if len(files) == 0 || len(files) > maxFiles {
		return nil, fmt.Errorf("%d files: want 1 to %d", len(files), maxFiles)
	}
	files = append([]File(nil), files...)
	sort.Slice(files, func(i, j int) bool { return files[i].Name < files[j].Name })
	emptyDigest, emptySize, err := v1.SHA256(bytes.NewReader(emptyJSON))
	if err != nil {
		return nil, err
	}
	m := v1.Manifest{
		SchemaVersion: 2,
		MediaType:     types.OCIManifestSchema1,
		ArtifactType:  artifactType,
		Config:        v1.Descriptor{MediaType: types.OCIEmptyJSON, Digest: emptyDigest, Size: emptySize, Data: emptyJSON},
	}
	layers := []v1.Layer{static.NewLayer(emptyJSON, types.OCIEmptyJSON)}
	for i, f := range files {
		switch {
		case f.Name == "" || strings.ContainsAny(f.Name, "/\\") || f.Name == "." || f.Name == "..":
			return nil, fmt.Errorf("file name %q: want a plain file name", f.Name)
		case i > 0 && files[i-1].Name == f.Name:
			return nil, fmt.Errorf("file %s is given twice", f.Name)
		case len(f.Data) > maxFileBytes:
			return nil, fmt.Errorf("file %s: %d bytes, at most %d", f.Name, len(f.Data), maxFileBytes)
		}
		if err := checkMediaType(f.MediaType); err != nil {
			return nil, fmt.Errorf("file %s: %w", f.Name, err)
		}
		d, size, err := v1.SHA256(bytes.NewReader(f.Data))
		if err != nil {
			return nil, err
		}
		m.Layers = append(m.Layers, v1.Descriptor{MediaType: types.MediaType(f.MediaType), Digest: d, Size: size, Annotations: map[string]string{AnnotationTitle: f.Name}})
		layers = append(layers, static.NewLayer(f.Data, types.MediaType(f.MediaType)))
	}
	raw, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	digest, _, err := v1.SHA256(bytes.NewReader(raw))
	if err != nil {
		return nil, err
	}
	pw, err := remote.NewPusher(o.connection()...)
	if err != nil {
		return nil, err
	}
	for _, l := range layers {
		if err := pw.Upload(ctx, repo, l); err != nil {
			return nil, fmt.Errorf("uploading blob: %w", err)
		}
	}
	manifest := rawManifest{raw: raw, mediaType: types.OCIManifestSchema1}
	if err := pw.Put(ctx, repo.Digest(digest.String()), manifest); err != nil {
		return nil, fmt.Errorf("writing manifest %s: %w", digest, err)
	}
	// Read it all back before the tag moves, with a Puller of its own.
	fresh := *o
	fresh.puller = nil
	back, err := pullFiles(ctx, &fresh, repo.Digest(digest.String()))
	if err != nil {
		return nil, fmt.Errorf("reading back %s: %w", digest, err)
	}
	if len(back.Files) != len(files) {
		return nil, fmt.Errorf("%w: %s reads back with %d files, not %d", ErrVerification, digest, len(back.Files), len(files))
	}
	if err := pw.Put(ctx, ref, manifest); err != nil {
		return nil, fmt.Errorf("tagging %s as %s: %w", digest, ref.TagStr(), err)
	}
	got, err := fetchManifest(ctx, &fresh, ref)
	if err != nil {
		return nil, fmt.Errorf("reading back tag %s: %w", ref.TagStr(), err)
	}
	if got.Ref.DigestStr() != digest.String() {
		return nil, fmt.Errorf("%w: tag %s reads back as %s, not %s", ErrVerification, ref.TagStr(), got.Ref.DigestStr(), digest)
	}
	return &PushResult{Repository: repo.String(), Digest: digest, Tag: ref.TagStr(), Referrers: []Referrer{}}, nil
}

// PullFiles reads a files artifact that PushFiles wrote: its manifest
// (checked against the digest when ref is one) and every file layer,
// each checked against its digest and size.
func PullFiles(ctx context.Context, ref name.Reference, opts ...Option) (*FilesArtifact, error) {
	o, err := makeOptions(opts...)
	if err != nil {
		return nil, fmt.Errorf("pulling files from %s: %w", ref, err)
	}
	a, err := pullFiles(ctx, o, ref)
	if err != nil {
		return nil, fmt.Errorf("pulling files from %s: %w", ref, explain(err))
	}
	return a, nil
}

func pullFiles(ctx context.Context, o *options, ref name.Reference) (*FilesArtifact, error) {
	mf, err := fetchManifest(ctx, o, ref)
	if err != nil {
		return nil, err
	}
	var m v1.Manifest
	if err := json.Unmarshal(mf.Raw, &m); err != nil {
		return nil, fmt.Errorf("%w: %s is not an image manifest: %v", ErrVerification, mf.Ref.DigestStr(), err)
	}
	if len(m.Layers) > maxFiles {
		return nil, fmt.Errorf("%s has %d layers, at most %d are read", mf.Ref.DigestStr(), len(m.Layers), maxFiles)
	}
	a := &FilesArtifact{Ref: mf.Ref, ArtifactType: m.ArtifactType}
	repo := ref.Context()
	p, err := o.pullerFor(repo)
	if err != nil {
		return nil, err
	}
	for _, l := range m.Layers {
		title := l.Annotations[AnnotationTitle]
		if title == "" {
			continue
		}
		data, err := fetchBlob(ctx, o, p, repo, l, maxFileBytes)
		if err != nil {
			return nil, fmt.Errorf("file %s: %w", title, err)
		}
		a.Files = append(a.Files, File{Name: title, MediaType: string(l.MediaType), Data: data})
	}
	if len(a.Files) == 0 {
		return nil, errors.New("the artifact holds no named files")
	}
	return a, nil
}
