package kube

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	bkclient "github.com/moby/buildkit/client"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/portforward"
	"k8s.io/client-go/transport/spdy"

	"github.com/twinforge/twinforge/isolation"
	"github.com/twinforge/twinforge/isolation/workercert"
)

// portForwardTimeout bounds setting up a port forward to a worker.
const portForwardTimeout = 30 * time.Second

// DialOptions say how to reach a worker.
type DialOptions struct {
	// Name tells the daemon apart in results ("build", "rebuild").
	Name string
	// TLS, when set, is the client side of mutual TLS (its CACert, Cert
	// and Key); ServerName and Identity are set by Dial. The default reads
	// the pool's client Secret, which the pool's client Role may get.
	TLS *isolation.TLS
	// OnFailure, when set, is told the name of a lent worker whose Check
	// failed: it died, or its Lease was lost.
	OnFailure func(worker string)
}

// Dial reaches worker of pool c through the API server: a port forward
// to its pod, over which it checks, with mutual TLS, that the daemon
// presents the certificate of that worker (the identity
// workercert.Identity(Worker, pool, worker)) and all isolation.Remote
// checks. The daemon's Info names the cluster, the node the API server
// says the pod runs on, the pod and the identity. Closing it stops the
// port forward; it does not release a Lent worker.
func Dial(ctx context.Context, c Cluster, workerName string, o DialOptions) (isolation.Daemon, error) {
	cl, err := c.connect()
	if err != nil {
		return nil, err
	}
	return cl.dial(ctx, workerName, o, nil)
}

func (c *client) dial(ctx context.Context, workerName string, o DialOptions, onClose func() error) (_ isolation.Daemon, retErr error) {
	var cleanups []func() error
	cleanup := func() error {
		var errs []error
		for i := len(cleanups) - 1; i >= 0; i-- {
			errs = append(errs, cleanups[i]())
		}
		cleanups = nil
		return errors.Join(errs...)
	}
	if onClose != nil {
		cleanups = append(cleanups, onClose)
	}
	defer func() {
		if retErr != nil {
			_ = cleanup()
		}
	}()
	ns, pool := c.cluster.Namespace, c.cluster.pool()
	pod, err := c.workerPod(ctx, workerName)
	if err != nil {
		return nil, err
	}
	tls, remove, err := c.clientTLS(ctx, o.TLS)
	if err != nil {
		return nil, err
	}
	cleanups = append(cleanups, remove)
	tls.ServerName = workerHost(ns, workerName)
	tls.Identity = workercert.Identity(workercert.Worker, pool, workerName)

	port, stop, err := c.portForward(ctx, pod)
	if err != nil {
		return nil, err
	}
	cleanups = append(cleanups, stop)
	name := o.Name
	if name == "" {
		name = workerName
	}
	var once sync.Once
	var closeErr error
	d, err := isolation.Remote(ctx, name, "tcp://127.0.0.1:"+strconv.Itoa(port), &tls,
		isolation.WithPlacement(isolation.Placement{Cluster: c.server, Node: pod.Spec.NodeName, Pod: ns + "/" + pod.Name}),
		isolation.WithOnClose(func() error {
			once.Do(func() { closeErr = cleanup() })
			return closeErr
		}))
	if err != nil {
		return nil, fmt.Errorf("worker %s of %s: %w", workerName, c.cluster, err)
	}
	return d, nil
}

// workerPod is the running pod of a worker of the pool.
func (c *client) workerPod(ctx context.Context, workerName string) (*corev1.Pod, error) {
	pods, err := c.cs.CoreV1().Pods(c.cluster.Namespace).List(ctx, metav1.ListOptions{
		LabelSelector: LabelPool + "=" + c.cluster.pool() + "," + LabelWorker + "=" + workerName,
	})
	if err != nil {
		return nil, fmt.Errorf("finding the pod of worker %s of %s: %w", workerName, c.cluster, err)
	}
	for i := range pods.Items {
		if p := &pods.Items[i]; p.DeletionTimestamp == nil && podReady(p) {
			return p, nil
		}
	}
	return nil, fmt.Errorf("%w: worker %s of %s has no ready pod", isolation.ErrDaemonFailed, workerName, c.cluster)
}

// clientTLS is the client side of mutual TLS: the files given, or the
// pool's client Secret written to a private temporary directory that
// remove deletes.
func (c *client) clientTLS(ctx context.Context, given *isolation.TLS) (isolation.TLS, func() error, error) {
	if given != nil && given.Cert != "" {
		return *given, func() error { return nil }, nil
	}
	name := clientSecretName(c.cluster.pool())
	s, err := c.cs.CoreV1().Secrets(c.cluster.Namespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return isolation.TLS{}, nil, fmt.Errorf("reading the client certificate of %s (Secret %s; or give --tlscacert, --tlscert and --tlskey): %w", c.cluster, name, err)
	}
	dir, err := os.MkdirTemp("", "twinforge-worker-tls-")
	if err != nil {
		return isolation.TLS{}, nil, err
	}
	remove := func() error { return os.RemoveAll(dir) }
	t := isolation.TLS{CACert: filepath.Join(dir, "ca.pem"), Cert: filepath.Join(dir, "client.pem"), Key: filepath.Join(dir, "client-key.pem")}
	for file, key := range map[string]string{t.CACert: secretCA, t.Cert: secretCert, t.Key: secretKey} {
		if len(s.Data[key]) == 0 {
			_ = remove()
			return isolation.TLS{}, nil, fmt.Errorf("the client Secret %s of %s has no %s", name, c.cluster, key)
		}
		if err := os.WriteFile(file, s.Data[key], 0o600); err != nil {
			_ = remove()
			return isolation.TLS{}, nil, err
		}
	}
	return t, remove, nil
}

