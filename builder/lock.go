package builder

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/twinforge/twinforge/hermetic"
)

// ErrRefused is returned when the inputs do not match their lock or the
// Dockerfile uses something the lock does not pin; nothing was built.
var ErrRefused = errors.New("build refused")

// LockedInput is what FromLock needs to turn a lock into a request.
type LockedInput struct {
	// Lock is the parsed lock file, LockPath where it was read from.
	Lock     *hermetic.Lock
	LockPath string
	// ContextDir is the build context the lock describes.
	ContextDir string
	// ImageCache is where images the lock locates in a registry are kept,
	// by digest, as OCI layouts. Required only if the lock has such images.
	ImageCache string
	// RemoteOptions reach registries for such images.
	RemoteOptions []remote.Option
}

// FromLock checks the context against its lock and the Dockerfile against
// what the lock pins, then returns the request that builds exactly the
// locked inputs: its build args, target, platform and SOURCE_DATE_EPOCH, the
// locked base images by digest and the lock's source policy. It fails with
// ErrRefused before anything is built when a check fails.
func FromLock(ctx context.Context, in LockedInput) (Request, error) {
	l := in.Lock
	if err := hermetic.Check(ctx, l, in.ContextDir); err != nil {
		return Request{}, fmt.Errorf("%w: %w", ErrRefused, err)
	}
	df, err := os.ReadFile(filepath.Join(in.ContextDir, filepath.FromSlash(l.Dockerfile.Path)))
	if err != nil {
		return Request{}, fmt.Errorf("reading Dockerfile: %w", err)
	}
	analysis, err := hermetic.AnalyzeDockerfile(df, l.BuildArgs, l.Target, l.Platform)
	if err != nil {
		return Request{}, fmt.Errorf("%w: %w", ErrRefused, err)
	}
	if err := l.Verify(analysis); err != nil {
		return Request{}, fmt.Errorf("%w: %w", ErrRefused, err)
	}
	lockDir := filepath.Dir(in.LockPath)
	var bases []BaseImage
	for _, img := range l.Images {
		dir, err := imageLayout(ctx, img, lockDir, in.ImageCache, in.RemoteOptions)
		if err != nil {
			return Request{}, err
		}
		bases = append(bases, BaseImage{Name: img.Name, Digest: img.Digest, Layout: dir})
	}
	return Request{
		ContextDir:      in.ContextDir,
		Dockerfile:      filepath.FromSlash(l.Dockerfile.Path),
		BuildArgs:       l.BuildArgs,
		Target:          l.Target,
		Platform:        l.Platform,
		SourceDateEpoch: l.SourceDateEpoch,
		BaseImages:      bases,
		SourcePolicy:    l.SourcePolicy(),
	}, nil
}

// imageLayout finds the OCI layout that holds a locked image, fetching it
// by digest into the cache when the lock locates it in a registry.
func imageLayout(ctx context.Context, img hermetic.Image, lockDir, cache string, opts []remote.Option) (string, error) {
	kind, loc, _ := strings.Cut(img.Location, ":")
	switch kind {
	case "oci-layout":
		dir := loc
		if !filepath.IsAbs(dir) {
			dir = filepath.Join(lockDir, filepath.FromSlash(loc))
		}
		if err := hasBlob(dir, img.Digest); err != nil {
			return "", fmt.Errorf("%w: base image %s: %w; run `twinforge lock --update` if the layout was rebuilt", ErrRefused, img.Name, err)
		}
		return dir, nil
	case "registry":
		if cache == "" {
			return "", fmt.Errorf("base image %s is in a registry but no image cache was given", img.Name)
		}
		return fetchByDigest(ctx, loc, img.Digest, cache, opts)
	}
	return "", fmt.Errorf("%w: base image %s: unknown location %q in the lock", ErrRefused, img.Name, img.Location)
}

func hasBlob(dir, digest string) error {
	h, err := v1.NewHash(digest)
	if err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(dir, "blobs", h.Algorithm, h.Hex)); err != nil {
		return fmt.Errorf("OCI layout %s does not hold %s", dir, digest)
	}
	return nil
}

// fetchByDigest copies an image from a registry by digest into a layout of
// its own under cache. go-containerregistry checks every blob's digest.
func fetchByDigest(ctx context.Context, ref, digest, cache string, opts []remote.Option) (string, error) {
	h, err := v1.NewHash(digest)
	if err != nil {
		return "", err
	}
	dir := filepath.Join(cache, h.Algorithm+"-"+h.Hex)
	if err := hasBlob(dir, digest); err == nil {
		return dir, nil
	}
	repo, _, _ := strings.Cut(ref, "@")
	r, err := name.NewDigest(repo + "@" + digest)
	if err != nil {
		return "", fmt.Errorf("locked image %q: %w", ref, err)
	}
	opts = append([]remote.Option{remote.WithContext(ctx), remote.WithAuthFromKeychain(authn.DefaultKeychain)}, opts...)
	desc, err := remote.Get(r, opts...)
	if err != nil {
		return "", fmt.Errorf("fetching locked image %s: %w", r, err)
	}
	tmp := dir + ".tmp"
	_ = os.RemoveAll(tmp)
	p, err := layout.Write(tmp, empty.Index)
	if err != nil {
		return "", err
	}
	if desc.MediaType.IsIndex() {
		idx, err := desc.ImageIndex()
		if err == nil {
			err = p.AppendIndex(idx)
		}
		if err != nil {
			return "", fmt.Errorf("fetching locked index %s: %w", r, err)
		}
	} else {
		img, err := desc.Image()
		if err == nil {
			err = p.AppendImage(img)
		}
		if err != nil {
			return "", fmt.Errorf("fetching locked image %s: %w", r, err)
		}
	}
	if err := os.Rename(tmp, dir); err != nil {
		return "", err
	}
	return dir, nil
}
