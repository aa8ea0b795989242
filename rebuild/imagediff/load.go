package imagediff

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// ErrNotAnImage is wrapped by errors from [Load] when the selected descriptor
// (or everything in a layout) is not a container image manifest.
var ErrNotAnImage = errors.New("not a container image")

// ErrPlatformMismatch is wrapped by the error [CheckComparable] returns for
// images of different platforms.
var ErrPlatformMismatch = errors.New("platform mismatch")

// PlatformMismatchError is returned by [CheckComparable]; it matches
// [ErrPlatformMismatch] with errors.Is.
type PlatformMismatchError struct {
	A, B string // "os/arch[/variant]"
}

func (e *PlatformMismatchError) Error() string {
	return fmt.Sprintf("image A is %s but image B is %s: compare images of the same platform", e.A, e.B)
}

// Is makes errors.Is(err, ErrPlatformMismatch) true.
func (e *PlatformMismatchError) Is(target error) bool { return target == ErrPlatformMismatch }

// CheckComparable returns an error wrapping [ErrPlatformMismatch] when the two
// images were built for different platforms (os/arch/variant from their
// configs). [Compare] itself does not refuse such images.
func CheckComparable(a, b v1.Image) error {
	pa, err := platformOf(a)
	if err != nil {
		return fmt.Errorf("image A: %w", err)
	}
	pb, err := platformOf(b)
	if err != nil {
		return fmt.Errorf("image B: %w", err)
	}
	if pa != pb {
		return &PlatformMismatchError{A: pa, B: pb}
	}
	return nil
}

// Load resolves ref to an image. ref is one of
//
//   - an OCI image layout directory "DIR" (which must hold exactly one image,
//     possibly behind a nested index; attestation manifests are ignored),
//   - "DIR@sha256:…" selecting a manifest (or an index holding a single
//     image) anywhere in the layout,
//   - either of the above prefixed with "oci:",
//   - a registry reference ("registry/repo:tag", "repo@sha256:…"), fetched
//     with remote.Image and opts.
//
// A ref is treated as a layout when it has the "oci:" prefix, when its
// directory part exists, or when it starts with "/", "." or "~"; otherwise it
// is parsed as a registry reference.
func Load(ctx context.Context, ref string, opts ...remote.Option) (v1.Image, error) {
	if ref == "" {
		return nil, errors.New("empty image reference")
	}
	if rest, ok := strings.CutPrefix(ref, "oci:"); ok {
		dir, h, err := splitDigest(rest)
		if err != nil {
			return nil, err
		}
		return loadLayout(dir, h)
	}
	dir, h, err := splitDigest(ref)
	if err != nil {
		if i := strings.LastIndex(ref, "@"); looksLocal(ref[:i]) {
			return nil, err
		}
	} else if looksLocal(dir) {
		return loadLayout(dir, h)
	}
	r, perr := name.ParseReference(ref)
	if perr != nil {
		return nil, fmt.Errorf("%q is neither an OCI layout directory nor a valid image reference: %w", ref, perr)
	}
	img, err := remote.Image(r, append([]remote.Option{remote.WithContext(ctx)}, opts...)...)
	if err != nil {
		return nil, fmt.Errorf("fetching image %s: %w", r, err)
	}
	if err := ensureImage(img, r.String()); err != nil {
		return nil, err
	}
	return img, nil
}

// splitDigest splits "DIR@sha256:…" into DIR and the digest.
func splitDigest(ref string) (string, *v1.Hash, error) {
	i := strings.LastIndex(ref, "@")
	if i < 0 || !strings.Contains(ref[i+1:], ":") {
		return ref, nil, nil
	}
	h, err := v1.NewHash(ref[i+1:])
	if err != nil {
		return "", nil, fmt.Errorf("parsing digest in %q: %w", ref, err)
	}
	return ref[:i], &h, nil
}

