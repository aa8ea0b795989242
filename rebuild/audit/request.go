package audit

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/twinforge/twinforge/builder"
	"github.com/twinforge/twinforge/hermetic"
)

// Images says where a rebuild finds its base images.
type Images struct {
	// Layouts maps base image names, as the Dockerfile writes them, to OCI
	// layouts: "oci-layout:PATH[:TAG]" (as --image takes them) or a plain
	// PATH. Each must hold the digest the provenance records for the image;
	// names the provenance does not record are ignored.
	Layouts map[string]string
	// Cache is where the images Layouts does not map are fetched to, by
	// digest, from the registry their name points at. Required when any
	// image is not mapped.
	Cache string
	// RemoteOptions reach those registries.
	RemoteOptions []remote.Option
}

// refusal is an error that refuses a rebuild: it matches ErrRefused and
// the error it carries.
type refusal struct{ err error }

func (r *refusal) Error() string   { return r.err.Error() }
func (r *refusal) Unwrap() []error { return []error{ErrRefused, r.err} }

// Request returns the build request that repeats the recorded build from
// the checkout: the same Dockerfile, build arguments, target, platform and
// SOURCE_DATE_EPOCH, the base images from OCI layouts by their recorded
// digests, and a source policy that admits only the recorded images, URLs
// (with their sha256) and git commits. Before that it checks, refusing
// with ErrRefused, that the Dockerfile has the recorded digest, that the
// build context has the recorded content digest, that the Dockerfile is
// hermetic and uses nothing the provenance does not pin, and that every
// mapped layout holds its image's recorded digest.
func (in *Inputs) Request(ctx context.Context, co *Checkout, images Images) (builder.Request, error) {
	dfPath := filepath.Join(co.ContextDir, filepath.FromSlash(in.Dockerfile.Path))
	df, err := os.ReadFile(dfPath)
	if errors.Is(err, os.ErrNotExist) {
		return builder.Request{}, refusef("the checkout has no Dockerfile %s, which the provenance records", dfPath)
	}
	if err != nil {
		return builder.Request{}, fmt.Errorf("reading Dockerfile: %w", err)
	}
	if got := digestOf(df); got != in.Dockerfile.Digest {
		return builder.Request{}, refusef("the Dockerfile %s has digest %s, but the provenance's dockerfile material has %s", dfPath, got, in.Dockerfile.Digest)
	}
	got, _, err := hermetic.ContextDigest(co.ContextDir, in.Dockerfile.Path)
	if err != nil {
		return builder.Request{}, fmt.Errorf("reading the build context: %w", err)
	}
	if got != in.Source.Digest {
		return builder.Request{}, refusef("the build context %s has content digest %s, but the provenance records %s: the checkout does not hold what was built", co.ContextDir, got, in.Source.Digest)
	}
	analysis, err := hermetic.AnalyzeDockerfile(df, in.BuildArgs, in.Target, in.Platform)
	if err != nil {
		return builder.Request{}, refusef("analyzing the Dockerfile: %v", err)
	}
	if err := analysis.CheckHermetic(); err != nil {
		return builder.Request{}, &refusal{err}
	}

	locations := map[string]string{}
	byName := map[string]hermetic.Image{}
	for _, im := range in.Images {
		byName[im.Name] = im
	}
	for _, key := range slices.Sorted(maps.Keys(images.Layouts)) {
		im, ok := lookupImage(byName, key)
		if !ok {
			continue // a layout for an image this build does not use
		}
		dir, err := layoutHolding(images.Layouts[key], im)
		if err != nil {
			return builder.Request{}, err
		}
		locations[im.Name] = hermetic.LocationOCILayout + filepath.ToSlash(dir)
	}
	l := in.lock()
	l.Images = withLocations(in.Images, locations)
	req, err := builder.FromLock(ctx, builder.LockedInput{
		Lock:          l,
		LockPath:      filepath.Join(co.ContextDir, hermetic.DefaultFileName),
		ContextDir:    co.ContextDir,
		ImageCache:    images.Cache,
		RemoteOptions: images.RemoteOptions,
	})
	if errors.Is(err, builder.ErrRefused) {
		return builder.Request{}, &refusal{err}
	}
	if err != nil {
		return builder.Request{}, err
	}
	return req, nil
}

