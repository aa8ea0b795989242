package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"

	"github.com/twinforge/twinforge/attest"
	"github.com/twinforge/twinforge/attest/verify"
	"github.com/twinforge/twinforge/builder"
	"github.com/twinforge/twinforge/isolation"
	"github.com/twinforge/twinforge/rebuild"
	"github.com/twinforge/twinforge/rebuild/vouch"
)

// Vouch has the rebuild run in a process of its own that signs its own
// rebuild verdict (package rebuild/vouch), with the rebuilder's
// credentials: the builder's Signer is never handed to it. The rebuild
// must run on a worker of its own, another machine than the build's
// (Daemons.Workers).
type Vouch struct {
	// Signer is the rebuilder's signing credentials, by path.
	Signer vouch.SignerFiles
	// RebuilderID is the rebuilder's identity in the verdict. The default
	// is vouch.DefaultRebuilderID.
	RebuilderID string
	// TrustedRoot is the Sigstore trusted root file that verifies the
	// builder's provenance for the rebuilder; needed for a keyless
	// builder.
	TrustedRoot string
	// Program runs the rebuild process (vouch.Options); Stderr receives
	// its log.
	Program string
	Stderr  io.Writer
}

// vouching is a running rebuild process and the worker it holds.
type vouching struct {
	proc   *vouch.Process
	worker *rebuild.RebuildWorker
}

func (v *vouching) close() error {
	if v == nil {
		return nil
	}
	return errors.Join(v.proc.Close(), v.worker.Release())
}

// buildAndVouchedRebuild runs the build on its daemon and the rebuild in
// the rebuild process, which dials its own worker; the process is kept
// for the verdict.
func buildAndVouchedRebuild(ctx context.Context, r Request, req builder.Request) (*builder.Result, *rebuild.Result, *vouching, error) {
	progress := req.Progress
	req.Progress = nil
	fail := func(err error) (*builder.Result, *rebuild.Result, *vouching, error) {
		if progress != nil {
			close(progress)
		}
		return nil, nil, nil, err
	}
	if r.Signer == nil {
		return fail(fmt.Errorf("%w: a rebuilder vouches for a signed provenance: give a Signer", builder.ErrInvalidRequest))
	}
	if r.StrictVariations != rebuild.StrictOff {
		return fail(fmt.Errorf("%w: strict variations with a rebuilder of its own", rebuild.ErrStrictRemote))
	}
	b, worker, err := r.Daemons.StartBuildPlaceRebuild(ctx)
	if err != nil {
		return fail(err)
	}
	defer b.Close()
	proc, err := vouch.Start(ctx, vouch.Config{
		ContextDir:  r.ContextDir,
		LockPath:    r.LockPath,
		Worker:      *worker,
		StateDir:    filepath.Join(r.Daemons.StateDirectory(), "rebuilder"),
		Signer:      r.Vouch.Signer,
		RebuilderID: r.Vouch.RebuilderID,
		TrustedRoot: r.Vouch.TrustedRoot,
	}, vouch.Options{Program: r.Vouch.Program, Stderr: r.Vouch.Stderr})
	if err != nil {
		_ = worker.Release()
		return fail(err)
	}
	v := &vouching{proc: proc, worker: worker}
	opts := []rebuild.Option{rebuild.WithStartOffset(r.RebuildOffset)}
	if progress != nil {
		opts = append(opts, rebuild.WithProgress(progress))
	}
	res, err := rebuild.Verify(ctx, builder.New(b), proc, req, opts...)
	// The rebuild process dials its worker itself; when the build's
	// daemon still answers, a dead daemon is the rebuild's.
	if errors.Is(err, isolation.ErrDaemonFailed) && worker.Pool != nil && b.Check(context.WithoutCancel(ctx)) == nil {
		r.Daemons.Workers.MarkFailed(worker.Pool, worker.Worker)
	}
	if cerr := b.Close(); cerr != nil && err == nil {
		err = fmt.Errorf("stopping the build daemon: %w", cerr)
	}
	if err == nil {
		err = isolation.CheckSeparate(res.Build.Builder, res.Rebuild.Builder)
	}
	var diff *rebuild.DiffError
	switch {
	case errors.As(err, &diff):
		_ = v.close()
		return res.Build, res, nil, fmt.Errorf("not reproducible: %w; nothing was signed or pushed; both layouts are kept: %s and %s", err, diff.Build.OCILayout, diff.Rebuild.OCILayout)
	case err != nil:
		_ = v.close()
		return nil, nil, nil, err
	}
	return res.Build, res, v, nil
}

// vouchFor has the rebuild process verify the signed provenance and sign
// its verdict, kept beside the layout.
func vouchFor(ctx context.Context, req Request, res *Result, v *vouching) error {
	who := vouch.Builder{}
	if pem, ok := attest.PublicKeyPEM(req.Signer); ok {
		who.PublicKeyPEM = pem
	} else {
		who.Issuer, who.Subject = res.Signer.Issuer, res.Signer.Subject
	}
	verdict, err := v.proc.Vouch(ctx, vouch.VouchRequest{
		Provenance: res.Bundles.Provenance, Image: res.Bundles.Image, Builder: who, BuildWorker: res.Build.Builder,
	})
	if err != nil {
		return fmt.Errorf("the rebuilder did not vouch; nothing was pushed: %w", err)
	}
	path, err := verify.WriteVerdict(res.Build.OCILayout, verdict)
	if err != nil {
		return err
	}
	res.Verdict, res.VerdictFiles = verdict, []string{path}
	if d, err := verify.Describe(verdict); err == nil {
		res.RebuilderSigner = d.Signer
	}
	return nil
}
