package distribute

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// maxArtifactSize bounds the content of one referrer Referrers downloads.
const maxArtifactSize = 16 << 20

// Manifest is an image manifest (or index) read from a registry.
type Manifest struct {
	// Ref names it by digest: the repository and the sha256 of Raw.
	Ref name.Digest
	// MediaType is the manifest's media type.
	MediaType types.MediaType
	// Raw are its bytes, whose sha256 is Ref's digest.
	Raw []byte
}

// FetchManifest reads the manifest ref names. A tag is resolved to the
// digest of the manifest the registry returns for it (Manifest.Ref); a
// digest reference must get bytes with that digest, else the error wraps
// ErrVerification.
func FetchManifest(ctx context.Context, ref name.Reference, opts ...Option) (*Manifest, error) {
	o, err := makeOptions(opts...)
	if err != nil {
		return nil, fmt.Errorf("fetching %s: %w", ref, err)
	}
	m, err := fetchManifest(ctx, o, ref)
	if err != nil {
		return nil, fmt.Errorf("fetching %s: %w", ref, explain(err))
	}
	return m, nil
}

func fetchManifest(ctx context.Context, o *options, ref name.Reference) (*Manifest, error) {
	repo := ref.Context()
	if err := o.checkRegistry(repo.Registry); err != nil {
		return nil, err
	}
	p, err := o.pullerFor(repo)
	if err != nil {
		return nil, err
	}
	desc, err := getManifest(ctx, o, p, ref)
	if err != nil {
		return nil, err
	}
	var probe struct {
		MediaType types.MediaType `json:"mediaType"`
	}
	if err := json.Unmarshal(desc.Manifest, &probe); err != nil {
		return nil, fmt.Errorf("manifest %s is not JSON: %w", desc.Digest, err)
	}
	mt := probe.MediaType
	if mt == "" {
		mt = desc.MediaType
	}
	return &Manifest{Ref: repo.Digest(desc.Digest.String()), MediaType: mt, Raw: desc.Manifest}, nil
}

// Image returns the image ref names, read from its registry through the
// same connection rules as Push (HTTPS unless WithInsecureLoopbackUnsafe
// allows loopback HTTP, WithCACert, credentials from the keychain). The
// manifest is checked against the digest, and each blob as it is read.
func Image(ctx context.Context, ref name.Digest, opts ...Option) (v1.Image, error) {
	o, err := makeOptions(opts...)
	if err != nil {
		return nil, fmt.Errorf("fetching %s: %w", ref, err)
	}
	if err := o.checkRegistry(ref.Context().Registry); err != nil {
		return nil, fmt.Errorf("fetching %s: %w", ref, err)
	}
	p, err := o.pullerFor(ref.Context())
	if err != nil {
		return nil, fmt.Errorf("fetching %s: %w", ref, err)
	}
	img, err := remote.Image(ref, remote.Reuse(p), remote.WithContext(ctx))
	if err != nil {
		return nil, fmt.Errorf("fetching %s: %w", ref, explain(err))
	}
	return img, nil
}

// Fetched is one referrer of an image, read from a registry.
type Fetched struct {
	// Descriptor describes the referrer's manifest (media type, digest,
	// size).
	Descriptor v1.Descriptor `json:"descriptor"`
	// ArtifactType is the manifest's artifactType (its config's media type
	// when it has none).
	ArtifactType string `json:"artifactType"`
	// Annotations are the manifest's annotations.
	Annotations map[string]string `json:"annotations,omitempty"`
	// Data is the content of the manifest's only layer (a Sigstore bundle,
	// say), checked against its digest; nil for a manifest with no layer or
	// several, or with WithReferrerDataLimit, a layer above the limit.
	Data []byte `json:"-"`
	// Layer describes the manifest's only layer; nil for a manifest with no
	// layer or several.
	Layer *v1.Descriptor `json:"-"`
}

// Referrers lists the OCI 1.1 referrers of the image subject names, with
// the referrers API or, on registries without it, the referrers tag schema
// (as go-containerregistry's remote.Referrers does), and reads each one:
// its manifest, checked against the digest the listing gives, and the
// content of its single layer, checked against the layer's digest. What a
// referrer claims to be (artifact type, annotations) is taken from its
// manifest, not from the listing. Listed manifests whose subject is
// another image are left out. The result is sorted by manifest digest.
func Referrers(ctx context.Context, subject name.Digest, opts ...Option) ([]Fetched, error) {
	o, err := makeOptions(opts...)
	if err != nil {
		return nil, fmt.Errorf("listing referrers of %s: %w", subject, err)
	}
	out, err := referrersOf(ctx, o, subject)
	if err != nil {
		return nil, fmt.Errorf("listing referrers of %s: %w", subject, explain(err))
	}
	return out, nil
}

