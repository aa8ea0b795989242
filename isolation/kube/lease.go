package kube

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// How long Leases last. A holder renews well within the duration; one
// that stopped renewing (killed, cut off) loses its worker or its place in
// the queue once the duration has passed since its last renewal.
const (
	leaseDuration  = 30 * time.Second
	leaseRenew     = 10 * time.Second
	ticketDuration = 20 * time.Second
	ticketRenew    = 5 * time.Second
	// releaseTimeout bounds giving a Lease back after the build, also when
	// the build's own context was cancelled (Ctrl-C).
	releaseTimeout = 10 * time.Second
)

// holderID names this process as a Lease holder: host, pid and a random
// part, so that two runs on one host are told apart.
func holderID() string {
	host, _ := os.Hostname()
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return fmt.Sprintf("%s/%d/%s", host, os.Getpid(), hex.EncodeToString(b))
}

// leaseFree reports whether l is held by nobody, or by a holder that
// stopped renewing it.
func leaseFree(l *coordinationv1.Lease, now time.Time) bool {
	if l.Spec.HolderIdentity == nil || *l.Spec.HolderIdentity == "" {
		return true
	}
	return leaseExpired(l, now)
}

func leaseExpired(l *coordinationv1.Lease, now time.Time) bool {
	d := leaseDuration
	if l.Spec.LeaseDurationSeconds != nil {
		d = time.Duration(*l.Spec.LeaseDurationSeconds) * time.Second
	}
	last := l.CreationTimestamp.Time
	if l.Spec.RenewTime != nil {
		last = l.Spec.RenewTime.Time
	} else if l.Spec.AcquireTime != nil {
		last = l.Spec.AcquireTime.Time
	}
	return now.After(last.Add(d))
}

func holderOf(l *coordinationv1.Lease) string {
	if l.Spec.HolderIdentity == nil {
		return ""
	}
	return *l.Spec.HolderIdentity
}

// hold is a Lease this process holds and renews until release.
type hold struct {
	c      *client
	name   string
	holder string

	stop     chan struct{}
	done     chan struct{}
	mu       sync.Mutex
	lost     error
	released bool
}

// take makes holder the holder of the Lease name if it is free, with an
// update conditional on the version read: of two takers, one wins.
func (c *client) take(ctx context.Context, l *coordinationv1.Lease, holder, purpose string) (*hold, error) {
	now := metav1.NewMicroTime(time.Now())
	secs := int32(leaseDuration / time.Second)
	l = l.DeepCopy()
	l.Spec.HolderIdentity = &holder
	l.Spec.LeaseDurationSeconds = &secs
	l.Spec.AcquireTime = &now
	l.Spec.RenewTime = &now
	if l.Annotations == nil {
		l.Annotations = map[string]string{}
	}
	l.Annotations[AnnotationPurpose] = purpose
	if _, err := c.cs.CoordinationV1().Leases(c.cluster.Namespace).Update(ctx, l, metav1.UpdateOptions{FieldManager: fieldManager}); err != nil {
		if apierrors.IsConflict(err) || apierrors.IsNotFound(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("taking worker %s: %w", l.Name, err)
	}
	h := &hold{c: c, name: l.Name, holder: holder, stop: make(chan struct{}), done: make(chan struct{})}
	go h.renew(leaseRenew)
	return h, nil
}

// renew keeps the Lease fresh until release; a Lease found taken by
// another holder (this process was cut off for longer than its duration)
// is recorded as lost.
func (h *hold) renew(every time.Duration) {
	defer close(h.done)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-h.stop:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), every)
		err := h.update(ctx, func(l *coordinationv1.Lease) error {
			if holderOf(l) != h.holder {
				return fmt.Errorf("worker %s was taken over by %s: this build stopped renewing its lease for longer than %v", h.name, holderOf(l), leaseDuration)
			}
			now := metav1.NewMicroTime(time.Now())
			l.Spec.RenewTime = &now
			return nil
		})
		cancel()
		var taken *takenError
		if errors.As(err, &taken) {
			h.mu.Lock()
			h.lost = taken.err
			h.mu.Unlock()
			return
		}
	}
}

type takenError struct{ err error }

func (e *takenError) Error() string { return e.err.Error() }

