package audit

import (
	"context"
	"errors"
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
	// Class is rebuild.Pinned when only the strict rebuild missed the
	// digest (StrictFail), rebuild.Deciding otherwise.
	Class rebuild.Class
}

func (e *MismatchError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "the rebuild gave %s, not the published %s", e.Got, e.Want)
	if e.Class == rebuild.Pinned {
		b.WriteString(", under the pinned variations (umask, time zone) only")
	}
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
	strict    rebuild.Strictness
	strictB   builder.Builder
}

// WithStrictVariations also varies what BuildKit pins (umask, time zone),
// as rebuild.WithStrictVariations does: the image is rebuilt on strict (a
// daemon started with rebuild.StrictDaemonOptions) first, and only when
// that misses the published digest on the builder Rebuild was given,
// which then decides. The default is rebuild.StrictOff.
func WithStrictVariations(mode rebuild.Strictness, strict builder.Builder) Option {
	return func(o *options) error {
		if err := rebuild.CheckStrictVariations(mode, strict); err != nil {
			return err
		}
		o.strict, o.strictB = mode, strict
		return nil
	}
}

// Result is what a rebuild found.
type Result struct {
	// Rebuilt is the rebuild whose digest decided: the one without the
	// pinned variations, or the strict one when it gave the published
	// digest.
	Rebuilt *builder.Result
	// Strict is the rebuild under the pinned variations too; nil with
	// rebuild.StrictOff.
	Strict *builder.Result
	// Strictness is what was asked for.
	Strictness rebuild.Strictness
	// Warnings name what only the pinned variations changed.
	Warnings []rebuild.Warning
	// StrictReport is what differs between the published image and the
	// strict rebuild, when the pinned variations changed it and the
	// published image was given.
	StrictReport *imagediff.Report
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
// req.OCILayout either way; a strict rebuild's in req.OCILayout+"-strict".
//
// With WithStrictVariations and StrictFail, an image that only the pinned
// variations change is a *MismatchError of class rebuild.Pinned; with
// StrictWarn it is reproduced, with Result.Warnings.
func Rebuild(ctx context.Context, b builder.Builder, req builder.Request, want string, opts ...Option) (*Result, error) {
	o := &options{strict: rebuild.StrictOff}
	for _, opt := range opts {
		if err := opt(o); err != nil {
			if req.Progress != nil {
				close(req.Progress)
			}
			return nil, fmt.Errorf("rebuilding: %w", err)
		}
	}
	out := &Result{Strictness: o.strict}
	var strictErr error
	if o.strict != rebuild.StrictOff {
		// One progress channel serves both rebuilds: the strict one gets a
		// copy that does not close it.
		sreq := req
		if req.OCILayout != "" {
			sreq.OCILayout = req.OCILayout + "-strict"
		}
		var wait func()
		sreq.Progress, wait = rebuild.Forward(req.Progress, "[strict] ")
		res, err := o.strictB.Build(ctx, sreq)
		wait()
		switch {
		case err != nil && errors.Is(err, builder.ErrBuildFailed) && !errors.Is(err, isolation.ErrDaemonFailed) && ctx.Err() == nil:
			// A step failed under the pinned variations: the rebuild
			// without them tells whether that is all.
			strictErr = err
		case err != nil:
			if req.Progress != nil {
				close(req.Progress)
			}
			return nil, fmt.Errorf("strict rebuild: %w", err)
		}
		out.Strict = res
		if res != nil && res.Digest == want {
			if req.Progress != nil {
				close(req.Progress)
			}
			out.Rebuilt = res
			return out, nil
		}
	}
	res, err := b.Build(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("rebuilding: %w", err)
	}
	out.Rebuilt = res
	if res.Digest != want {
		mm := &MismatchError{Want: want, Got: res.Digest, Rebuilt: res, Class: rebuild.Deciding}
		if o.published != nil {
			mm.Report, mm.ReportErr = compare(ctx, o.published, res)
		}
		return out, mm
	}
	if strictErr != nil {
		out.Warnings = []rebuild.Warning{{Variation: "umask or tz", Message: fmt.Sprintf(
			"a step failed in the strict rebuild (%v) but not in the rebuild; BuildKit pins umask %s and %s, so it reproduces on BuildKit builders",
			strictErr, rebuild.BuildKitUmask, rebuild.BuildKitTZ)}}
		if o.strict == rebuild.StrictFail {
			return out, &rebuild.StrictFailure{Build: res, Err: strictErr}
		}
		return out, nil
	}
	if out.Strict == nil {
		return out, nil
	}
	// Only the pinned variations changed the image.
	var cerr error = errNoPublished
	if o.published != nil {
		out.StrictReport, cerr = compare(ctx, o.published, out.Strict)
	}
	out.Warnings = rebuild.Warnings(out.StrictReport, cerr)
	if o.strict == rebuild.StrictFail {
		return out, &MismatchError{Want: want, Got: out.Strict.Digest, Rebuilt: out.Strict, Report: out.StrictReport, ReportErr: cerr, Class: rebuild.Pinned}
	}
	return out, nil
}

var errNoPublished = errors.New("the published image was not given")

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
	out = append(out, PinnedVariations(d)...)
	return out
}

// PinnedVariations describes the variations BuildKit pins that daemon d
// applies (a strict rebuild's), for the verdict.
func PinnedVariations(d isolation.Info) []string {
	var out []string
	if d.Umask != "" {
		out = append(out, "umask="+d.Umask)
	}
	if d.TZ != "" {
		out = append(out, "tz="+d.TZ)
	}
	return out
}