// portForward forwards a port of loopback to the worker port of pod
// through the API server; stop ends it.
func (c *client) portForward(ctx context.Context, pod *corev1.Pod) (int, func() error, error) {
	transport, upgrader, err := spdy.RoundTripperFor(c.rest)
	if err != nil {
		return 0, nil, fmt.Errorf("port forward to %s: %w", pod.Name, err)
	}
	u := c.cs.CoreV1().RESTClient().Post().Resource("pods").Namespace(pod.Namespace).Name(pod.Name).SubResource("portforward").URL()
	dialer := spdy.NewDialer(upgrader, &http.Client{Transport: transport}, http.MethodPost, u)
	stopCh := make(chan struct{})
	ready := make(chan struct{})
	pf, err := portforward.NewOnAddresses(dialer, []string{"127.0.0.1"}, []string{"0:" + strconv.Itoa(workerPort)}, stopCh, ready, io.Discard, io.Discard)
	if err != nil {
		return 0, nil, fmt.Errorf("port forward to %s: %w", pod.Name, err)
	}
	done := make(chan error, 1)
	go func() { done <- pf.ForwardPorts() }()
	var once sync.Once
	stop := func() error {
		once.Do(func() { close(stopCh) })
		return nil
	}
	timer := time.NewTimer(portForwardTimeout)
	defer timer.Stop()
	select {
	case <-ready:
	case err := <-done:
		return 0, nil, fmt.Errorf("%w: port forward to worker pod %s/%s: %v", isolation.ErrDaemonFailed, pod.Namespace, pod.Name, err)
	case <-ctx.Done():
		_ = stop()
		return 0, nil, fmt.Errorf("port forward to %s: %w", pod.Name, ctx.Err())
	case <-timer.C:
		_ = stop()
		return 0, nil, fmt.Errorf("%w: port forward to worker pod %s/%s: not ready within %v", isolation.ErrDaemonFailed, pod.Namespace, pod.Name, portForwardTimeout)
	}
	ports, err := pf.GetPorts()
	if err != nil || len(ports) == 0 {
		_ = stop()
		return 0, nil, fmt.Errorf("port forward to %s: no local port: %v", pod.Name, err)
	}
	return int(ports[0].Local), stop, nil
}

// AcquireDaemons lends n workers of pool c on n nodes (Acquire) and dials
// each (Dial). A worker that cannot be dialed (its pod died, its
// certificate is not its own) is given back and another is lent in its
// place, as long as the pool has one; the error then names every worker
// that failed. Closing a daemon releases its worker.
func AcquireDaemons(ctx context.Context, c Cluster, names []string, req Request, o DialOptions) ([]isolation.Daemon, error) {
	cl, err := c.connect()
	if err != nil {
		return nil, err
	}
	var failures []error
	for {
		lent, err := cl.acquire(ctx, len(names), req)
		if err != nil {
			if len(failures) > 0 {
				return nil, fmt.Errorf("%w (after workers failed: %w)", err, errors.Join(failures...))
			}
			return nil, err
		}
		daemons := make([]isolation.Daemon, 0, len(lent))
		var failed error
		for i, l := range lent {
			do := o
			do.Name = names[i]
			d, err := cl.dial(ctx, l.Worker, do, l.Release)
			if err != nil {
				failed = err
				req.ExcludeWorkers = append(req.ExcludeWorkers, l.Worker)
				for _, rest := range lent[i+1:] {
					_ = rest.Release()
				}
				break
			}
			daemons = append(daemons, &lentDaemon{Daemon: d, lent: l, onFailure: o.OnFailure})
		}
		if failed == nil {
			return daemons, nil
		}
		for _, d := range daemons {
			_ = d.Close()
		}
		if ctx.Err() != nil {
			return nil, failed
		}
		failures = append(failures, failed)
	}
}

// lentDaemon is a dialed worker whose Check also fails once its Lease was
// lost to another holder.
type lentDaemon struct {
	isolation.Daemon
	lent      *Lent
	onFailure func(string)
}

func (d *lentDaemon) Check(ctx context.Context) error {
	err := d.lent.Lost()
	if err != nil {
		err = fmt.Errorf("%w: %w", isolation.ErrDaemonFailed, err)
	} else {
		err = d.Daemon.Check(ctx)
	}
	if err != nil && d.onFailure != nil {
		d.onFailure(d.lent.Worker)
	}
	return err
}

func (d *lentDaemon) Client(ctx context.Context) (*bkclient.Client, error) {
	if err := d.lent.Lost(); err != nil {
		return nil, fmt.Errorf("%w: %w", isolation.ErrDaemonFailed, err)
	}
	return d.Daemon.Client(ctx)
}

// DialLent dials a worker Acquire lent (Dial); closing the daemon gives
// the worker back, and its Check fails once the Lease was lost.
func DialLent(ctx context.Context, l *Lent, o DialOptions) (isolation.Daemon, error) {
	cl, err := l.Cluster.connect()
	if err != nil {
		_ = l.Release()
		return nil, err
	}
	d, err := cl.dial(ctx, l.Worker, o, l.Release)
	if err != nil {
		return nil, err
	}
	return &lentDaemon{Daemon: d, lent: l, onFailure: o.OnFailure}, nil
}