// lookupImage finds the recorded image a --image name means: the same
// string, or the same reference once parsed (example.test/base:1 and
// example.test/base:1 spelled index.docker.io/... alike).
func lookupImage(byName map[string]hermetic.Image, key string) (hermetic.Image, bool) {
	if im, ok := byName[key]; ok {
		return im, true
	}
	want, err := name.ParseReference(key)
	if err != nil {
		return hermetic.Image{}, false
	}
	for _, n := range slices.Sorted(maps.Keys(byName)) {
		if got, err := name.ParseReference(n); err == nil && got.Name() == want.Name() {
			return byName[n], true
		}
	}
	return hermetic.Image{}, false
}

// layoutHolding opens the layout spec maps im to and checks that it holds
// im's recorded digest: under TAG when one is given, otherwise anywhere in
// its index or its blobs. It returns the layout's absolute path.
func layoutHolding(spec string, im hermetic.Image) (string, error) {
	rest := strings.TrimPrefix(strings.TrimPrefix(spec, hermetic.LocationOCILayout), "//")
	p, tag := rest, ""
	if fi, err := os.Stat(rest); err != nil || !fi.IsDir() {
		if i := strings.LastIndex(rest, ":"); i > 0 && !strings.ContainsAny(rest[i+1:], `/\`) {
			p, tag = rest[:i], rest[i+1:]
		}
	}
	abs, err := filepath.Abs(p)
	if err != nil {
		return "", fmt.Errorf("--image %s: %w", im.Name, err)
	}
	lp, err := layout.FromPath(abs)
	if err != nil {
		return "", refusef("base image %s: %s is not an OCI layout (%v); the provenance records %s", im.Name, p, err, im.Digest)
	}
	idx, err := lp.ImageIndex()
	if err != nil {
		return "", refusef("base image %s: reading OCI layout %s: %v", im.Name, p, err)
	}
	m, err := idx.IndexManifest()
	if err != nil {
		return "", refusef("base image %s: reading OCI layout %s: %v", im.Name, p, err)
	}
	const refName = "org.opencontainers.image.ref.name"
	var held []string
	listed := false
	for _, d := range m.Manifests {
		t := d.Annotations[refName]
		entry := d.Digest.String()
		if t != "" {
			entry = t + "@" + entry
		}
		held = append(held, entry)
		switch {
		case tag != "" && (t == tag || strings.HasSuffix(t, ":"+tag)):
			if d.Digest.String() != im.Digest {
				return "", refusef("base image %s: OCI layout %s holds %s under tag %s, but the provenance records %s", im.Name, p, d.Digest, tag, im.Digest)
			}
			listed = true
		case tag == "" && d.Digest.String() == im.Digest:
			listed = true
		}
	}
	if tag != "" && !listed {
		return "", refusef("base image %s: OCI layout %s has no tag %q (it holds %s); the provenance records %s", im.Name, p, tag, strings.Join(held, ", "), im.Digest)
	}
	// The digest's blob must be there, and be what it says.
	if err := checkBlob(abs, im.Digest); err != nil {
		if !listed {
			return "", refusef("base image %s: OCI layout %s does not hold %s, which the provenance records (it holds %s)", im.Name, p, im.Digest, orNone(strings.Join(held, ", ")))
		}
		return "", refusef("base image %s: OCI layout %s: %v", im.Name, p, err)
	}
	return abs, nil
}

// checkBlob checks that a layout's blob exists and hashes to its digest.
func checkBlob(dir, digest string) error {
	hexDigest := strings.TrimPrefix(digest, "sha256:")
	f, err := os.Open(filepath.Join(dir, "blobs", "sha256", hexDigest))
	if err != nil {
		return fmt.Errorf("blob %s: %w", digest, err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return fmt.Errorf("blob %s: %w", digest, err)
	}
	if hex.EncodeToString(h.Sum(nil)) != hexDigest {
		return fmt.Errorf("blob %s does not match its digest", digest)
	}
	return nil
}

// registryName is the repository an image name points at, for fetching it
// by digest.
func registryName(ref string) string {
	r, err := name.ParseReference(ref)
	if err != nil {
		return ref
	}
	return r.Context().Name()
}

func digestOf(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}
