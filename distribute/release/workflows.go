// The workflows of `twinforge release` and `twinforge replicate` that take
// more than one call, so that a program runs them as the CLI does.

package release

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/twinforge/twinforge/distribute"
	"github.com/twinforge/twinforge/internal/errclass"
)

// ReplicateImage copies the image src, with its referrers, to each of
// dests, jobs at a time (distribute.Replicate), and with index the release
// index too (Replicate), so that every region serves the image and the
// index that releases it. The report is nil when nothing was copied: the
// source or the arguments were refused, or the index was refused
// (IsRefusal) or unreadable. Otherwise the error joins the failures of the
// destinations; one failing does not stop the others.
func ReplicateImage(ctx context.Context, src name.Digest, dests []name.Repository, index *ClientConfig, jobs int, opts ...distribute.Option) (*ReplicationReport, error) {
	images, err := distribute.Replicate(ctx, src, dests, append(opts[:len(opts):len(opts)], distribute.WithJobs(jobs))...)
	if images == nil {
		return nil, err
	}
	rep := &ReplicationReport{Images: images}
	if index != nil {
		var ierr error
		if _, rep.Index, ierr = Replicate(ctx, *index, dests, opts...); ierr != nil {
			if rep.Index == nil {
				return nil, errors.Join(err, ierr)
			}
			err = errors.Join(err, ierr)
		}
	}
	return rep, err
}

// Replication is one run of ReplicateImage as `twinforge replicate` asks
// for it, with the references as given.
type Replication struct {
	// Source is the image, REGISTRY/REPOSITORY@sha256:... (SRC).
	Source string
	// Destinations are the repositories copied to, without tag or digest,
	// each once (DEST).
	Destinations []string
	// Jobs (jobs) is how many destinations are copied at the same time;
	// at least 1.
	Jobs int
	// Index is the release index replicated too; nil for none.
	Index *ClientConfig
}

// Run checks r's references, then replicates (ReplicateImage). Errors
// about r itself wrap ErrInvalidSetting, or distribute.ErrDigestRequired
// for a Source by tag, and nothing is copied.
func (r Replication) Run(ctx context.Context, opts ...distribute.Option) (*ReplicationReport, error) {
	ref, err := name.ParseReference(r.Source)
	if err != nil {
		return nil, errclass.Errorf(ErrInvalidSetting, "SRC %q: %v", r.Source, err)
	}
	src, ok := ref.(name.Digest)
	if !ok {
		return nil, fmt.Errorf("SRC %s: %w, e.g. %s@sha256:...", r.Source, distribute.ErrDigestRequired, ref.Context())
	}
	var dests []name.Repository
	seen := map[string]bool{}
	for _, s := range r.Destinations {
		repo, err := name.NewRepository(s)
		if err != nil {
			return nil, errclass.Errorf(ErrInvalidSetting, "DEST %q: give a repository without tag or digest, e.g. mirror.example/team/app (%v)", s, err)
		}
		dests = append(dests, repo)
	}
	if r.Jobs < 1 {
		return nil, settingErrorf("jobs", " %d: need at least 1", r.Jobs)
	}
	for _, d := range dests {
		if seen[d.String()] {
			return nil, errclass.Errorf(ErrInvalidSetting, "DEST %s is given twice", d)
		}
		seen[d.String()] = true
	}
	return ReplicateImage(ctx, src, dests, r.Index, r.Jobs, opts...)
}

// ReleaseImage releases image as tag of its repository, as `twinforge
// release add` does: its Target (TargetFor, reached with opts) recorded by
// team's keys (Release).
func (r *Repository) ReleaseImage(ctx context.Context, team string, image name.Digest, tag, provenance string, keys []*Key, opts ...distribute.Option) (*Target, error) {
	t, err := TargetFor(ctx, image, tag, provenance, opts...)
	if err != nil {
		return nil, err
	}
	return r.Release(team, t, keys)
}

// Push pushes the index's files (Files) to ref as an OCI artifact
// (PushIndex), for readers that read it from a registry.
func (r *Repository) Push(ctx context.Context, ref name.Tag, opts ...distribute.Option) (*distribute.PushResult, error) {
	files, err := r.Files()
	if err != nil {
		return nil, err
	}
	return PushIndex(ctx, files, ref, opts...)
}
