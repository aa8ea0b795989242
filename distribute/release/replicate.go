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
