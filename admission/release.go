package admission

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/sigstore/sigstore-go/pkg/bundle"
	"github.com/twinforge/twinforge/attest/verify"
	"github.com/twinforge/twinforge/distribute/release"
)

// DefaultReleaseRefresh is how often the release index is read again.
const DefaultReleaseRefresh = 30 * time.Second

// ErrNoReleaseIndex means a release index is configured but none has
// verified yet: every image is denied until one does.
var ErrNoReleaseIndex = errors.New("no release index has verified yet")

// WithReleaseIndex makes every image also pass the release index c reads
// (package distribute/release): its tag must be released as the digest the
// registry resolved (an image named by digest: released under some tag of
// its repository), and only the provenance the release names is
// verified. The index is read at New and every refresh (0:
// DefaultReleaseRefresh); a read that fails keeps the last index that
// verified, which is still refused once it expires. By default no index is
// consulted.
func WithReleaseIndex(c *release.Client, refresh time.Duration) Option {
	return func(o *options) error {
		if c == nil {
			return errors.New("WithReleaseIndex: nil client")
		}
		if refresh < 0 {
			return fmt.Errorf("WithReleaseIndex: negative refresh %s", refresh)
		}
		if refresh == 0 {
			refresh = DefaultReleaseRefresh
		}
		o.release, o.releaseRefresh = c, refresh
		return nil
	}
}

// releaseCheck consults the index for an image: the release's provenance
// digest ("" when it names none), or why the image is refused.
func (w *webhook) releaseCheck(ref name.Reference, digest string) (string, error) {
	ix := w.o.release.Current()
	if ix == nil {
		if last, ok := w.releaseErr.Load().(string); ok && last != "" {
			return "", fmt.Errorf("%w: %s", ErrNoReleaseIndex, last)
		}
		return "", ErrNoReleaseIndex
	}
	tag := ""
	if t, ok := ref.(name.Tag); ok {
		tag = t.TagStr()
	}
	t, err := ix.Verify(ref.Context().RepositoryStr(), tag, digest, w.o.now())
	if err != nil {
		return "", err
	}
	return t.Provenance, nil
}

// refreshRelease reads the index again until the webhook closes.
func (w *webhook) refreshRelease(every time.Duration) {
	defer w.polling.Done()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-w.stop:
			return
		case <-t.C:
		}
		w.readRelease()
	}
}

func (w *webhook) readRelease() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ix, err := w.o.release.Refresh(ctx)
	if err != nil {
		w.releaseErr.Store(err.Error())
		w.metrics.reloads.WithLabelValues("release_error").Inc()
		w.log.Error("release index refused or unreadable: the last index that verified stays in force", "error", err.Error())
		return
	}
	w.releaseErr.Store("")
	w.log.Debug("release index read", "index", ix.String())
}

// releasedProvenance keeps the provenance bundles whose statement is the
// one the release names; all of them when it names none.
func releasedProvenance(provs []*bundle.Bundle, want string) []*bundle.Bundle {
	if want == "" {
		return provs
	}
	var out []*bundle.Bundle
	for _, p := range provs {
		if d, err := verify.StatementDigest(p); err == nil && d == want {
			out = append(out, p)
		}
	}
	return out
}
