package pipeline

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/moby/buildkit/client"
	"github.com/sigstore/sigstore-go/pkg/bundle"

	"github.com/twinforge/twinforge/attest"
	"github.com/twinforge/twinforge/attest/verify"
	"github.com/twinforge/twinforge/builder"
	"github.com/twinforge/twinforge/distribute"
	"github.com/twinforge/twinforge/hermetic"
	"github.com/twinforge/twinforge/isolation"
	"github.com/twinforge/twinforge/rebuild"
)

// ErrRefused is wrapped by every error that refuses a build before it
// starts or before anything is signed: no lock, a lock the tree does not
// match, a source that is not the GitHub Actions run's. It is
// builder.ErrRefused, which the lock checks return.
var ErrRefused = builder.ErrRefused

// DefaultRebuildOffset is how much later the rebuild starts by default.
const DefaultRebuildOffset = time.Second

// Request is one build.
type Request struct {
	// ContextDir is the build context, holding the Dockerfile. Required.
	ContextDir string
	// LockPath is the lock file. The default is ContextDir/twinforge.lock.
	LockPath string
	// OCILayout is the directory the image is written to as an OCI image
	// layout; the rebuild goes to OCILayout-rebuild. Required.
	OCILayout string
	// Tag is the reference name recorded in the layout, e.g.
	// registry.example/team/hello:1.0.
	Tag string
	// Daemons say where the build and its rebuild run.
	Daemons rebuild.Daemons
	// NoRebuild skips the independent rebuild; the provenance then records
	// the build as not reproduced.
	NoRebuild bool
	// StrictVariations also varies what BuildKit pins (umask, time zone)
	// on a strict rebuild (rebuild.WithStrictVariations); the rebuild
	// without them then runs only when the strict one differs. The default
	// is rebuild.StrictOff.
	StrictVariations rebuild.Strictness
	// RebuildOffset is how much later the rebuild starts, so that wall
	// clock leaks show. The default is DefaultRebuildOffset.
	RebuildOffset time.Duration
	// CacheScope is the tenant whose caches the build and the rebuild use,
	// each side its own (isolation.WithCache). The default is the
	// repository of the lock's source (rebuild.CacheScope).
	CacheScope string
	// Cold starts both sides from nothing and keeps nothing; on a remote
	// build daemon every step runs. The provenance records each side's
	// cache.
	Cold bool
	// Progress receives BuildKit's status updates of the build and the
	// rebuild; Run closes it. Optional.
	Progress chan<- *client.SolveStatus

	// Signer attests the build: provenance and image manifest are signed
	// with it once the digest is proven (or the proof skipped on purpose).
	// nil leaves the image unsigned.
	Signer attest.Signer
	// BuilderID is the builder's identity in the provenance. The default
	// is attest.DefaultBuilderID.
	BuilderID string
	// SBOMFormats are the SBOM formats (package attest/sbom: spdx,
	// cyclonedx) the orchestrator writes from the built layout and signs
	// like the provenance, kept beside the layout and pushed as referrers.
	// They need a Signer.
	SBOMFormats []string
	// Getenv reads the GitHub Actions context of the run. The default is
	// os.Getenv.
	Getenv func(string) string

	// Vouch, when set, has the rebuild run in a process of its own that
	// signs its own rebuild verdict with the rebuilder's credentials; the
	// verdict is kept beside the layout and pushed with the image. It
	// needs a Signer and the rebuild on a worker of its own.
	Vouch *Vouch

	// Pusher, when set, publishes the image by digest with the bundles as
	// referrers (distribute.NewPusher, or distribute.Multi for several
	// registries), and moves the tag it names last.
	Pusher distribute.Pusher
}

// Result is what Run built, proved, signed and pushed.
type Result struct {
	// Build is the image built; Proof the rebuild that reproduced it (nil
	// with NoRebuild).
	Build *builder.Result
	Proof *rebuild.Result
	// Bundles are the provenance and image bundles, nil fields when
	// unsigned; BundleFiles where they are kept beside the layout, and
	// SBOMFiles the signed SBOM attestations; Signer who signed them.
	Bundles     verify.Bundles
	BundleFiles []string
	SBOMFiles   []string
	Signer      verify.SignerIdentity
	// Verdict is the rebuild verdict the rebuild process signed (Vouch),
	// VerdictFiles where it is kept and RebuilderSigner who signed it.
	Verdict         *bundle.Bundle
	VerdictFiles    []string
	RebuilderSigner verify.SignerIdentity
	// WorkerFailures are the attempts on a pool's workers that a worker
	// died under before the one that counted.
	WorkerFailures []string
	// Push is what was pushed, nil without Request.Pusher.
	Push *distribute.PushResult
	// Started and Finished bound the run.
	Started, Finished time.Time
}