func referrersOf(ctx context.Context, o *options, subject name.Digest) ([]Fetched, error) {
	repo := subject.Context()
	if err := o.checkRegistry(repo.Registry); err != nil {
		return nil, err
	}
	p, err := o.pullerFor(repo)
	if err != nil {
		return nil, err
	}
	var descs []v1.Descriptor
	err = o.again(ctx, func() error {
		idx, err := remote.Referrers(subject, remote.Reuse(p), remote.WithContext(ctx))
		if err != nil {
			return err
		}
		im, err := idx.IndexManifest()
		if err != nil {
			return err
		}
		descs = append([]v1.Descriptor(nil), im.Manifests...)
		return nil
	})
	if err != nil {
		return nil, err
	}
	sort.Slice(descs, func(i, j int) bool { return descs[i].Digest.String() < descs[j].Digest.String() })
	if o.referrerFilter != nil {
		if descs, err = o.referrerFilter(descs); err != nil {
			return nil, err
		}
	}
	var out []Fetched
	seen := map[v1.Hash]bool{}
	for _, desc := range descs {
		if seen[desc.Digest] {
			continue
		}
		seen[desc.Digest] = true
		rd, err := getManifest(ctx, o, p, repo.Digest(desc.Digest.String()))
		if errors.Is(err, ErrNotFound) {
			return nil, fmt.Errorf("%w: referrer %s is listed but missing from %s", ErrVerification, desc.Digest, repo)
		}
		if err != nil {
			return nil, fmt.Errorf("reading referrer %s: %w", desc.Digest, err)
		}
		var m v1.Manifest
		if err := json.Unmarshal(rd.Manifest, &m); err != nil {
			return nil, fmt.Errorf("%w: referrer %s is not a manifest: %v", ErrVerification, rd.Digest, err)
		}
		if m.Subject == nil || m.Subject.Digest.String() != subject.DigestStr() {
			continue
		}
		f := Fetched{
			Descriptor:   v1.Descriptor{MediaType: m.MediaType, Digest: rd.Digest, Size: rd.Size},
			ArtifactType: m.ArtifactType,
			Annotations:  m.Annotations,
		}
		if f.ArtifactType == "" {
			f.ArtifactType = string(m.Config.MediaType)
		}
		if len(m.Layers) == 1 {
			layer := m.Layers[0]
			f.Layer = &layer
		}
		if len(m.Layers) == 1 && (o.referrerLimit <= 0 || m.Layers[0].Size <= o.referrerLimit) {
			if f.Data, err = fetchBlob(ctx, o, p, repo, m.Layers[0], maxArtifactSize); err != nil {
				return nil, fmt.Errorf("reading referrer %s: %w", rd.Digest, err)
			}
		}
		out = append(out, f)
	}
	return out, nil
}

// fetchBlob downloads a blob of at most max bytes and checks its size and
// digest.
func fetchBlob(ctx context.Context, o *options, p *remote.Puller, repo name.Repository, d v1.Descriptor, max int64) ([]byte, error) {
	if d.Size < 0 || d.Size > max {
		return nil, fmt.Errorf("blob %s: size %d is not between 0 and %d bytes", d.Digest, d.Size, max)
	}
	return download(ctx, o, p, repo, d, true)
}

// Attach adds artifacts as OCI 1.1 referrers of an image that is already
// in the registry (a signature or verdict made after the image was
// published), as Push adds them: each artifact's blobs, then its manifest
// by digest, then everything is read back and the registry's referrers
// list (API or tag schema) must name each. The image itself and its tags
// are not touched.
func Attach(ctx context.Context, subject name.Digest, artifacts []Artifact, opts ...Option) (res *PushResult, err error) {
	o, err := makeOptions(opts...)
	if err != nil {
		return nil, fmt.Errorf("attaching to %s: %w", subject, err)
	}
	rep := newReporter(o.progress)
	defer rep.close()
	repo := subject.Context()
	defer func() { rep.send(ctx, Update{Repository: repo.String(), Phase: PhaseDone, Err: err}) }()
	res, err = attach(ctx, o, rep, subject, artifacts)
	if err != nil {
		return nil, fmt.Errorf("attaching to %s: %w", subject, explain(err))
	}
	return res, nil
}

func attach(ctx context.Context, o *options, rep *reporter, subject name.Digest, artifacts []Artifact) (*PushResult, error) {
	if len(artifacts) == 0 {
		return nil, errors.New("no artifacts to attach")
	}
	repo := subject.Context()
	m, err := fetchManifest(ctx, o, subject)
	if errors.Is(err, ErrNotFound) {
		return nil, fmt.Errorf("the image %s is not in %s: push it first", subject.DigestStr(), repo)
	}
	if err != nil {
		return nil, err
	}
	h, err := v1.NewHash(subject.DigestStr())
	if err != nil {
		return nil, err
	}
	desc := v1.Descriptor{MediaType: m.MediaType, Digest: h, Size: int64(len(m.Raw))}
	refs := make([]*referrerManifest, len(artifacts))
	for i, a := range artifacts {
		if refs[i], err = newReferrerManifest(desc, a); err != nil {
			return nil, fmt.Errorf("artifact %d (%s): %w", i+1, a.ArtifactType, err)
		}
	}
	res := &PushResult{Repository: repo.String(), Digest: h, Referrers: []Referrer{}}
	pw, err := remote.NewPusher(o.connection()...)
	if err != nil {
		return nil, err
	}
	if err := writeReferrers(ctx, pw, rep, repo, refs, res); err != nil {
		return nil, err
	}
	rep.send(ctx, Update{Repository: repo.String(), Phase: PhaseVerify, Digest: res.Digest})
	r, err := o.reader(repo)
	if err != nil {
		return nil, err
	}
	if res.ReferrersMode, err = r.verifyReferrers(ctx, h, refs); err != nil {
		return nil, err
	}
	return res, nil
}
