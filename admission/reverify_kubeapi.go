package admission

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// KubeConfig says how the re-verifier reaches the Kubernetes API server.
// The re-verifier lists pods (GET /api/v1/pods) and creates, reads and
// patches Events (/api/v1/namespaces/NS/events): the ClusterRole Manifests
// makes with ManifestOptions.ReverifyInterval allows exactly that.
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
	// listPods lists the pods of every namespace.
	listPods(ctx context.Context) ([]corev1.Pod, error)
	// recordEvent creates ev, or, when an Event of that name exists (an
	// earlier pass or another replica reported the same violation), counts
	// one more occurrence on it.
	recordEvent(ctx context.Context, ev *corev1.Event) error
}

// kubeClient is the kubeAPI over plain HTTPS and JSON.
type kubeClient struct {
	base      string // URL without a trailing slash
	tokenFile string
	http      *http.Client
}

var _ kubeAPI = (*kubeClient)(nil)

// Bounds of the Kubernetes API client.
const (
	// kubePageSize is how many pods one list request asks for.
	kubePageSize = 500
	// kubeMaxBody bounds one response (a page of pods).
	kubeMaxBody = 64 << 20
	// kubeRequestTimeout bounds one request.
	kubeRequestTimeout = 30 * time.Second
)

func newKubeClient(k KubeConfig) (*kubeClient, error) {
	if err := k.validate(); err != nil {
		return nil, err
	}
	tlsConfig := &tls.Config{MinVersion: tls.VersionTLS12}
	if k.CAFile != "" {
		pem, err := os.ReadFile(k.CAFile)
		if err != nil {
			return nil, fmt.Errorf("reading the Kubernetes API CA: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("Kubernetes API CA %s: no PEM certificate", k.CAFile)
		}
		tlsConfig.RootCAs = pool
	}
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.TLSClientConfig = tlsConfig
	t.Proxy = nil // the API server is reached directly, as client-go does in a pod
	return &kubeClient{
		base:      strings.TrimSuffix(k.URL, "/"),
		tokenFile: k.TokenFile,
		http:      &http.Client{Transport: t, Timeout: kubeRequestTimeout},
	}, nil
}

// kubeError is a failed Kubernetes API request, with the Status the API
// server answered when it sent one.
type kubeError struct {
	method, path string
	code         int
	status       metav1.Status
}

func (e *kubeError) Error() string {
	msg := e.status.Message
	if msg == "" {
		msg = http.StatusText(e.code)
	}
	return fmt.Sprintf("Kubernetes API %s %s: %d %s", e.method, e.path, e.code, msg)
}

func isKubeConflict(err error) bool {
	var ke *kubeError
	return errors.As(err, &ke) && ke.code == http.StatusConflict
}

// do sends a request and decodes a 2xx answer into out (when not nil).
func (c *kubeClient) do(ctx context.Context, method, path, contentType string, body, out any) error {
	token, err := os.ReadFile(c.tokenFile)
	if err != nil {
		return fmt.Errorf("reading the Kubernetes API token: %w", err)
	}
	var rd io.Reader
	if body != nil {
		data, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("encoding %s %s: %w", method, path, err)
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return fmt.Errorf("Kubernetes API %s %s: %w", method, path, err)
	}
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(token)))
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "twinforge-admission")
	if body != nil {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("Kubernetes API %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, kubeMaxBody+1))
	if err != nil {
		return fmt.Errorf("Kubernetes API %s %s: reading the answer: %w", method, path, err)
	}
	if len(data) > kubeMaxBody {
		return fmt.Errorf("Kubernetes API %s %s: answer larger than %d bytes", method, path, kubeMaxBody)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		ke := &kubeError{method: method, path: path, code: resp.StatusCode}
		_ = json.Unmarshal(data, &ke.status) // the API server answers a Status; anything else has none
		ke.status.Message = truncate(ke.status.Message, 512)
		return ke
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("Kubernetes API %s %s: decoding the answer: %w", method, path, err)
		}
	}
	return nil
}

func (c *kubeClient) listPods(ctx context.Context) ([]corev1.Pod, error) {
	var pods []corev1.Pod
	cont := ""
	for page := 0; ; page++ {
		q := url.Values{"limit": {fmt.Sprint(kubePageSize)}}
		if cont != "" {
			q.Set("continue", cont)
		}
		var list corev1.PodList
		if err := c.do(ctx, http.MethodGet, "/api/v1/pods?"+q.Encode(), "", nil, &list); err != nil {
			return nil, err
		}
		if list.Kind != "" && list.Kind != "PodList" {
			return nil, fmt.Errorf("Kubernetes API GET /api/v1/pods: answered a %s, not a PodList", list.Kind)
		}
		pods = append(pods, list.Items...)
		if cont = list.Continue; cont == "" {
			return pods, nil
		}
		if page > 10000 {
			return nil, errors.New("Kubernetes API GET /api/v1/pods: more than 10000 pages")
		}
	}
}

func (c *kubeClient) recordEvent(ctx context.Context, ev *corev1.Event) error {
	base := "/api/v1/namespaces/" + url.PathEscape(ev.Namespace) + "/events"
	err := c.do(ctx, http.MethodPost, base, "application/json", ev, nil)
	if !isKubeConflict(err) {
		return err
	}
	// The Event exists: count this occurrence on it, as client-go's event
	// recorder does.
	path := base + "/" + url.PathEscape(ev.Name)
	var old corev1.Event
	if err := c.do(ctx, http.MethodGet, path, "", nil, &old); err != nil {
		return err
	}
	patch := map[string]any{
		"count":         max(old.Count, 1) + 1,
		"lastTimestamp": ev.LastTimestamp,
		"message":       ev.Message,
	}
	return c.do(ctx, http.MethodPatch, path, "application/merge-patch+json", patch, nil)
}
