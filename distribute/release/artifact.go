package release

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/twinforge/twinforge/distribute"
)

// How a release index travels as an OCI artifact.
const (
	// IndexTag is the tag the index is pushed under in each repository
	// Replicate copies to, and the default tag of an oci:// repository.
	IndexTag = "release-index"
	// IndexArtifactType is the artifact's artifactType.
	IndexArtifactType = "application/vnd.twinforge.release-index.v1"
	// MetadataMediaType is the media type of each metadata file's layer.
	MetadataMediaType = "application/vnd.tuf.metadata.v1+json"
)

// PushIndex packs the metadata files of an index (Repository.Files, or
// what Export read) into one OCI artifact and pushes it to ref, the tag
// moved last.
func PushIndex(ctx context.Context, files map[string][]byte, ref name.Tag, opts ...distribute.Option) (*distribute.PushResult, error) {
	if _, ok := files["timestamp.json"]; !ok {
		return nil, fmt.Errorf("pushing release index to %s: no timestamp.json among the files", ref)
	}
	var fs []distribute.File
	for n, data := range files {
		fs = append(fs, distribute.File{Name: n, MediaType: MetadataMediaType, Data: data})
	}
	return distribute.PushFiles(ctx, ref, IndexArtifactType, fs, opts...)
}

// PullIndex reads the metadata files of an index artifact. Nothing is
// verified here: a Client verifies what it reads.
func PullIndex(ctx context.Context, ref name.Tag, opts ...distribute.Option) (map[string][]byte, error) {
	a, err := distribute.PullFiles(ctx, ref, opts...)
	if err != nil {
		if errors.Is(err, distribute.ErrNotFound) {
			return nil, fmt.Errorf("%w: no release index at %s: %v", ErrUnavailable, ref, err)
		}
		return nil, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	if a.ArtifactType != IndexArtifactType {
		return nil, refusef(CheckIntegrity, "", "%s is a %q artifact, not a release index (%s)", ref, a.ArtifactType, IndexArtifactType)
	}
	out := map[string][]byte{}
	for _, f := range a.Files {
		out[f.Name] = f.Data
	}
	return out, nil
}

// Export reads the index at cfg.URL as a new reader would and returns
// every metadata file it verified, the whole chain of root versions
// included, ready for PushIndex. It starts from the repository's first
// root (1.root.json) when cfg.InitialRoot is empty; otherwise from
// cfg.InitialRoot, and the earlier root versions are copied too, so that
// readers holding any of them can follow the chain. An index that does
// not verify (stale, under threshold, ...) is refused: it is not spread.
func Export(ctx context.Context, cfg ClientConfig) (map[string][]byte, *Index, error) {
	tmp, err := os.MkdirTemp("", "twinforge-release-export-")
	if err != nil {
		return nil, nil, err
	}
	defer os.RemoveAll(tmp)
	cfg.StateDir = tmp
	c, err := NewClient(cfg)
	if err != nil {
		return nil, nil, err
	}
	src, err := c.newSource(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("exporting release index %s: %w", cfg.URL, err)
	}
	files := map[string][]byte{}
	first := 1
	if len(cfg.InitialRoot) > 0 {
		md, err := metadata.Root().FromBytes(cfg.InitialRoot)
		if err != nil {
			return nil, nil, err
		}
		first = int(md.Signed.Version)
		files[strconv.Itoa(first)+".root.json"] = cfg.InitialRoot
	}
	for v := 1; v <= first; v++ {
		n := strconv.Itoa(v) + ".root.json"
		data, err := src.DownloadFile(src.base()+"/"+n, maxMetadataBytes, 0)
		if err != nil {
			return nil, nil, fmt.Errorf("exporting release index %s: %s: %w", cfg.URL, n, classify(metadata.ROOT, err))
		}
		if v == first && len(cfg.InitialRoot) > 0 && !sameRoot(data, cfg.InitialRoot) {
			return nil, nil, refusef(CheckIntegrity, metadata.ROOT, "the repository's %s is not the root given", n)
		}
		files[n] = data
	}
	if len(c.cfg.InitialRoot) == 0 {
		c.cfg.InitialRoot = files["1.root.json"]
	}
	ix, root, err := c.refresh(ctx, tmp, files)
	if err != nil {
		return nil, nil, fmt.Errorf("exporting release index %s: %w", cfg.URL, err)
	}
	latest, err := root.ToBytes(true)
	if err != nil {
		return nil, nil, err
	}
	if data, ok := files[fmt.Sprintf("%d.root.json", root.Signed.Version)]; ok {
		latest = data
	}
	files["root.json"] = latest
	return files, ix, nil
}

func sameRoot(a, b []byte) bool {
	ma, err1 := metadata.Root().FromBytes(a)
	mb, err2 := metadata.Root().FromBytes(b)
	if err1 != nil || err2 != nil {
		return false
	}
	da, _ := ma.ToBytes(false)
	db, _ := mb.ToBytes(false)
	return bytes.Equal(da, db)
}

// ReplicaResult is the index's copy in one repository.
type ReplicaResult struct {
	Ref    string `json:"ref"`
	Digest string `json:"digest,omitempty"`
	Error  string `json:"error,omitempty"`
}

// Replicate exports the index at src (verifying it) and pushes it, as an
// OCI artifact tagged IndexTag, to each repository: so that each region
// serves the index with its images. One failing destination does not stop
// the others; the error joins the failures.
func Replicate(ctx context.Context, src ClientConfig, dests []name.Repository, opts ...distribute.Option) (*Index, []ReplicaResult, error) {
	files, ix, err := Export(ctx, src)
	if err != nil {
		return nil, nil, err
	}
	var results []ReplicaResult
	var errs []error
	for _, d := range dests {
		ref := d.Tag(IndexTag)
		res := ReplicaResult{Ref: ref.String()}
		pushed, err := PushIndex(ctx, files, ref, opts...)
		if err != nil {
			res.Error = err.Error()
			errs = append(errs, err)
		} else {
			res.Digest = pushed.Digest.String()
		}
		results = append(results, res)
	}
	if len(errs) > 0 {
		return ix, results, fmt.Errorf("replicating release index: %d of %d destinations failed: %w", len(errs), len(dests), errors.Join(errs...))
	}
	return ix, results, nil
}

// OCIURL is the oci:// repository URL of an index pushed to repo by
// Replicate.
func OCIURL(repo name.Repository) string {
	return OCIScheme + repo.Tag(IndexTag).String()
}
