package distribute

import (
	"context"
	"sync"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Phase is the step of a push or a copy an Update reports on.
type Phase string

// The phases, in the order a push or a copy goes through them.
const (
	PhaseCheck    Phase = "check"    // looking at what the destination holds already
	PhaseUpload   Phase = "upload"   // blobs and the image manifest, by digest
	PhaseReferrer Phase = "referrer" // one referrer manifest (Digest says which)
	PhaseVerify   Phase = "verify"   // reading everything back
	PhaseTag      Phase = "tag"      // moving the tag, after verification
	PhaseDone     Phase = "done"     // finished; Err says whether it worked
)

// Update reports progress of one repository's push or copy.
type Update struct {
	Repository string // destination repository, e.g. "registry.example/app"
	Phase      Phase
	Digest     v1.Hash // the manifest the phase is about, when there is one
	// Complete and Total count bytes during PhaseUpload, as far as known.
	Complete, Total int64
	Err             error // set with PhaseDone when the repository failed
}

// reporter sends updates to the caller's channel, if any, and closes it once.
type reporter struct {
	ch   chan<- Update
	once sync.Once
	mu   sync.Mutex
}

func newReporter(ch chan<- Update) *reporter { return &reporter{ch: ch} }

func (r *reporter) send(ctx context.Context, u Update) {
	if r == nil || r.ch == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	select {
	case r.ch <- u:
	case <-ctx.Done():
	}
}

// bytes returns a go-containerregistry progress channel that is forwarded as
// PhaseUpload updates, and a function that waits until forwarding is done.
// go-containerregistry closes the channel when its write returns.
func (r *reporter) bytes(ctx context.Context, repo string) (chan v1.Update, func()) {
	if r == nil || r.ch == nil {
		return nil, func() {}
	}
	ch := make(chan v1.Update, 16)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for u := range ch {
			if u.Error != nil {
				continue // the error comes back from the call itself
			}
			r.send(ctx, Update{Repository: repo, Phase: PhaseUpload, Complete: u.Complete, Total: u.Total})
		}
	}()
	return ch, func() { <-done }
}

func (r *reporter) close() {
	if r == nil || r.ch == nil {
		return
	}
	r.once.Do(func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		close(r.ch)
	})
}