func looksLocal(dir string) bool {
	if _, err := os.Stat(dir); err == nil {
		return true
	}
	return filepath.IsAbs(dir) || strings.HasPrefix(dir, ".") || strings.HasPrefix(dir, "~") ||
		strings.HasPrefix(dir, "/")
}

func loadLayout(dir string, h *v1.Hash) (v1.Image, error) {
	st, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("no OCI layout at %s: %w", dir, err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("%s is not an OCI image layout (not a directory)", dir)
	}
	if _, err := os.Stat(filepath.Join(dir, "index.json")); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("%s is not an OCI image layout (no index.json)", dir)
		}
		return nil, fmt.Errorf("reading OCI layout %s: %w", dir, err)
	}
	lp, err := layout.FromPath(dir)
	if err != nil {
		return nil, fmt.Errorf("opening OCI layout %s: %w", dir, err)
	}
	idx, err := lp.ImageIndex()
	if err != nil {
		return nil, fmt.Errorf("reading index of OCI layout %s: %w", dir, err)
	}
	var img v1.Image
	if h != nil {
		img, err = selectDigest(idx, *h, dir)
	} else {
		img, err = selectOnly(idx, dir+"@")
	}
	if err != nil {
		return nil, err
	}
	label := dir
	if h != nil {
		label += "@" + h.String()
	}
	if err := ensureImage(img, label); err != nil {
		return nil, err
	}
	return img, nil
}

func isImageMediaType(mt types.MediaType) bool {
	return mt == types.OCIManifestSchema1 || mt == types.DockerManifestSchema2
}

func isIndexMediaType(mt types.MediaType) bool {
	return mt == types.OCIImageIndex || mt == types.DockerManifestList
}

func isAttestation(d v1.Descriptor) bool {
	return d.Annotations["vnd.docker.reference.type"] == "attestation-manifest" ||
		(d.Platform != nil && d.Platform.OS == "unknown")
}

type candidate struct {
	desc   v1.Descriptor
	parent v1.ImageIndex
}

func (c candidate) String() string {
	s := c.desc.Digest.String()
	if c.desc.Platform != nil {
		s += " " + c.desc.Platform.String()
	}
	if n := c.desc.Annotations["org.opencontainers.image.ref.name"]; n != "" {
		s += " (" + n + ")"
	}
	return s
}

// collectImages returns the image manifests reachable from idx (recursing
// into nested indexes, skipping attestations) and the media types of other
// descriptors seen.
func collectImages(idx v1.ImageIndex, depth int) (imgs []candidate, others []string, err error) {
	if depth > 8 {
		return nil, nil, errors.New("image indexes nested too deeply")
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, nil, fmt.Errorf("reading index manifest: %w", err)
	}
	for _, d := range im.Manifests {
		switch {
		case isImageMediaType(d.MediaType):
			if !isAttestation(d) {
				imgs = append(imgs, candidate{desc: d, parent: idx})
			}
		case isIndexMediaType(d.MediaType):
			child, err := idx.ImageIndex(d.Digest)
			if err != nil {
				return nil, nil, fmt.Errorf("reading nested index %s: %w", d.Digest, err)
			}
			ci, co, err := collectImages(child, depth+1)
			if err != nil {
				return nil, nil, err
			}
			imgs = append(imgs, ci...)
			others = append(others, co...)
		default:
			others = append(others, fmt.Sprintf("%s (%s)", d.Digest, d.MediaType))
		}
	}
	return imgs, others, nil
}

