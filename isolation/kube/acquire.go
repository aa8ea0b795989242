package kube

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ErrNoWorker is returned when no worker could be lent: none free within
// the wait, or too few nodes with workers for what was asked.
var ErrNoWorker = errors.New("no build worker free")

// DefaultWait is how long Acquire waits for free workers by default.
const DefaultWait = 10 * time.Minute

// pollInterval is how often a waiting build looks at the pool again.
const pollInterval = time.Second

// Request asks for workers.
type Request struct {
	// Purpose says what they are for, to everyone who lists the pool
	// ("build of examples/hello").
	Purpose string
	// ExcludeNodes are nodes no worker lent may run on: the build's, when
	// the rebuild's worker is asked for separately. They are nodes of the
	// cluster whose API server is ExcludeCluster, and ignored for a pool of
	// another; empty means this pool's cluster.
	ExcludeNodes   []string
	ExcludeCluster string
	// ExcludeWorkers are workers not to lend: ones that just failed.
	ExcludeWorkers []string
	// Wait bounds the wait for free workers. The default is DefaultWait.
	Wait time.Duration
	// Progress, when set, is told the queue position while Acquire waits,
	// each time it changes.
	Progress func(QueueStatus)
}

// QueueStatus is where a waiting build stands.
type QueueStatus struct {
	// Position is 1 for the build served next.
	Position int `json:"position"`
	// Waiting is how many builds wait, this one included.
	Waiting int `json:"waiting"`
	// Ready and Busy count the pool's ready workers and those of them lent
	// out.
	Ready int `json:"ready"`
	Busy  int `json:"busy"`
}

func (s QueueStatus) String() string {
	return fmt.Sprintf("waiting for a worker: position %d of %d in the queue, %d of %d ready workers busy", s.Position, s.Waiting, s.Busy, s.Ready)
}

// Lent is a worker lent to this process until Release.
type Lent struct {
	// Cluster is the pool it belongs to.
	Cluster Cluster
	// Worker is its name, Pod its pod's, Node the node it runs on.
	Worker, Pod, Node string
	// Server is its cluster's API server.
	Server string
	hold   *hold
}

// Release gives the worker back. It is safe to call more than once.
func (l *Lent) Release() error { return l.hold.release() }

// Lost says why the worker is no longer this process's, nil while it is.
func (l *Lent) Lost() error { return l.hold.Lost() }

// Acquire lends n workers of pool c, each on a node of its own, waiting in
// the pool's queue for them. Builds are served in the order they started
// waiting: only the first in the queue takes workers, all it asked for at
// once, so that no two builds each hold half a pair. A pool that does not
// have workers on n nodes at all fails at once with ErrNoWorker, as does
// one where none is free within the wait. Cancelling ctx (Ctrl-C) leaves
// the queue and returns ctx's error.
func Acquire(ctx context.Context, c Cluster, n int, req Request) ([]*Lent, error) {
	if n < 1 {
		return nil, fmt.Errorf("acquiring workers: asked for %d", n)
	}
	cl, err := c.connect()
	if err != nil {
		return nil, err
	}
	return cl.acquire(ctx, n, req)
}

func (c *client) acquire(ctx context.Context, n int, req Request) (_ []*Lent, retErr error) {
	if req.ExcludeCluster != "" && req.ExcludeCluster != c.server {
		req.ExcludeNodes = nil
	}
	wait := req.Wait
	if wait <= 0 {
		wait = DefaultWait
	}
	wctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	holder := holderID()
	t, err := c.newTicket(wctx, holder, req.Purpose, n)
	if err != nil {
		return nil, err
	}
	defer t.leave()

	var last QueueStatus
	var st *poolState
	for {
		st, err = c.poolState(wctx)
		if err != nil {
			break
		}
		if err := st.feasible(n, req); err != nil {
			return nil, err
		}
		status := st.status(t)
		if status != last && req.Progress != nil {
			req.Progress(status)
		}
		last = status
		if status.Position == 1 {
			if picked := st.pick(n, req); picked != nil {
				lent, err := c.takeAll(wctx, picked, holder, req.Purpose)
				if err != nil {
					return nil, err
				}
				if lent != nil {
					return lent, nil
				}
				// Another process took one first: look again.
				continue
			}
		}
		select {
		case <-wctx.Done():
		case <-time.After(pollInterval):
			continue
		}
		break
	}
	switch {
	case ctx.Err() != nil:
		return nil, fmt.Errorf("waiting for a worker of %s: %w", c.cluster, ctx.Err())
	case wctx.Err() != nil:
		msg := ""
		if st != nil {
			msg = "; " + st.describe(t)
		}
		return nil, fmt.Errorf("%w: no %d worker(s) of %s on separate nodes free within %v%s", ErrNoWorker, n, c.cluster, wait, msg)
	}
	return nil, err
}

