package admission

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/pager"
	"k8s.io/client-go/transport"
)

// KubeConfig says how the re-verifier, and the node agent, reach the
// Kubernetes API server, through client-go. The re-verifier lists pods and
// creates, reads and patches Events, holds a Lease with leader election, and
// reads the pull secrets and service accounts of the pods it checks: the
// ClusterRole and Role Manifests makes with ManifestOptions.ReverifyInterval
// allow exactly that.
type KubeConfig struct {
	// URL is the API server, https://HOST[:PORT]. Required; plain HTTP is
	// refused.
	URL string
	// TokenFile holds the bearer token. It is read again for every request,
	// as projected service account tokens rotate. Required.
	TokenFile string
	// CAFile is the PEM file of the CA of the API server's certificate. The
	// default is the system's roots.
	CAFile string
}

// In-cluster service account files, as the kubelet mounts them.
const (
	serviceAccountDir = "/var/run/secrets/kubernetes.io/serviceaccount"
)

// InClusterKubeConfig is the KubeConfig of the pod the webhook runs in:
// the API server at KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT, the
// service account token and CA the kubelet mounts under
// /var/run/secrets/kubernetes.io/serviceaccount.
func InClusterKubeConfig() (KubeConfig, error) {
	return inClusterKubeConfig(os.Getenv, serviceAccountDir)
}

func inClusterKubeConfig(getenv func(string) string, dir string) (KubeConfig, error) {
	host, port := getenv("KUBERNETES_SERVICE_HOST"), getenv("KUBERNETES_SERVICE_PORT")
	if host == "" || port == "" {
		return KubeConfig{}, errors.New("in-cluster Kubernetes API: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are not set: not running in a pod")
	}
	k := KubeConfig{
		URL:       "https://" + net.JoinHostPort(host, port),
		TokenFile: filepath.Join(dir, "token"),
		CAFile:    filepath.Join(dir, "ca.crt"),
	}
	for _, f := range []string{k.TokenFile, k.CAFile} {
		if _, err := os.Stat(f); err != nil {
			return KubeConfig{}, fmt.Errorf("in-cluster Kubernetes API: the service account is not mounted (automountServiceAccountToken): %w", err)
		}
	}
	return k, nil
}

func (k KubeConfig) validate() error {
	u, err := url.Parse(k.URL)
	switch {
	case err != nil:
		return fmt.Errorf("Kubernetes API URL %q: %w", k.URL, err)
	case u.Scheme != "https" || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "":
		return fmt.Errorf("Kubernetes API URL %q: want https://HOST[:PORT]", k.URL)
	case k.TokenFile == "":
		return errors.New("Kubernetes API: a bearer token file is required")
	}
	return nil
}

// kubeAPI is what the re-verifier needs of the Kubernetes API server.
type kubeAPI interface {
	// listPods lists the pods of every namespace, or with a field selector
	// ("spec.nodeName=NODE") those it selects.
	listPods(ctx context.Context, fieldSelector string) ([]corev1.Pod, error)
	// recordEvent creates ev, or, when an Event of that name exists (an
	// earlier pass or another replica reported the same violation), counts
	// one more occurrence on it.
	recordEvent(ctx context.Context, ev *corev1.Event) error
}

// kubeClient is the kubeAPI over client-go.
type kubeClient struct {
	cs kubernetes.Interface
}

var _ kubeAPI = (*kubeClient)(nil)

// Bounds of the Kubernetes API client.
const (
	// kubePageSize is how many pods one list request asks for.
	kubePageSize = 500
	// kubeRequestTimeout bounds one request.
	kubeRequestTimeout = 30 * time.Second
	// kubeQPS and kubeBurst bound the request rate, as client-go's
	// defaults (5, 10) would slow a pass that records many Events.
	kubeQPS, kubeBurst = 20, 40
)

