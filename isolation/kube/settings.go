package kube

import (
	"context"
	"errors"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/twinforge/twinforge/internal/errclass"
	"github.com/twinforge/twinforge/internal/keyvalue"
)

// ErrInvalidSettings is wrapped by every error of Cluster.Check and
// DeploySettings about the settings given: such errors name the flag of
// `twinforge workers` at fault and keep their message; to the CLI they
// are usage errors.
var ErrInvalidSettings = errors.New("invalid workers settings")

func settingErrorf(format string, args ...any) error {
	return errclass.Errorf(ErrInvalidSettings, format, args...)
}

// Check checks the pool c names, as the flags of `twinforge workers` give
// it, and returns it as ParseWorkers would read it, reached through c's
// kubeconfig and context. The namespace is required: no pool is deployed
// to, listed in or removed from a namespace the user did not name.
func (c Cluster) Check() (Cluster, error) {
	if c.Namespace == "" {
		return Cluster{}, settingErrorf("--namespace is required: the namespace the pool lives in")
	}
	k, err := ParseWorkers("k8s://" + c.Namespace + "/" + c.Pool)
	if err != nil {
		return Cluster{}, errclass.Mark(ErrInvalidSettings, err)
	}
	k.Kubeconfig, k.Context = c.Kubeconfig, c.Context
	return k, nil
}

// DeploySettings are `twinforge workers deploy`'s: the pool, what to
// deploy, and how.
type DeploySettings struct {
	// Cluster is the pool; see Cluster.Check.
	Cluster Cluster
	// Options describe the workers. Its NodeSelector and ImagePullPolicy
	// are NodeSelector's and PullPolicy's when those are given.
	Options Options
	// NodeSelector are KEY=VALUE labels a node must carry to run workers.
	// A KEY without "=" takes its value from the environment, as every
	// KEY=VALUE flag of twinforge does.
	NodeSelector []string
	// PullPolicy is the workers' image pull policy: Always, IfNotPresent
	// or Never, passed to Kubernetes as given.
	PullPolicy string
	// CertsDir keeps the pool's CA; the default is DefaultCertsDir.
	CertsDir string
	// DryRun changes nothing: Run returns what would be applied.
	DryRun bool
	// Wait, when positive, is how long Run waits for the workers to be
	// ready (DeployAndWait).
	Wait time.Duration
}

// Check checks the settings and returns them resolved: the cluster as
// Cluster.Check returns it, and Options with the node selector and pull
// policy given. Its errors wrap ErrInvalidSettings.
func (s DeploySettings) Check() (DeploySettings, error) {
	k, err := s.Cluster.Check()
	if err != nil {
		return DeploySettings{}, err
	}
	s.Cluster = k
	if len(s.NodeSelector) > 0 {
		if s.Options.NodeSelector, err = keyvalue.Parse("node-selector", s.NodeSelector); err != nil {
			return DeploySettings{}, errclass.Mark(ErrInvalidSettings, err)
		}
	}
	// Deploy checks this too, but only once it has reached the cluster;
	// a pool of one cannot rebuild anything, so say so before.
	if s.Options.Replicas < 2 {
		return DeploySettings{}, settingErrorf("--replicas %d: a pool needs at least 2 workers, a build and its rebuild on two nodes", s.Options.Replicas)
	}
	if s.PullPolicy != "" {
		s.Options.ImagePullPolicy = corev1.PullPolicy(s.PullPolicy)
	}
	return s, nil
}

// Run checks the settings (Check) and deploys the pool as DeployAndWait
// does, reporting progress while it waits.
func (s DeploySettings) Run(ctx context.Context, progress func(ready, want int)) (*Deployment, error) {
	s, err := s.Check()
	if err != nil {
		return nil, err
	}
	return DeployAndWait(ctx, s.Cluster, s.Options, s.CertsDir, s.DryRun, s.Wait, progress)
}