// takeAll takes the Leases of every picked worker, or none: if another
// holder got one first, those taken are given back and nil is returned.
func (c *client) takeAll(ctx context.Context, picked []worker, holder, purpose string) ([]*Lent, error) {
	var lent []*Lent
	for _, w := range picked {
		h, err := c.take(ctx, w.lease, holder, purpose)
		if err != nil || h == nil {
			for _, l := range lent {
				_ = l.Release()
			}
			return nil, err
		}
		lent = append(lent, &Lent{Cluster: c.cluster, Worker: w.name, Pod: w.pod.Name, Node: w.pod.Spec.NodeName, Server: c.server, hold: h})
	}
	return lent, nil
}

// worker is a worker of the pool as the API server shows it.
type worker struct {
	name  string
	pod   *corev1.Pod
	lease *coordinationv1.Lease
	ready bool
}

type poolState struct {
	workers []worker
	tickets []*coordinationv1.Lease
	now     time.Time
}

func (c *client) poolState(ctx context.Context) (*poolState, error) {
	ns, pool := c.cluster.Namespace, c.cluster.pool()
	pods, err := c.cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: LabelPool + "=" + pool + "," + LabelWorker})
	if err != nil {
		return nil, fmt.Errorf("listing the workers of %s: %w", c.cluster, err)
	}
	leases, err := c.cs.CoordinationV1().Leases(ns).List(ctx, metav1.ListOptions{LabelSelector: LabelPool + "=" + pool + "," + LabelWorker})
	if err != nil {
		return nil, fmt.Errorf("listing the leases of %s: %w", c.cluster, err)
	}
	queue, err := c.cs.CoordinationV1().Leases(ns).List(ctx, metav1.ListOptions{LabelSelector: LabelQueue + "=" + pool})
	if err != nil {
		return nil, fmt.Errorf("listing the queue of %s: %w", c.cluster, err)
	}
	st := &poolState{now: time.Now()}
	byWorker := map[string]*corev1.Pod{}
	for i := range pods.Items {
		p := &pods.Items[i]
		if p.DeletionTimestamp != nil {
			continue
		}
		byWorker[p.Labels[LabelWorker]] = p
	}
	for i := range leases.Items {
		l := &leases.Items[i]
		name := l.Labels[LabelWorker]
		w := worker{name: name, lease: l, pod: byWorker[name]}
		w.ready = w.pod != nil && podReady(w.pod)
		st.workers = append(st.workers, w)
	}
	sort.Slice(st.workers, func(i, j int) bool { return st.workers[i].name < st.workers[j].name })
	for i := range queue.Items {
		l := &queue.Items[i]
		if !leaseExpired(l, st.now) {
			st.tickets = append(st.tickets, l)
		}
	}
	sort.Slice(st.tickets, func(i, j int) bool {
		a, b := st.tickets[i], st.tickets[j]
		ta, tb := a.CreationTimestamp.Time, b.CreationTimestamp.Time
		if a.Spec.AcquireTime != nil {
			ta = a.Spec.AcquireTime.Time
		}
		if b.Spec.AcquireTime != nil {
			tb = b.Spec.AcquireTime.Time
		}
		if !ta.Equal(tb) {
			return ta.Before(tb)
		}
		return a.Name < b.Name
	})
	return st, nil
}