// restConfig is the client-go configuration of k. The token file is read
// again every minute, and at once after the API server refuses the token
// read before, as projected service account tokens rotate.
func (k KubeConfig) restConfig(userAgent string) (*rest.Config, error) {
	if err := k.validate(); err != nil {
		return nil, err
	}
	if k.CAFile != "" {
		if _, err := os.Stat(k.CAFile); err != nil {
			return nil, fmt.Errorf("reading the Kubernetes API CA: %w", err)
		}
	}
	if _, err := os.Stat(k.TokenFile); err != nil {
		return nil, fmt.Errorf("reading the Kubernetes API token: %w", err)
	}
	return &rest.Config{
		Host:            k.URL,
		WrapTransport:   transport.ResettableTokenSourceWrapTransport(transport.NewCachedFileTokenSource(k.TokenFile)),
		TLSClientConfig: rest.TLSClientConfig{CAFile: k.CAFile},
		UserAgent:       userAgent,
		// JSON, which every API server and proxy in front of one speaks.
		ContentConfig: rest.ContentConfig{ContentType: "application/json", AcceptContentTypes: "application/json"},
		Timeout:       kubeRequestTimeout,
		QPS:           kubeQPS,
		Burst:         kubeBurst,
		// The API server is reached directly, as in a pod.
		Proxy: func(*http.Request) (*url.URL, error) { return nil, nil },
	}, nil
}

// NewKubernetesClient is the client-go clientset of k, for the programs
// that share the admission package's way of reaching the API server (the
// node agent).
func NewKubernetesClient(k KubeConfig, userAgent string) (kubernetes.Interface, error) {
	cfg, err := k.restConfig(userAgent)
	if err != nil {
		return nil, err
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("Kubernetes API client: %w", err)
	}
	return cs, nil
}

// RecordEvent creates ev through cs or, when an Event of that name exists
// (an earlier pass, another replica), counts one more occurrence on it, as
// client-go's event recorder does.
func RecordEvent(ctx context.Context, cs kubernetes.Interface, ev *corev1.Event) error {
	return newKubeClient(cs).recordEvent(ctx, ev)
}

func newKubeClient(cs kubernetes.Interface) *kubeClient {
	return &kubeClient{cs: cs}
}

func (c *kubeClient) listPods(ctx context.Context, fieldSelector string) ([]corev1.Pod, error) {
	var pods []corev1.Pod
	p := pager.New(pager.SimplePageFunc(func(opts metav1.ListOptions) (runtime.Object, error) {
		return c.cs.CoreV1().Pods(metav1.NamespaceAll).List(ctx, opts)
	}))
	p.PageSize = kubePageSize
	err := p.EachListItem(ctx, metav1.ListOptions{FieldSelector: fieldSelector}, func(obj runtime.Object) error {
		pod, ok := obj.(*corev1.Pod)
		if !ok {
			return fmt.Errorf("Kubernetes API: listing pods answered a %T", obj)
		}
		pods = append(pods, *pod)
		return nil
	})
	if err != nil {
		return nil, kubeError("listing pods", err)
	}
	return pods, nil
}

func (c *kubeClient) recordEvent(ctx context.Context, ev *corev1.Event) error {
	events := c.cs.CoreV1().Events(ev.Namespace)
	_, err := events.Create(ctx, ev, metav1.CreateOptions{})
	if !apierrors.IsAlreadyExists(err) {
		if err != nil {
			return kubeError("creating Event "+ev.Namespace+"/"+ev.Name, err)
		}
		return nil
	}
	// The Event exists: count this occurrence on it, as client-go's event
	// recorder does.
	old, err := events.Get(ctx, ev.Name, metav1.GetOptions{})
	if err != nil {
		return kubeError("reading Event "+ev.Namespace+"/"+ev.Name, err)
	}
	patch, err := json.Marshal(map[string]any{
		"count":         max(old.Count, 1) + 1,
		"lastTimestamp": ev.LastTimestamp,
		"message":       ev.Message,
	})
	if err != nil {
		return err
	}
	if _, err := events.Patch(ctx, ev.Name, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		return kubeError("counting Event "+ev.Namespace+"/"+ev.Name, err)
	}
	return nil
}

// kubeError says what failed, with the HTTP status code of an API server's
// refusal ("Kubernetes API: listing pods: 403 pods is forbidden: ...").
// The error still unwraps to client-go's, for apierrors.IsNotFound and the
// like.
func kubeError(doing string, err error) error {
	if status, ok := err.(apierrors.APIStatus); ok || errors.As(err, &status) {
		return fmt.Errorf("Kubernetes API: %s: %d %w", doing, status.Status().Code, err)
	}
	return fmt.Errorf("Kubernetes API: %s: %w", doing, err)
}
