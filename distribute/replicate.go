package distribute

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sort"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// DestResult is the outcome of replicating to one destination repository.
type DestResult struct {
	Repository name.Repository
	// Digest is the image's digest, the same as the source's; set only when
	// the destination was verified.
	Digest v1.Hash
	// Referrers are the digests of the referrers copied and verified,
	// sorted.
	Referrers []v1.Hash
	// ReferrersMode says how the destination lists referrers.
	ReferrersMode ReferrersMode
	// Skipped is true when the destination held everything already and
	// nothing was written.
	Skipped bool
	// Err is why this destination failed; nil when it holds a verified copy.
	Err      error
	Duration time.Duration
}

// source is what Replicate copies: an image (or index) and its referrers.
type source struct {
	digest    v1.Hash
	desc      *remote.Descriptor
	referrers []*remote.Descriptor
	// shared serves the image to destinations on other registries, each
	// blob downloaded from the source once; nil for an index.
	shared   *sharedImage
	registry name.Registry
}

// Replicate copies the image src names by digest, and every manifest that
// refers to it (signatures, attestations, SBOMs, found with the referrers
// API or the referrers tag schema), to each destination repository, at most
// WithJobs destinations at a time. A src that is a tag fails with
// ErrDigestRequired before anything is read.
//
// For each destination, Replicate skips what is there already (manifests by
// digest, blobs by HEAD), mounts blobs instead of uploading them when source
// and destination share a registry, retries 5xx answers and broken
// connections, and then reads back the manifest, every blob and the
// referrers list from the destination and compares digests with the source.
// Nothing is tagged, apart from the referrers tag schema index on registries
// without the referrers API.
//
// The results are in the order of dests. A failing destination neither stops
// nor affects the others; its DestResult.Err says why, and the returned error
// joins the failures. Running Replicate again completes whatever an
// interrupted or failed run left missing.
func Replicate(ctx context.Context, src name.Reference, dests []name.Repository, opts ...Option) (results []DestResult, err error) {
	o, err := makeOptions(opts...)
	if err != nil {
		return nil, fmt.Errorf("replicating: %w", err)
	}
	rep := newReporter(o.progress)
	defer rep.close()

	d, ok := src.(name.Digest)
	if !ok {
		return nil, fmt.Errorf("replicating %s: %w", src, ErrDigestRequired)
	}
	if len(dests) == 0 {
		return nil, fmt.Errorf("replicating %s: no destination given", src)
	}
	seen := map[string]bool{}
	for _, dst := range dests {
		if seen[dst.String()] {
			return nil, fmt.Errorf("replicating %s: destination %s is given twice", src, dst)
		}
		seen[dst.String()] = true
		if dst.String() == d.Context().String() {
			return nil, fmt.Errorf("replicating %s: destination %s is the source repository", src, dst)
		}
	}
	for _, reg := range append([]name.Repository{d.Context()}, dests...) {
		if err := o.checkRegistry(reg.Registry); err != nil {
			return nil, fmt.Errorf("replicating %s: %w", src, err)
		}
	}

	s, err := readSource(ctx, o, d)
	if err != nil {
		return nil, fmt.Errorf("replicating %s: reading the source: %w", src, explain(err))
	}
	blobs, err := os.MkdirTemp("", "twinforge-replicate-")
	if err != nil {
		return nil, fmt.Errorf("replicating %s: %w", src, err)
	}
	defer os.RemoveAll(blobs)
	if s.shared, err = shareLayers(s.desc, blobs); err != nil {
		return nil, fmt.Errorf("replicating %s: reading the source: %w", src, explain(err))
	}
	if s.shared != nil {
		// Downloads end before their files go.
		defer s.shared.wait()
	}

	results = make([]DestResult, len(dests))
	sem := make(chan struct{}, o.jobs)
	var wg sync.WaitGroup
	for i, dst := range dests {
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case sem <- struct{}{}:
				defer func() { <-sem }()
			case <-ctx.Done():
				results[i] = DestResult{Repository: dst, Err: ctx.Err()}
				return
			}
			results[i] = replicateOne(ctx, o, rep, s, dst)
		}()
	}
	wg.Wait()

	var errs []error
	for _, r := range results {
		if r.Err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", r.Repository, r.Err))
		}
	}
	if len(errs) > 0 {
		return results, fmt.Errorf("replicating %s: %d of %d destinations failed: %w", src, len(errs), len(dests), errors.Join(errs...))
	}
	return results, nil
}

// readSource fetches the source manifest and its referrers' manifests,
// through one Puller.
func readSource(ctx context.Context, o *options, d name.Digest) (*source, error) {
	repo := d.Context()
	r, err := o.reader(repo)
	if err != nil {
		return nil, err
	}
	desc, err := getManifest(ctx, o, r.p, d)
	if err != nil {
		return nil, err
	}
	s := &source{digest: desc.Digest, desc: desc, registry: repo.Registry}
	listed, _, err := r.referrers(ctx, s.digest)
	if err != nil {
		return nil, err
	}
	done := map[v1.Hash]bool{}
	for _, l := range listed {
		if done[l.Digest] {
			continue
		}
		done[l.Digest] = true
		rd, err := getManifest(ctx, o, r.p, repo.Digest(l.Digest.String()))
		if err != nil {
			return nil, fmt.Errorf("reading referrer %s: %w", l.Digest, err)
		}
		var m struct {
			Subject *v1.Descriptor `json:"subject"`
		}
		if err := json.Unmarshal(rd.Manifest, &m); err != nil || m.Subject == nil || m.Subject.Digest != s.digest {
			return nil, fmt.Errorf("%w: referrer %s listed for %s does not name it as its subject", ErrVerification, l.Digest, s.digest)
		}
		s.referrers = append(s.referrers, rd)
	}
	sort.Slice(s.referrers, func(i, j int) bool {
		return s.referrers[i].Digest.String() < s.referrers[j].Digest.String()
	})
	return s, nil
}