// Reproduction says how the digest was proven: "reproduced", "not
// reproducible" or "not reproduced" (NoRebuild).
func (r *Result) Reproduction() string {
	switch {
	case r.Proof == nil:
		return "not reproduced"
	case r.Proof.Build.Digest == r.Proof.Rebuild.Digest:
		return "reproduced"
	}
	return "not reproducible"
}

func (r *Request) validate() error {
	switch {
	case r.ContextDir == "":
		return fmt.Errorf("%w: no build context", builder.ErrInvalidRequest)
	case r.OCILayout == "":
		return fmt.Errorf("%w: no OCI layout to write", builder.ErrInvalidRequest)
	case r.RebuildOffset < 0:
		return fmt.Errorf("%w: negative rebuild offset %s", builder.ErrInvalidRequest, r.RebuildOffset)
	case r.NoRebuild && r.StrictVariations != "" && r.StrictVariations != rebuild.StrictOff:
		return fmt.Errorf("%w: strict variations need the rebuild", builder.ErrInvalidRequest)
	case len(r.SBOMFormats) > 0 && r.Signer == nil:
		return fmt.Errorf("%w: SBOMs are attested: they need a Signer", builder.ErrInvalidRequest)
	case r.Vouch != nil && r.NoRebuild:
		return fmt.Errorf("%w: a rebuilder vouches for its rebuild: drop NoRebuild", builder.ErrInvalidRequest)
	}
	if r.LockPath == "" {
		r.LockPath = filepath.Join(r.ContextDir, hermetic.DefaultFileName)
	}
	if r.RebuildOffset == 0 {
		r.RebuildOffset = DefaultRebuildOffset
	}
	if r.Getenv == nil {
		r.Getenv = os.Getenv
	}
	if r.StrictVariations == "" {
		r.StrictVariations = rebuild.StrictOff
	}
	return nil
}

// Run builds req, proves it, attests and signs it and pushes it, each step
// only after the one before succeeded. A build that is not reproducible
// returns the Result (both builds, the layouts kept) with a
// *rebuild.DiffError (or, with strict variations, a *rebuild.StrictFailure)
// that wraps rebuild.ErrNotReproducible; nothing is signed or pushed then.
func Run(ctx context.Context, req Request) (*Result, error) {
	progress := req.Progress
	closeProgress := func() {
		if progress != nil {
			close(progress)
			progress = nil
		}
	}
	defer closeProgress()
	if err := req.validate(); err != nil {
		return nil, err
	}
	res := &Result{Started: time.Now()}
	lock, breq, err := LockedRequest(ctx, req.ContextDir, req.LockPath, imageCache(req.Daemons))
	if err != nil {
		return nil, err
	}
	breq.OCILayout = req.OCILayout
	breq.ImageName = req.Tag
	// Each private daemon keeps a cache of its own side for the scope,
	// unless cold; a remote daemon's cache is its own, so cold there means
	// every step runs.
	req.Daemons.Options = append(append([]isolation.Option{}, req.Daemons.Options...),
		rebuild.CacheOptions(rebuild.CacheScope(lock, req.ContextDir, req.CacheScope), req.Cold)...)
	breq.NoCache = req.Cold && req.Daemons.Remote != ""
	// The builds own the progress channel from here.
	breq.Progress, progress = progress, nil
	var rebuilder *vouching
	switch {
	case req.NoRebuild:
		res.Build, err = buildOnce(ctx, req.Daemons, breq)
	case req.Vouch != nil:
		res.Build, res.Proof, rebuilder, res.WorkerFailures, err = onWorkers(ctx, req, breq, buildAndVouchedRebuild)
		defer rebuilder.close()
	default:
		res.Build, res.Proof, _, res.WorkerFailures, err = onWorkers(ctx, req, breq, plainAttempt)
	}
	if err != nil {
		return resultIfDiff(res, err), err
	}
	if req.Signer != nil {
		if err := attestBuild(ctx, req, lock, res); err != nil {
			return nil, err
		}
	}
	if rebuilder != nil {
		if err := vouchFor(ctx, req, res, rebuilder); err != nil {
			return nil, err
		}
	}
	if req.Pusher != nil {
		if res.Push, err = push(ctx, req, res); err != nil {
			return nil, err
		}
	}
	res.Finished = time.Now()
	return res, nil
}

