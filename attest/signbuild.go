package attest

import (
	"context"

	"golang.org/x/sync/errgroup"

	"github.com/twinforge/twinforge/attest/verify"
)

// SignBuild signs a build's provenance statement and its image manifest,
// concurrently (each keyless signature waits on the services), and returns
// both bundles, or an error and none.
func SignBuild(ctx context.Context, s Signer, statement, manifest []byte) (verify.Bundles, error) {
	var out verify.Bundles
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		b, err := s.SignStatement(gctx, statement)
		out.Provenance = b
		return err
	})
	g.Go(func() error {
		b, err := s.SignArtifact(gctx, manifest)
		out.Image = b
		return err
	})
	if err := g.Wait(); err != nil {
		return verify.Bundles{}, err
	}
	return out, nil
}