// replicateOne copies the source to one destination and verifies it.
func replicateOne(ctx context.Context, o *options, rep *reporter, s *source, dst name.Repository) (res DestResult) {
	start := time.Now()
	res = DestResult{Repository: dst}
	defer func() {
		res.Duration = time.Since(start)
		if res.Err != nil {
			res.Digest, res.Referrers, res.Skipped = v1.Hash{}, nil, false
		}
		rep.send(ctx, Update{Repository: dst.String(), Phase: PhaseDone, Digest: s.digest, Err: res.Err})
	}()
	update := func(p Phase, digest v1.Hash) {
		rep.send(ctx, Update{Repository: dst.String(), Phase: p, Digest: digest})
	}
	fail := func(format string, args ...any) DestResult {
		res.Err = explain(fmt.Errorf(format, args...))
		return res
	}

	update(PhaseCheck, s.digest)
	r, err := o.reader(dst)
	if err != nil {
		return fail("%w", err)
	}
	exists, err := r.manifestExists(ctx, s.digest)
	if err != nil {
		return fail("checking for %s: %w", s.digest, err)
	}
	listed := map[v1.Hash]bool{}
	if exists {
		have, mode, err := r.referrers(ctx, s.digest)
		if err != nil {
			return fail("%w", err)
		}
		res.ReferrersMode = mode
		for _, d := range have {
			listed[d.Digest] = true
		}
	}
	var missing []*remote.Descriptor
	for _, ref := range s.referrers {
		if !listed[ref.Digest] {
			missing = append(missing, ref)
		}
	}
	res.Skipped = exists && len(missing) == 0

	pw, err := remote.NewPusher(o.connection()...)
	if err != nil {
		return fail("%w", err)
	}
	if !exists {
		if s.shared != nil && dst.Registry.String() != s.registry.String() {
			// Every layer's download starts at the first destination that
			// lacks the image, all at once; the others join them.
			s.shared.prefetch()
		}
		update(PhaseUpload, s.digest)
		ropts := o.remote(ctx)
		progress, wait := rep.bytes(ctx, dst.String())
		if progress != nil {
			ropts = append(ropts, remote.WithProgress(progress))
		}
		// Within the source's registry, blobs are mounted from it; other
		// registries upload blobs the source served once for all of them.
		var from remote.Taggable = s.desc
		if s.shared != nil && dst.Registry.String() != s.registry.String() {
			from = s.shared
		}
		err := remote.Push(dst.Digest(s.digest.String()), from, ropts...)
		wait()
		if err != nil {
			return fail("copying %s: %w", s.digest, err)
		}
		if _, res.ReferrersMode, err = r.referrers(ctx, s.digest); err != nil {
			return fail("%w", err)
		}
	}
	for _, m := range missing {
		update(PhaseReferrer, m.Digest)
		if err := pw.Push(ctx, dst.Digest(m.Digest.String()), m); err != nil {
			return fail("copying referrer %s: %w", m.Digest, err)
		}
	}
	if len(missing) > 0 && res.ReferrersMode == ReferrersTagSchema {
		// Push skips a manifest that is there already, so a referrer
		// written by a run that was killed before it updated the tag
		// schema index is written again with Put, which updates it.
		have, _, err := r.referrers(ctx, s.digest)
		if err != nil {
			return fail("%w", err)
		}
		for _, d := range have {
			listed[d.Digest] = true
		}
		for _, m := range missing {
			if listed[m.Digest] {
				continue
			}
			if err := pw.Put(ctx, dst.Digest(m.Digest.String()), m); err != nil {
				return fail("listing referrer %s: %w", m.Digest, err)
			}
		}
	}

	update(PhaseVerify, s.digest)
	if _, err := r.readBack(ctx, s.digest, s.desc.Manifest); err != nil {
		return fail("%w", err)
	}
	for _, m := range s.referrers {
		if _, err := r.readBack(ctx, m.Digest, m.Manifest); err != nil {
			return fail("referrer %s: %w", m.Digest, err)
		}
	}
	have, _, err := r.referrers(ctx, s.digest)
	if err != nil {
		return fail("%w", err)
	}
	got := map[v1.Hash]bool{}
	for _, d := range have {
		got[d.Digest] = true
	}
	for _, m := range s.referrers {
		if !got[m.Digest] {
			return fail("%w: the destination's referrers list (%s) lacks %s", ErrVerification, res.ReferrersMode, m.Digest)
		}
		res.Referrers = append(res.Referrers, m.Digest)
	}
	res.Digest = s.digest
	return res
}