// resultIfDiff keeps the result of a build that was not reproducible.
func resultIfDiff(res *Result, err error) *Result {
	var diff *rebuild.DiffError
	if errors.As(err, &diff) || errors.As(err, new(*rebuild.StrictFailure)) {
		res.Finished = time.Now()
		return res
	}
	return nil
}

// imageCache is where base images fetched by digest are kept: under the
// daemons' state directory.
func imageCache(d rebuild.Daemons) string {
	return filepath.Join(d.StateDirectory(), "images")
}

// LockedRequest loads and checks the lock and turns it into a build
// request; every refusal (wrapping ErrRefused) happens here, before a
// daemon starts. imageCache keeps the base images fetched by digest.
func LockedRequest(ctx context.Context, contextDir, lockPath, imageCache string) (*hermetic.Lock, builder.Request, error) {
	l, err := hermetic.Load(lockPath)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, builder.Request{}, fmt.Errorf("%w: no lock at %s: run `twinforge lock %s` first (or give --lock FILE)", ErrRefused, lockPath, contextDir)
		}
		return nil, builder.Request{}, fmt.Errorf("%w: lock %s: %w", ErrRefused, lockPath, err)
	}
	req, err := builder.FromLock(ctx, builder.LockedInput{
		Lock:       l,
		LockPath:   lockPath,
		ContextDir: contextDir,
		ImageCache: imageCache,
	})
	if err != nil {
		return nil, builder.Request{}, err
	}
	return l, req, nil
}

func buildOnce(ctx context.Context, daemons rebuild.Daemons, req builder.Request) (*builder.Result, error) {
	d, err := daemons.StartBuild(ctx)
	if err != nil {
		if req.Progress != nil {
			close(req.Progress)
		}
		return nil, err
	}
	defer d.Close()
	res, err := builder.New(d).Build(ctx, req)
	if cerr := d.Close(); cerr != nil && err == nil {
		err = fmt.Errorf("stopping the build daemon: %w", cerr)
	}
	return res, err
}

// buildAndRebuild runs the build and the varied rebuild concurrently on
// two daemons started side by side; with strict variations the second is
// the strict rebuild's, and the rebuild's daemon starts only if it is
// needed.
func buildAndRebuild(ctx context.Context, r Request, req builder.Request) (*builder.Result, *rebuild.Result, error) {
	progress := req.Progress
	req.Progress = nil
	strict := r.StrictVariations != rebuild.StrictOff
	b, second, err := r.Daemons.StartPair(ctx, strict)
	if err != nil {
		if progress != nil {
			close(progress)
		}
		return nil, nil, err
	}
	daemons := []isolation.Daemon{b, second}
	defer rebuild.CloseAll(daemons...)
	opts := []rebuild.Option{rebuild.WithStartOffset(r.RebuildOffset)}
	rebuilder := second
	if strict {
		rebuilder = isolation.OnDemand(r.Daemons.StartRebuild)
		daemons = append(daemons, rebuilder)
		opts = append(opts, rebuild.WithStrictVariations(r.StrictVariations, builder.New(second)))
	}
	if progress != nil {
		opts = append(opts, rebuild.WithProgress(progress))
	}
	res, err := rebuild.Verify(ctx, builder.New(b), builder.New(rebuilder), req, opts...)
	if cerr := rebuild.CloseAll(daemons...); cerr != nil && err == nil {
		err = fmt.Errorf("stopping the daemons: %w", cerr)
	}
	var diff *rebuild.DiffError
	switch {
	case errors.As(err, &diff):
		why := "not reproducible"
		if diff.Class == rebuild.Pinned {
			why = "not reproducible under the pinned variations (--strict-variations=fail)"
		}
		return res.Build, res, fmt.Errorf("%s: %w; nothing was signed or pushed; both layouts are kept: %s and %s", why, err, diff.Build.OCILayout, diff.Rebuild.OCILayout)
	case errors.As(err, new(*rebuild.StrictFailure)):
		return res.Build, res, fmt.Errorf("not reproducible under the pinned variations (--strict-variations=fail): %w; nothing was signed or pushed", err)
	case err != nil:
		return nil, nil, err
	}
	return res.Build, res, nil
}

func invocationID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return "urn:uuid:" + hex.EncodeToString(b)
}