func podReady(p *corev1.Pod) bool {
	if p.Status.Phase != corev1.PodRunning || p.Spec.NodeName == "" {
		return false
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func (st *poolState) status(t *ticket) QueueStatus {
	s := QueueStatus{Waiting: len(st.tickets)}
	for i, l := range st.tickets {
		if l.Name == t.name {
			s.Position = i + 1
		}
	}
	if s.Position == 0 {
		// Not listed yet (or expired): last in line.
		s.Waiting++
		s.Position = s.Waiting
	}
	for _, w := range st.workers {
		if w.ready {
			s.Ready++
			if !leaseFree(w.lease, st.now) {
				s.Busy++
			}
		}
	}
	return s
}

// usable reports whether w may be lent for req at all, busy or not.
func usable(w worker, req Request) bool {
	return w.pod != nil && !slices.Contains(req.ExcludeWorkers, w.name) &&
		(w.pod.Spec.NodeName == "" || !slices.Contains(req.ExcludeNodes, w.pod.Spec.NodeName))
}

// feasible refuses a request the pool cannot serve however long it
// waits: fewer nodes with workers (running or placed) than asked for.
// Workers not placed yet count as possible nodes of their own, unless
// the scheduler found no node for them (anti-affinity on too few nodes).
func (st *poolState) feasible(n int, req Request) error {
	nodes := map[string]bool{}
	pending := 0
	for _, w := range st.workers {
		switch {
		case slices.Contains(req.ExcludeWorkers, w.name):
		case w.pod == nil || w.pod.Spec.NodeName == "" && !unschedulable(w.pod):
			pending++
		case !slices.Contains(req.ExcludeNodes, w.pod.Spec.NodeName):
			nodes[w.pod.Spec.NodeName] = true
		}
	}
	if len(nodes)+pending >= n {
		return nil
	}
	have := fmt.Sprintf("its usable workers run on %d node(s)", len(nodes))
	if len(req.ExcludeNodes) > 0 {
		have += fmt.Sprintf(" other than %s", strings.Join(req.ExcludeNodes, ", "))
	}
	return fmt.Errorf("%w: pool %s cannot lend %d worker(s) on separate nodes: %s; deploy workers on more nodes (twinforge workers deploy --replicas)", ErrNoWorker, st.pool(), n, have)
}

func (st *poolState) pool() string {
	if len(st.workers) > 0 && st.workers[0].lease != nil {
		return st.workers[0].lease.Labels[LabelPool]
	}
	return "?"
}

// pick chooses n free, ready workers on n different nodes, or nil.
func (st *poolState) pick(n int, req Request) []worker {
	var out []worker
	nodes := map[string]bool{}
	for _, w := range st.workers {
		if !w.ready || !usable(w, req) || !leaseFree(w.lease, st.now) || nodes[w.pod.Spec.NodeName] {
			continue
		}
		nodes[w.pod.Spec.NodeName] = true
		out = append(out, w)
		if len(out) == n {
			return out
		}
	}
	return nil
}

// describe says who holds what, for the error of a wait that timed out.
func (st *poolState) describe(t *ticket) string {
	s := st.status(t)
	var parts []string
	for _, w := range st.workers {
		switch {
		case w.pod == nil:
			parts = append(parts, w.name+": no pod")
		case !w.ready:
			parts = append(parts, fmt.Sprintf("%s: not ready (%s)", w.name, podNotReadyReason(w.pod)))
		case !leaseFree(w.lease, st.now):
			parts = append(parts, fmt.Sprintf("%s on %s: held by %s (%s)", w.name, w.pod.Spec.NodeName, holderOf(w.lease), w.lease.Annotations[AnnotationPurpose]))
		default:
			parts = append(parts, fmt.Sprintf("%s on %s: free", w.name, w.pod.Spec.NodeName))
		}
	}
	return fmt.Sprintf("position %d of %d in the queue; %s", s.Position, s.Waiting, strings.Join(parts, "; "))
}

func unschedulable(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse && c.Reason == corev1.PodReasonUnschedulable {
			return true
		}
	}
	return false
}

func podNotReadyReason(p *corev1.Pod) string {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodScheduled && c.Status != corev1.ConditionTrue && c.Message != "" {
			return c.Message
		}
	}
	for _, cs := range p.Status.ContainerStatuses {
		if w := cs.State.Waiting; w != nil && w.Reason != "" {
			return w.Reason
		}
	}
	return string(p.Status.Phase)
}
