package distribute

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Pusher publishes an image with its artifacts, as Push does.
type Pusher interface {
	// Push publishes img and artifacts and returns what was written and
	// read back.
	Push(ctx context.Context, img v1.Image, artifacts []Artifact) (*PushResult, error)
	// Repository is where the image goes.
	Repository() name.Repository
}

type pusher struct {
	ref  name.Reference
	opts []Option
}

var _ Pusher = (*pusher)(nil)

// NewPusher returns the Pusher to ref (a tag, moved last, or the image's
// digest) with opts, which are checked now.
func NewPusher(ref name.Reference, opts ...Option) (Pusher, error) {
	if _, err := makeOptions(opts...); err != nil {
		return nil, fmt.Errorf("pusher for %s: %w", ref, err)
	}
	return &pusher{ref: ref, opts: opts}, nil
}

func (p *pusher) Push(ctx context.Context, img v1.Image, artifacts []Artifact) (*PushResult, error) {
	return Push(ctx, img, p.ref, artifacts, p.opts...)
}

func (p *pusher) Repository() name.Repository { return p.ref.Context() }

// multiPusher pushes to several destinations, one after the other.
type multiPusher struct {
	pushers []Pusher
}

var _ Pusher = (*multiPusher)(nil)

// Multi is a Pusher that pushes to each of pushers in turn, like tee: the
// result is the first one's, and the error joins those of every pusher
// that failed (the others have pushed regardless).
func Multi(pushers ...Pusher) Pusher {
	return &multiPusher{pushers: pushers}
}

func (m *multiPusher) Push(ctx context.Context, img v1.Image, artifacts []Artifact) (*PushResult, error) {
	if len(m.pushers) == 0 {
		return nil, errors.New("pushing: no destination")
	}
	var first *PushResult
	var errs []error
	for i, p := range m.pushers {
		res, err := p.Push(ctx, img, artifacts)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if i == 0 {
			first = res
		}
	}
	if err := errors.Join(errs...); err != nil {
		return first, err
	}
	return first, nil
}

func (m *multiPusher) Repository() name.Repository {
	if len(m.pushers) == 0 {
		return name.Repository{}
	}
	return m.pushers[0].Repository()
}