// update reads the Lease, lets change modify it, and writes it back,
// again if another writer came between.
func (h *hold) update(ctx context.Context, change func(*coordinationv1.Lease) error) error {
	leases := h.c.cs.CoordinationV1().Leases(h.c.cluster.Namespace)
	for {
		l, err := leases.Get(ctx, h.name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if err := change(l); err != nil {
			return &takenError{err}
		}
		if _, err := leases.Update(ctx, l, metav1.UpdateOptions{FieldManager: fieldManager}); err != nil {
			if apierrors.IsConflict(err) {
				continue
			}
			return err
		}
		return nil
	}
}

// Lost says why the Lease is no longer this process's, nil while it is.
func (h *hold) Lost() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.lost
}

// release stops renewing and gives the Lease back, unless another holder
// has it by now. It uses a context of its own: it runs after a cancelled
// build too.
func (h *hold) release() error {
	h.mu.Lock()
	if h.released {
		h.mu.Unlock()
		return nil
	}
	h.released = true
	h.mu.Unlock()
	close(h.stop)
	<-h.done
	ctx, cancel := context.WithTimeout(context.Background(), releaseTimeout)
	defer cancel()
	err := h.update(ctx, func(l *coordinationv1.Lease) error {
		if holderOf(l) != h.holder {
			return errors.New("taken over")
		}
		l.Spec.HolderIdentity = nil
		l.Spec.AcquireTime = nil
		l.Spec.RenewTime = nil
		delete(l.Annotations, AnnotationPurpose)
		return nil
	})
	var taken *takenError
	if err != nil && !errors.As(err, &taken) && !apierrors.IsNotFound(err) {
		return fmt.Errorf("releasing worker %s: %w (it is free again in %v)", h.name, err, leaseDuration)
	}
	return nil
}

// ticket is this process's place in a pool's queue: a Lease of its own,
// labelled as the pool's, created when it starts waiting and renewed
// until it is served or gives up.
type ticket struct {
	c     *client
	name  string
	since time.Time
	stop  chan struct{}
	done  chan struct{}
	once  sync.Once
}

func (c *client) newTicket(ctx context.Context, holder, purpose string, wants int) (*ticket, error) {
	b := make([]byte, 5)
	_, _ = rand.Read(b)
	name := c.cluster.pool() + "-wait-" + hex.EncodeToString(b)
	now := metav1.NewMicroTime(time.Now())
	secs := int32(ticketDuration / time.Second)
	l := &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{
			Name:        name,
			Labels:      map[string]string{LabelQueue: c.cluster.pool(), LabelManagedBy: "twinforge"},
			Annotations: map[string]string{AnnotationPurpose: purpose, "twinforge.dev/wants": fmt.Sprint(wants)},
		},
		Spec: coordinationv1.LeaseSpec{HolderIdentity: &holder, LeaseDurationSeconds: &secs, AcquireTime: &now, RenewTime: &now},
	}
	if _, err := c.cs.CoordinationV1().Leases(c.cluster.Namespace).Create(ctx, l, metav1.CreateOptions{FieldManager: fieldManager}); err != nil {
		return nil, fmt.Errorf("joining the queue of %s: %w", c.cluster, err)
	}
	t := &ticket{c: c, name: name, since: now.Time, stop: make(chan struct{}), done: make(chan struct{})}
	go t.renew()
	return t, nil
}

func (t *ticket) renew() {
	defer close(t.done)
	tick := time.NewTicker(ticketRenew)
	defer tick.Stop()
	leases := t.c.cs.CoordinationV1().Leases(t.c.cluster.Namespace)
	for {
		select {
		case <-t.stop:
			return
		case <-tick.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), ticketRenew)
		if l, err := leases.Get(ctx, t.name, metav1.GetOptions{}); err == nil {
			now := metav1.NewMicroTime(time.Now())
			l.Spec.RenewTime = &now
			_, _ = leases.Update(ctx, l, metav1.UpdateOptions{FieldManager: fieldManager})
		}
		cancel()
	}
}

// leave removes the ticket, with a context of its own.
func (t *ticket) leave() {
	t.once.Do(func() {
		close(t.stop)
		<-t.done
		ctx, cancel := context.WithTimeout(context.Background(), releaseTimeout)
		defer cancel()
		_ = t.c.cs.CoordinationV1().Leases(t.c.cluster.Namespace).Delete(ctx, t.name, metav1.DeleteOptions{})
	})
}
