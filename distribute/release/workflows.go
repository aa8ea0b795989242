// The workflows of `twinforge release` and `twinforge replicate` that take
// more than one call, so that a program runs them as the CLI does.

package release

import (
	"context"
	"errors"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/twinforge/twinforge/distribute"
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
