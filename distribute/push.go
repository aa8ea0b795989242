package distribute

import (
	"context"
	"fmt"
	"sort"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// PushResult is what Push wrote and read back.
type PushResult struct {
	// Repository is where the image went, e.g. "registry.example/app".
	Repository string `json:"repository"`
	// Digest is the image manifest's digest: the image's identity.
	Digest v1.Hash `json:"digest"`
	// Tag is the tag moved to Digest; empty when pushed by digest only.
	Tag string `json:"tag,omitempty"`
	// Referrers are the artifacts' manifests, in the order given.
	Referrers []Referrer `json:"referrers"`
	// ReferrersMode says whether the registry listed the referrers itself
	// or the tag schema fallback was written; empty without artifacts.
	ReferrersMode ReferrersMode `json:"referrersMode,omitempty"`
}

// Reference is the pushed image's digest reference, NAME@sha256:....
func (r *PushResult) Reference() string { return r.Repository + "@" + r.Digest.String() }

// Referrer is one artifact manifest attached to an image.
type Referrer struct {
	Digest       v1.Hash `json:"digest"`
	ArtifactType string  `json:"artifactType"`
	Size         int64   `json:"size"`
}

// Push publishes img to ref's repository together with artifacts, in this
// order: the blobs, the image manifest by digest, each artifact as an OCI 1.1
// referrer manifest whose subject is the image (its blobs first). It then
// reads all of it back and compares digests, and only after that, when ref is
// a tag, moves the tag to the image: the tag is the last write, so it never
// points at something missing or corrupt. When ref is a digest it must be
// img's digest.
//
// Blobs the repository already holds are not sent again; pushing the same
// image and artifacts twice writes nothing new but the tag.
func Push(ctx context.Context, img v1.Image, ref name.Reference, artifacts []Artifact, opts ...Option) (res *PushResult, err error) {
	o, err := makeOptions(opts...)
	if err != nil {
		return nil, fmt.Errorf("pushing: %w", err)
	}
	rep := newReporter(o.progress)
	defer rep.close()
	repo := ref.Context()
	defer func() { rep.send(ctx, Update{Repository: repo.String(), Phase: PhaseDone, Err: err}) }()

	res, err = push(ctx, o, rep, img, ref, artifacts)
	if err != nil {
		return nil, fmt.Errorf("pushing to %s: %w", ref, explain(err))
	}
	return res, nil
}

func push(ctx context.Context, o *options, rep *reporter, img v1.Image, ref name.Reference, artifacts []Artifact) (*PushResult, error) {
	repo := ref.Context()
	if err := o.checkRegistry(repo.Registry); err != nil {
		return nil, err
	}
	subject, raw, err := manifestDescriptor(img)
	if err != nil {
		return nil, err
	}
	if d, ok := ref.(name.Digest); ok && d.DigestStr() != subject.Digest.String() {
		return nil, fmt.Errorf("the reference names digest %s but the image is %s", d.DigestStr(), subject.Digest)
	}
	// Build every referrer manifest before the first request, so a bad
	// artifact fails the push before anything is written.
	refs := make([]*referrerManifest, len(artifacts))
	for i, a := range artifacts {
		if refs[i], err = newReferrerManifest(subject, a); err != nil {
			return nil, fmt.Errorf("artifact %d (%s): %w", i+1, a.ArtifactType, err)
		}
	}
	res := &PushResult{Repository: repo.String(), Digest: subject.Digest, Referrers: []Referrer{}}
	update := func(p Phase, digest v1.Hash) {
		rep.send(ctx, Update{Repository: repo.String(), Phase: p, Digest: digest})
	}

	// 1. Blobs, then the manifest, by digest: nothing points at it yet.
	update(PhaseUpload, res.Digest)
	ropts := o.remote(ctx)
	progress, wait := rep.bytes(ctx, repo.String())
	if progress != nil {
		ropts = append(ropts, remote.WithProgress(progress))
	}
	err = remote.Write(repo.Digest(res.Digest.String()), img, ropts...)
	wait()
	if err != nil {
		return nil, fmt.Errorf("writing image %s: %w", res.Digest, err)
	}

	// 2. Each artifact: its blobs, then its manifest by digest. Writing a
	// manifest with a subject makes go-containerregistry update the
	// referrers tag schema index when the registry lacks the API. The
	// writes share one authentication; the image's went apart, as
	// go-containerregistry reports progress per call.
	pw, err := remote.NewPusher(o.connection()...)
	if err != nil {
		return nil, err
	}
	if err := writeReferrers(ctx, pw, rep, repo, refs, res); err != nil {
		return nil, err
	}

	// 3. Read everything back.
	update(PhaseVerify, res.Digest)
	r, err := o.reader(repo)
	if err != nil {
		return nil, err
	}
	if _, err := r.readBack(ctx, subject.Digest, raw); err != nil {
		return nil, err
	}
	if len(refs) > 0 {
		if res.ReferrersMode, err = r.verifyReferrers(ctx, subject.Digest, refs); err != nil {
			return nil, err
		}
	}

	// 4. Only now, the tag.
	if tag, ok := ref.(name.Tag); ok {
		update(PhaseTag, res.Digest)
		if err := pw.Put(ctx, tag, rawManifest{raw: raw, mediaType: subject.MediaType}); err != nil {
			return nil, fmt.Errorf("tagging %s as %s: %w", res.Digest, tag.TagStr(), err)
		}
		got, err := getManifest(ctx, o, r.p, tag)
		if err != nil {
			return nil, fmt.Errorf("reading back tag %s: %w", tag.TagStr(), err)
		}
		if got.Digest != subject.Digest {
			return nil, fmt.Errorf("%w: tag %s reads back as %s, not %s", ErrVerification, tag.TagStr(), got.Digest, subject.Digest)
		}
		res.Tag = tag.TagStr()
	}
	return res, nil
}

// writeReferrers writes each artifact through pw and adds it to res.
func writeReferrers(ctx context.Context, pw *remote.Pusher, rep *reporter, repo name.Repository, refs []*referrerManifest, res *PushResult) error {
	for i, rm := range refs {
		rep.send(ctx, Update{Repository: repo.String(), Phase: PhaseReferrer, Digest: rm.digest})
		if err := writeReferrer(ctx, pw, repo, rm); err != nil {
			return fmt.Errorf("writing artifact %d (%s): %w", i+1, rm.art.ArtifactType, err)
		}
		res.Referrers = append(res.Referrers, Referrer{Digest: rm.digest, ArtifactType: rm.art.ArtifactType, Size: int64(len(rm.raw))})
	}
	return nil
}

// writeReferrer uploads an artifact's two blobs and PUTs its manifest by
// digest.
func writeReferrer(ctx context.Context, pw *remote.Pusher, repo name.Repository, rm *referrerManifest) error {
	blobs := []v1.Layer{
		static.NewLayer(emptyJSON, types.OCIEmptyJSON),
		static.NewLayer(rm.layer, rm.art.layerMediaType()),
	}
	for _, l := range blobs {
		if err := pw.Upload(ctx, repo, l); err != nil {
			return fmt.Errorf("uploading blob: %w", err)
		}
	}
	if err := pw.Put(ctx, repo.Digest(rm.digest.String()), rm); err != nil {
		return fmt.Errorf("writing manifest %s: %w", rm.digest, err)
	}
	return nil
}

// verifyReferrers reads each referrer back and checks that the registry's
// referrers list (API or tag schema, which it returns) names every one.
func (r *reader) verifyReferrers(ctx context.Context, subject v1.Hash, refs []*referrerManifest) (ReferrersMode, error) {
	for _, rm := range refs {
		if _, err := r.readBack(ctx, rm.digest, rm.raw); err != nil {
			return "", err
		}
	}
	listed, mode, err := r.referrers(ctx, subject)
	if err != nil {
		return "", err
	}
	if missing := missingReferrers(listed, refs); len(missing) > 0 {
		return "", fmt.Errorf("%w: the registry's referrers list (%s) lacks %v", ErrVerification, mode, missing)
	}
	return mode, nil
}

// missingReferrers lists the referrer digests absent from a listing,
// sorted.
func missingReferrers(listed []v1.Descriptor, want []*referrerManifest) []v1.Hash {
	have := map[v1.Hash]bool{}
	for _, d := range listed {
		have[d.Digest] = true
	}
	var missing []v1.Hash
	for _, rm := range want {
		if !have[rm.digest] {
			missing = append(missing, rm.digest)
		}
	}
	sort.Slice(missing, func(i, j int) bool { return missing[i].String() < missing[j].String() })
	return missing
}

// rawManifest is a manifest to PUT as it is.
type rawManifest struct {
	raw       []byte
	mediaType types.MediaType
}

func (m rawManifest) RawManifest() ([]byte, error)        { return m.raw, nil }
func (m rawManifest) MediaType() (types.MediaType, error) { return m.mediaType, nil }

var (
	_ remote.Taggable = rawManifest{}
	_ remote.Taggable = (*referrerManifest)(nil)
)
