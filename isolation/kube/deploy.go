package kube

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"

	"github.com/twinforge/twinforge/isolation/workercert"
)

// DefaultCertsDir is where Deploy keeps a pool's CA when no directory is
// given: $XDG_CONFIG_HOME/twinforge/workers/NAMESPACE/POOL, else under
// ~/.config.
func DefaultCertsDir(c Cluster) string {
	base := os.Getenv("XDG_CONFIG_HOME")
	if base == "" {
		if home, err := os.UserHomeDir(); err == nil {
			base = filepath.Join(home, ".config")
		} else {
			base = os.TempDir()
		}
	}
	return filepath.Join(base, "twinforge", "workers", c.Namespace, c.pool())
}

// Deployment is what Deploy applied.
type Deployment struct {
	// Objects are the objects applied (Secrets included).
	Objects []runtime.Object
	// Workers are the pool's workers, Removed those Deploy took away.
	Workers, Removed []string
	// CertsDir holds the pool's CA; NewCA says Deploy made it.
	CertsDir string
	NewCA    bool
}

// Deploy applies the pool's manifests (Manifests) to its cluster with
// server-side apply, so that running it again changes only what changed.
// The CA is read from certsDir, or made there on the first deploy (its key
// never goes to the cluster); a worker whose Secret holds a certificate of
// this CA for its identity keeps it, others get a new one. Workers beyond
// Replicas are removed, unless one is lent to a build: then Deploy
// refuses, naming it. With dryRun nothing is written, to the cluster or
// to certsDir, and the objects are returned. Deploy does not wait for the
// pods: WaitReady does.
func Deploy(ctx context.Context, c Cluster, o Options, certsDir string, dryRun bool) (*Deployment, error) {
	cl, err := c.connect()
	if err != nil {
		return nil, err
	}
	if err := o.defaults(); err != nil {
		return nil, err
	}
	if certsDir == "" {
		certsDir = DefaultCertsDir(c)
	}
	dep := &Deployment{CertsDir: certsDir}
	ca, err := workercert.LoadCA(certsDir)
	switch {
	case err == nil:
		if ca.Pool != c.pool() {
			return nil, fmt.Errorf("the CA in %s is pool %q's, not %q's: give the pool's own --certs-dir", certsDir, ca.Pool, c.pool())
		}
	case errors.Is(err, os.ErrNotExist):
		if ca, err = workercert.NewCA(c.pool()); err != nil {
			return nil, err
		}
		dep.NewCA = true
	default:
		return nil, err
	}
	certs := &Certificates{CA: ca, Workers: map[string]*workercert.Issued{}}
	for i := range o.Replicas {
		name := WorkerName(c.pool(), i)
		dep.Workers = append(dep.Workers, name)
		issued, err := cl.existingCert(ctx, ca, name+"-tls", workercert.Worker, name)
		if err != nil {
			return nil, err
		}
		if issued == nil {
			if issued, err = ca.Worker(name, workerHost(c.Namespace, name)); err != nil {
				return nil, err
			}
		}
		certs.Workers[name] = issued
	}
	if certs.Client, err = cl.existingCert(ctx, ca, clientSecretName(c.pool()), workercert.Client, "twinforge"); err != nil {
		return nil, err
	}
	if certs.Client == nil {
		if certs.Client, err = ca.Client("twinforge"); err != nil {
			return nil, err
		}
	}
	if dep.Objects, err = Manifests(c, o, certs); err != nil {
		return nil, err
	}
	extra, err := cl.extraWorkers(ctx, dep.Workers)
	if err != nil {
		return nil, err
	}
	dep.Removed = extra
	if dryRun {
		return dep, nil
	}
	if dep.NewCA {
		if err := ca.Write(certsDir); err != nil {
			return nil, err
		}
	}
	for _, obj := range dep.Objects {
		if err := cl.apply(ctx, obj); err != nil {
			return nil, err
		}
	}
	for _, name := range extra {
		if err := cl.removeWorker(ctx, name); err != nil {
			return nil, err
		}
	}
	return dep, nil
}

