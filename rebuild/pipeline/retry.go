package pipeline

import (
	"context"
	"fmt"
	"strings"

	"github.com/twinforge/twinforge/builder"
	"github.com/twinforge/twinforge/rebuild"
)

// maxWorkerAttempts bounds how often a verified build on a pool's workers
// is started: again once after a worker died under it.
const maxWorkerAttempts = 2

type attemptFunc func(context.Context, Request, builder.Request) (*builder.Result, *rebuild.Result, *vouching, error)

func plainAttempt(ctx context.Context, r Request, req builder.Request) (*builder.Result, *rebuild.Result, *vouching, error) {
	b, p, err := buildAndRebuild(ctx, r, req)
	return b, p, nil, err
}

// onWorkers runs attempt and, when a worker of a pool died under it, runs
// it again on other workers of the pool: the build and its rebuild start
// over, so that their digests are again of one attempt. Addresses given
// by hand are not retried. The progress display sees every attempt.
func onWorkers(ctx context.Context, r Request, req builder.Request, attempt attemptFunc) (*builder.Result, *rebuild.Result, *vouching, []string, error) {
	w := r.Daemons.Workers
	if w == nil || (w.Pool == nil && w.RebuildPool == nil) {
		b, p, v, err := attempt(ctx, r, req)
		return b, p, v, nil, err
	}
	progress := req.Progress
	defer func() {
		if progress != nil {
			close(progress)
		}
	}()
	var failures []string
	for i := 1; ; i++ {
		sub, wait := rebuild.Forward(progress, "")
		req.Progress = nil
		if sub != nil {
			req.Progress = sub
		}
		b, p, v, err := attempt(ctx, r, req)
		wait()
		if err == nil {
			return b, p, v, failures, nil
		}
		if i >= maxWorkerAttempts || ctx.Err() != nil || !w.Retryable(err) {
			if len(failures) > 0 {
				err = fmt.Errorf("%w (earlier attempts: %s)", err, strings.Join(failures, "; "))
			}
			return b, p, v, failures, err
		}
		failures = append(failures, err.Error())
	}
}
