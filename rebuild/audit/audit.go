package audit

import (
	"context"
	"fmt"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/twinforge/twinforge/builder"
	"github.com/twinforge/twinforge/isolation"
	"github.com/twinforge/twinforge/rebuild"
	"github.com/twinforge/twinforge/rebuild/imagediff"
)

// MismatchError says that a rebuild did not give the published digest.
// It wraps rebuild.ErrNotReproducible.
type MismatchError struct {
	// Want is the digest the provenance is about; Got the rebuild's.
	Want, Got string
	// Rebuilt is the rebuilt image.
	Rebuilt *builder.Result
	// Report says what differs, published image (A) against rebuilt (B);
	// nil when the published image was not given (WithPublished) or could
	// not be compared, ReportErr then says why.
	Report    *imagediff.Report
	ReportErr error
}

func (e *MismatchError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "the rebuild gave %s, not the published %s", e.Got, e.Want)
	if e.Report != nil {
		var files []string
		for _, l := range e.Report.Layers {
			for _, f := range l.Files {
				files = append(files, f.Path)
			}
		}
		if len(files) > 5 {
			files = append(files[:5], fmt.Sprintf("and %d more", len(files)-5))
		}
		if len(files) > 0 {
			fmt.Fprintf(&b, "; files that differ: %s", strings.Join(files, ", "))
		}
	}
	return b.String()
}

func (e *MismatchError) Unwrap() error { return rebuild.ErrNotReproducible }

// Option configures Rebuild.
type Option func(*options) error

type options struct {
	published v1.Image
}

// WithPublished gives Rebuild the published image, to compare file by
// file with the rebuilt one when the digests differ. By default a mismatch
// reports the digests only.
func WithPublished(img v1.Image) Option {
	return func(o *options) error {
		if img == nil {
			return fmt.Errorf("WithPublished: nil image")
		}
		o.published = img
		return nil
	}
}

// Rebuild builds req with b and compares the image's digest with want, the
// digest the provenance is about. A different digest is a *MismatchError
// (wrapping rebuild.ErrNotReproducible) with the rebuilt image, and the
// image diff when the published image was given. The rebuilt image is in
// req.OCILayout either way.
func Rebuild(ctx context.Context, b builder.Builder, req builder.Request, want string, opts ...Option) (*builder.Result, error) {
	o := &options{}
	for _, opt := range opts {
		if err := opt(o); err != nil {
			if req.Progress != nil {
				close(req.Progress)
			}
			return nil, fmt.Errorf("rebuilding: %w", err)
		}
	}
	res, err := b.Build(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("rebuilding: %w", err)
	}
	if res.Digest == want {
		return res, nil
	}
	mm := &MismatchError{Want: want, Got: res.Digest, Rebuilt: res}
	if o.published != nil {
		mm.Report, mm.ReportErr = compare(ctx, o.published, res)
	}
	return res, mm
}

func compare(ctx context.Context, published v1.Image, rebuilt *builder.Result) (*imagediff.Report, error) {
	ib, err := imagediff.Load(ctx, rebuilt.OCILayout+"@"+rebuilt.Digest)
	if err != nil {
		return nil, fmt.Errorf("reading the rebuilt image: %w", err)
	}
	return imagediff.Compare(ctx, published, ib)
}

// Hostname and Ulimit are what a rebuild's steps see, as rebuild.Verify
// gives its rebuilds: a second machine is never quite the first.
const (
	Hostname = "twinforge-rebuild"
	Ulimit   = rebuild.RebuildUlimit
)

// Variations describes how a rebuild on daemon d with request req differs
// from a default build, for the verdict.
func Variations(d isolation.Info, req builder.Request) []string {
	var out []string
	add := func(k, v string) {
		if v != "" {
			out = append(out, k+"="+v)
		}
	}
	add("hostname", req.Hostname)
	add("ulimit", req.Ulimit)
	add("snapshotter", d.Snapshotter)
	add("cpuset", d.CPUSet)
	add("umask", d.Umask)
	add("tz", d.TZ)
	return out
}
