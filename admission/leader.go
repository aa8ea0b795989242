package admission

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
)

// LeaderElection says which Lease the replicas of the webhook elect the one
// re-verifier with (WithReverifyLeaderElection).
type LeaderElection struct {
	// Namespace and Name name the Lease (coordination.k8s.io/v1). Required.
	Namespace, Name string
	// Identity is this replica's name in the Lease. The default is the
	// host name (the pod's name in a pod).
	Identity string
	// LeaseDuration is how long the other replicas wait before they take
	// over from a leader that stopped renewing; RenewDeadline how long the
	// leader tries to renew before it gives up; RetryPeriod how often each
	// replica tries. The defaults are client-go's usual 15s, 10s and 2s.
	LeaseDuration, RenewDeadline, RetryPeriod time.Duration
}

func (l *LeaderElection) validate() error {
	for what, v := range map[string]string{"namespace": l.Namespace, "name": l.Name} {
		if errs := validation.IsDNS1123Subdomain(v); len(errs) > 0 {
			return fmt.Errorf("Lease %s %q: %v", what, v, errs)
		}
	}
	if l.Identity == "" {
		h, err := os.Hostname()
		if err != nil || h == "" {
			return errors.New("no identity given and no host name to use")
		}
		l.Identity = h
	}
	if l.LeaseDuration == 0 {
		l.LeaseDuration = 15 * time.Second
	}
	if l.RenewDeadline == 0 {
		l.RenewDeadline = 10 * time.Second
	}
	if l.RetryPeriod == 0 {
		l.RetryPeriod = 2 * time.Second
	}
	if !(l.LeaseDuration > l.RenewDeadline && l.RenewDeadline > l.RetryPeriod && l.RetryPeriod > 0) {
		return fmt.Errorf("want lease duration (%s) > renew deadline (%s) > retry period (%s) > 0", l.LeaseDuration, l.RenewDeadline, l.RetryPeriod)
	}
	return nil
}

// WithReverifyLeaderElection runs the background re-verification passes of
// WithReverification on one replica at a time: the holder of the Lease l
// names, elected with client-go's leader election. Every replica still
// answers reviews and Webhook.Reverify; when the leader stops (Close, a
// crash, a lost API server) another takes over within l.LeaseDuration. The
// ServiceAccount needs to get, create and update that Lease (Manifests adds
// the Role). By default every replica re-verifies, and the Events of their
// passes are counted on one Event per violation.
func WithReverifyLeaderElection(l LeaderElection) Option {
	return func(o *options) error {
		if err := l.validate(); err != nil {
			return fmt.Errorf("WithReverifyLeaderElection: %w", err)
		}
		o.leaderElection, o.reverifySet = &l, true
		return nil
	}
}

// lead runs the background passes while this replica holds the Lease, and
// stands for election again when it loses it, until stop is closed.
func (r *reverifier) lead(stop <-chan struct{}, l LeaderElection) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	lock := &resourcelock.LeaseLock{
		LeaseMeta:  metav1.ObjectMeta{Namespace: l.Namespace, Name: l.Name},
		Client:     r.cs.CoordinationV1(),
		LockConfig: resourcelock.ResourceLockConfig{Identity: l.Identity},
	}
	log := r.log.With("lease", l.Namespace+"/"+l.Name, "identity", l.Identity)
	for ctx.Err() == nil {
		le, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
			Lock:            lock,
			Name:            "twinforge-reverify",
			LeaseDuration:   l.LeaseDuration,
			RenewDeadline:   l.RenewDeadline,
			RetryPeriod:     l.RetryPeriod,
			ReleaseOnCancel: true,
			Callbacks: leaderelection.LeaderCallbacks{
				OnStartedLeading: func(lctx context.Context) {
					r.w.metrics.reverifyLeader.Set(1)
					log.Info("re-verification leader: running the passes")
					r.loop(lctx.Done())
				},
				OnStoppedLeading: func() {
					r.w.metrics.reverifyLeader.Set(0)
					log.Info("no longer the re-verification leader")
				},
				OnNewLeader: func(id string) {
					if id != l.Identity {
						log.Info("re-verification leader elected", "leader", id)
					}
				},
			},
		})
		if err != nil {
			log.Error("leader election cannot run: no background re-verification", "error", err.Error())
			return
		}
		le.Run(ctx)
	}
}