// selectOnly returns the single image reachable from idx.
func selectOnly(idx v1.ImageIndex, hint string) (v1.Image, error) {
	imgs, others, err := collectImages(idx, 0)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", strings.TrimSuffix(hint, "@"), err)
	}
	switch len(imgs) {
	case 0:
		if len(others) > 0 {
			return nil, fmt.Errorf("%s contains no image manifest, only %s: %w", strings.TrimSuffix(hint, "@"), strings.Join(others, ", "), ErrNotAnImage)
		}
		return nil, fmt.Errorf("%s contains no image manifest: %w", strings.TrimSuffix(hint, "@"), ErrNotAnImage)
	case 1:
		img, err := imgs[0].parent.Image(imgs[0].desc.Digest)
		if err != nil {
			return nil, fmt.Errorf("reading image %s: %w", imgs[0].desc.Digest, err)
		}
		return img, nil
	default:
		list := make([]string, len(imgs))
		for i, c := range imgs {
			list[i] = "  " + c.String()
		}
		return nil, fmt.Errorf("%s contains %d images; select one with %sDIGEST:\n%s",
			strings.TrimSuffix(hint, "@"), len(imgs), hint, strings.Join(list, "\n"))
	}
}

// findDescriptor searches idx and its nested indexes for digest h.
func findDescriptor(idx v1.ImageIndex, h v1.Hash, depth int) (*candidate, error) {
	if depth > 8 {
		return nil, errors.New("image indexes nested too deeply")
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, fmt.Errorf("reading index manifest: %w", err)
	}
	for _, d := range im.Manifests {
		if d.Digest == h {
			return &candidate{desc: d, parent: idx}, nil
		}
	}
	for _, d := range im.Manifests {
		if !isIndexMediaType(d.MediaType) {
			continue
		}
		child, err := idx.ImageIndex(d.Digest)
		if err != nil {
			return nil, fmt.Errorf("reading nested index %s: %w", d.Digest, err)
		}
		if c, err := findDescriptor(child, h, depth+1); err != nil || c != nil {
			return c, err
		}
	}
	return nil, nil
}

func selectDigest(idx v1.ImageIndex, h v1.Hash, dir string) (v1.Image, error) {
	c, err := findDescriptor(idx, h, 0)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", dir, err)
	}
	if c == nil {
		imgs, _, _ := collectImages(idx, 0)
		var list []string
		for _, c := range imgs {
			list = append(list, "  "+c.String())
		}
		msg := fmt.Sprintf("no manifest %s in OCI layout %s", h, dir)
		if len(list) > 0 {
			msg += "; images available:\n" + strings.Join(list, "\n")
		}
		return nil, errors.New(msg)
	}
	switch mt := c.desc.MediaType; {
	case isImageMediaType(mt):
		img, err := c.parent.Image(h)
		if err != nil {
			return nil, fmt.Errorf("reading image %s from %s: %w", h, dir, err)
		}
		return img, nil
	case isIndexMediaType(mt):
		child, err := c.parent.ImageIndex(h)
		if err != nil {
			return nil, fmt.Errorf("reading index %s from %s: %w", h, dir, err)
		}
		return selectOnly(child, dir+"@")
	default:
		return nil, fmt.Errorf("%s@%s has media type %s: %w", dir, h, mt, ErrNotAnImage)
	}
}

// ensureImage rejects OCI artifacts whose config is not an image config.
func ensureImage(img v1.Image, label string) error {
	m, err := img.Manifest()
	if err != nil {
		return fmt.Errorf("reading manifest of %s: %w", label, err)
	}
	switch m.Config.MediaType {
	case types.OCIConfigJSON, types.DockerConfigJSON, "":
		return nil
	default:
		return fmt.Errorf("%s has config media type %s: %w", label, m.Config.MediaType, ErrNotAnImage)
	}
}

// CompareRefs loads the images a and b name (Load), checks that they can
// be compared (CheckComparable) and compares them, as `twinforge diff`
// does; an image that does not load is named as image A or image B.
func CompareRefs(ctx context.Context, a, b string, opts ...Option) (*Report, error) {
	ia, err := Load(ctx, a)
	if err != nil {
		return nil, fmt.Errorf("image A: %w", err)
	}
	ib, err := Load(ctx, b)
	if err != nil {
		return nil, fmt.Errorf("image B: %w", err)
	}
	if err := CheckComparable(ia, ib); err != nil {
		return nil, err
	}
	return Compare(ctx, ia, ib, opts...)
}
