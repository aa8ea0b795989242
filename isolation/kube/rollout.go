package kube

import (
	"context"
	"time"
)

// DeployAndWait deploys the pool as Deploy does and then, unless dryRun
// or wait is 0, waits up to wait for its workers to be ready (WaitReady),
// reporting progress: so that a deploy in CI returns only once builds can
// use the pool.
func DeployAndWait(ctx context.Context, c Cluster, o Options, certsDir string, dryRun bool, wait time.Duration, progress func(ready, want int)) (*Deployment, error) {
	dep, err := Deploy(ctx, c, o, certsDir, dryRun)
	if err != nil || wait <= 0 || dryRun {
		return dep, err
	}
	if err := WaitReady(ctx, c, o.Replicas, wait, progress); err != nil {
		return nil, err
	}
	return dep, nil
}