// existingCert returns the certificate in Secret name if it is one of ca
// for the identity of name, nil if there is none to keep.
func (c *client) existingCert(ctx context.Context, ca *workercert.CA, secret string, kind workercert.Kind, name string) (*workercert.Issued, error) {
	s, err := c.cs.CoreV1().Secrets(c.cluster.Namespace).Get(ctx, secret, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading Secret %s of %s: %w", secret, c.cluster, err)
	}
	cert, err := workercert.ParseCertificate(s.Data[secretCert])
	if err != nil || len(s.Data[secretKey]) == 0 {
		return nil, nil
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca.Cert)
	// Keep it while it has a month to live.
	if _, err := cert.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}, CurrentTime: time.Now().Add(30 * 24 * time.Hour)}); err != nil {
		return nil, nil
	}
	id := workercert.Identity(kind, c.cluster.pool(), name)
	if workercert.IdentityOf(cert) != id {
		return nil, nil
	}
	return &workercert.Issued{Name: name, Identity: id, CertPEM: s.Data[secretCert], KeyPEM: s.Data[secretKey]}, nil
}

// extraWorkers are the pool's workers that are not in keep.
func (c *client) extraWorkers(ctx context.Context, keep []string) ([]string, error) {
	sets, err := c.cs.AppsV1().StatefulSets(c.cluster.Namespace).List(ctx, metav1.ListOptions{LabelSelector: LabelPool + "=" + c.cluster.pool() + "," + LabelWorker})
	if err != nil {
		return nil, fmt.Errorf("listing the workers of %s: %w", c.cluster, err)
	}
	var out []string
	for _, s := range sets.Items {
		if name := s.Labels[LabelWorker]; !slices.Contains(keep, name) {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out, nil
}

// removeWorker deletes a worker's StatefulSet, Secret and Lease, unless
// it is lent to a build.
func (c *client) removeWorker(ctx context.Context, name string) error {
	ns := c.cluster.Namespace
	if l, err := c.cs.CoordinationV1().Leases(ns).Get(ctx, name, metav1.GetOptions{}); err == nil && !leaseFree(l, time.Now()) {
		return fmt.Errorf("worker %s is lent to %s (%s): not removed; deploy again once it is free", name, holderOf(l), l.Annotations[AnnotationPurpose])
	}
	del := metav1.DeleteOptions{}
	for _, err := range []error{
		c.cs.AppsV1().StatefulSets(ns).Delete(ctx, name, del),
		c.cs.CoreV1().Secrets(ns).Delete(ctx, name+"-tls", del),
		c.cs.CoordinationV1().Leases(ns).Delete(ctx, name, del),
	} {
		if err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("removing worker %s: %w", name, err)
		}
	}
	return nil
}

// apply writes obj with server-side apply. A worker's Lease is only
// created: its holder is written by the builds that use it.
func (c *client) apply(ctx context.Context, obj runtime.Object) error {
	ns := c.cluster.Namespace
	data, err := json.Marshal(obj)
	if err != nil {
		return err
	}
	force := true
	opts := metav1.PatchOptions{FieldManager: fieldManager, Force: &force}
	var name, kind string
	switch o := obj.(type) {
	case *corev1.ConfigMap:
		name, kind = o.Name, "ConfigMap"
		_, err = c.cs.CoreV1().ConfigMaps(ns).Patch(ctx, o.Name, types.ApplyPatchType, data, opts)
	case *corev1.Secret:
		name, kind = o.Name, "Secret"
		_, err = c.cs.CoreV1().Secrets(ns).Patch(ctx, o.Name, types.ApplyPatchType, data, opts)
	case *rbacv1.Role:
		name, kind = o.Name, "Role"
		_, err = c.cs.RbacV1().Roles(ns).Patch(ctx, o.Name, types.ApplyPatchType, data, opts)
	case *networkingv1.NetworkPolicy:
		name, kind = o.Name, "NetworkPolicy"
		_, err = c.cs.NetworkingV1().NetworkPolicies(ns).Patch(ctx, o.Name, types.ApplyPatchType, data, opts)
	case *appsv1.StatefulSet:
		name, kind = o.Name, "StatefulSet"
		_, err = c.cs.AppsV1().StatefulSets(ns).Patch(ctx, o.Name, types.ApplyPatchType, data, opts)
	case *coordinationv1.Lease:
		name, kind = o.Name, "Lease"
		_, err = c.cs.CoordinationV1().Leases(ns).Create(ctx, o, metav1.CreateOptions{FieldManager: fieldManager})
		if apierrors.IsAlreadyExists(err) {
			err = nil
		}
	default:
		return fmt.Errorf("applying %T: not an object of a worker pool", obj)
	}
	if err != nil {
		return fmt.Errorf("applying %s %s/%s: %w", kind, ns, name, err)
	}
	return nil
}

// WorkerStatus is one worker as List shows it.
type WorkerStatus struct {
	Name string `json:"name"`
	// Pod, Node and Ready describe its pod; Reason why it is not ready.
	Pod    string `json:"pod,omitempty"`
	Node   string `json:"node,omitempty"`
	Ready  bool   `json:"ready"`
	Reason string `json:"reason,omitempty"`
	// Holder is who it is lent to, Purpose what for; empty when free.
	Holder  string `json:"holder,omitempty"`
	Purpose string `json:"purpose,omitempty"`
}

// PoolStatus is a pool's workers and queue.
type PoolStatus struct {
	Workers []WorkerStatus `json:"workers"`
	// Waiting are the purposes of the builds waiting, first in line first.
	Waiting []string `json:"waiting"`
}

// List shows the pool's workers, who holds them and who waits.
func List(ctx context.Context, c Cluster) (*PoolStatus, error) {
	cl, err := c.connect()
	if err != nil {
		return nil, err
	}
	st, err := cl.poolState(ctx)
	if err != nil {
		return nil, err
	}
	out := &PoolStatus{Workers: []WorkerStatus{}, Waiting: []string{}}
	for _, w := range st.workers {
		ws := WorkerStatus{Name: w.name, Ready: w.ready}
		if w.pod != nil {
			ws.Pod, ws.Node = w.pod.Name, w.pod.Spec.NodeName
			if !w.ready {
				ws.Reason = podNotReadyReason(w.pod)
			}
		} else {
			ws.Reason = "no pod"
		}
		if !leaseFree(w.lease, st.now) {
			ws.Holder, ws.Purpose = holderOf(w.lease), w.lease.Annotations[AnnotationPurpose]
		}
		out.Workers = append(out.Workers, ws)
	}
	for _, t := range st.tickets {
		out.Waiting = append(out.Waiting, t.Annotations[AnnotationPurpose])
	}
	return out, nil
}

// WaitReady waits until n workers of the pool are ready, reporting the
// status each time it changes; on timeout the error says what the
// workers that are not ready wait for (an anti-affinity that finds no
// node, an image that does not pull).
func WaitReady(ctx context.Context, c Cluster, n int, timeout time.Duration, progress func(ready, want int)) error {
	cl, err := c.connect()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	last := -1
	for {
		st, err := cl.poolState(ctx)
		ready := 0
		var why []string
		if err == nil {
			for _, w := range st.workers {
				switch {
				case w.ready:
					ready++
				case w.pod == nil:
					why = append(why, w.name+": no pod yet")
				default:
					why = append(why, w.name+": "+podNotReadyReason(w.pod))
				}
			}
			if ready != last && progress != nil {
				progress(ready, n)
			}
			last = ready
			if ready >= n {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			if err != nil {
				return err
			}
			return fmt.Errorf("%d of %d workers of %s ready after %v: %s", ready, n, c, timeout, strings.Join(why, "; "))
		case <-time.After(pollInterval):
		}
	}
}

// Remove deletes every object of the pool, unless a worker is lent.
func Remove(ctx context.Context, c Cluster) error {
	cl, err := c.connect()
	if err != nil {
		return err
	}
	workers, err := cl.extraWorkers(ctx, nil)
	if err != nil {
		return err
	}
	for _, name := range workers {
		if err := cl.removeWorker(ctx, name); err != nil {
			return err
		}
	}
	ns, pool := c.Namespace, c.pool()
	del := metav1.DeleteOptions{}
	for _, err := range []error{
		cl.cs.CoreV1().ConfigMaps(ns).Delete(ctx, pool+"-config", del),
		cl.cs.CoreV1().Secrets(ns).Delete(ctx, clientSecretName(pool), del),
		cl.cs.RbacV1().Roles(ns).Delete(ctx, pool+"-client", del),
		cl.cs.NetworkingV1().NetworkPolicies(ns).Delete(ctx, pool+"-isolate", del),
	} {
		if err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("removing pool %s: %w", c, err)
		}
	}
	return nil
}
