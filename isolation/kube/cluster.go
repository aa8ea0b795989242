package kube

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"regexp"
	"strings"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// DefaultPool is the name of a namespace's pool of workers when none is
// given.
const DefaultPool = "twinforge-workers"

// Cluster says which pool of workers to use and how to reach its cluster.
type Cluster struct {
	// Kubeconfig is the kubeconfig file. The default is what kubectl
	// reads: $KUBECONFIG, else ~/.kube/config.
	Kubeconfig string
	// Context is the kubeconfig context. The default is its current one.
	Context string
	// Namespace holds the pool. Required.
	Namespace string
	// Pool names the pool in the namespace. The default is DefaultPool.
	Pool string
}

// ParseWorkers reads a --workers value: k8s://NAMESPACE or
// k8s://NAMESPACE/POOL, in the kubeconfig's current context.
func ParseWorkers(s string) (Cluster, error) {
	rest, ok := strings.CutPrefix(s, "k8s://")
	if !ok {
		return Cluster{}, fmt.Errorf("workers %q: use k8s://NAMESPACE or k8s://NAMESPACE/POOL", s)
	}
	ns, pool, _ := strings.Cut(rest, "/")
	c := Cluster{Namespace: ns, Pool: pool}
	return c, c.validate()
}

// WithKubeconfig returns c reached through another kubeconfig: ref is a
// kubeconfig file, FILE:CONTEXT, or a context of the default kubeconfig
// (the --rebuilder-cluster flag).
func (c Cluster) WithKubeconfig(ref string) (Cluster, error) {
	if ref == "" {
		return c, errors.New("cluster: empty kubeconfig or context")
	}
	file, ctx := ref, ""
	if i := strings.LastIndex(ref, ":"); i > 0 {
		if _, err := os.Stat(ref); err != nil {
			file, ctx = ref[:i], ref[i+1:]
		}
	}
	if _, err := os.Stat(file); err != nil {
		// Not a file: a context of the default kubeconfig.
		if strings.ContainsRune(ref, os.PathSeparator) {
			return c, fmt.Errorf("cluster %q: %w", ref, err)
		}
		c.Kubeconfig, c.Context = "", ref
		return c, nil
	}
	c.Kubeconfig, c.Context = file, ctx
	return c, nil
}

func (c Cluster) validate() error {
	if c.Namespace == "" {
		return errors.New("workers: no namespace")
	}
	if err := validName(c.Namespace); err != nil {
		return fmt.Errorf("workers namespace: %w", err)
	}
	if c.Pool != "" {
		if err := validName(c.Pool); err != nil {
			return fmt.Errorf("workers pool: %w", err)
		}
	}
	return nil
}

func (c Cluster) pool() string {
	if c.Pool == "" {
		return DefaultPool
	}
	return c.Pool
}

// String names the pool as a --workers value would, with its context.
func (c Cluster) String() string {
	s := "k8s://" + c.Namespace
	if c.Pool != "" && c.Pool != DefaultPool {
		s += "/" + c.Pool
	}
	if c.Context != "" {
		s += " (context " + c.Context + ")"
	}
	return s
}

// dnsLabel is what a namespace or pool name may be (RFC 1123 label).
var dnsLabel = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$`)

func validName(s string) error {
	if !dnsLabel.MatchString(s) {
		return fmt.Errorf("%q: use lower-case letters, digits and '-', at most 63, starting and ending with a letter or digit", s)
	}
	return nil
}

// client is a connection to one cluster's API server.
type client struct {
	cs      kubernetes.Interface
	rest    *rest.Config
	cluster Cluster
	// server is the API server's URL, recorded as the workers' cluster.
	server string
}

// userAgent is what twinforge tells the API server it is.
const userAgent = "twinforge"

func (c Cluster) connect() (*client, error) {
	if err := c.validate(); err != nil {
		return nil, err
	}
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	if c.Kubeconfig != "" {
		rules.ExplicitPath = c.Kubeconfig
	}
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{CurrentContext: c.Context}).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("reaching the cluster of %s: %w", c, err)
	}
	cfg = rest.CopyConfig(cfg)
	cfg.UserAgent = userAgent
	cfg.QPS, cfg.Burst = 20, 40
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("reaching the cluster of %s: %w", c, err)
	}
	server := cfg.Host
	if u, err := url.Parse(cfg.Host); err == nil {
		server = u.Scheme + "://" + u.Host
	}
	return &client{cs: cs, rest: cfg, cluster: c, server: server}, nil
}
