package admission

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	kauth "github.com/google/go-containerregistry/pkg/authn/kubernetes"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes"
)

// WithImagePullSecrets has the webhook and the re-verifier reach registries
// with a pod's pull credentials, as the kubelet does: the Secrets the pod
// spec names in imagePullSecrets and those of its service account, read
// through the API server k says how to reach (InClusterKubeConfig in a
// pod), before the WithKeychain credentials. The webhook then needs to get
// Secrets and ServiceAccounts in every namespace it decides: the
// ClusterRole Manifests makes with ManifestOptions.ImagePullSecrets allows
// that. A pull secret that cannot be read is logged and the image is
// decided without it (the registry then refuses a private image: denied).
// By default only WithKeychain's credentials are used.
func WithImagePullSecrets(k KubeConfig) Option {
	return func(o *options) error {
		if err := k.validate(); err != nil {
			return fmt.Errorf("WithImagePullSecrets: %w", err)
		}
		o.pullSecrets = &k
		return nil
	}
}

// pullSecrets reads pods' registry credentials.
type pullSecrets struct {
	cs kubernetes.Interface
}

// keychain is the pull keychain of a pod spec in namespace, nil when the
// spec names no pull secret and its service account has none to give.
func (p *pullSecrets) keychain(ctx context.Context, namespace string, spec *corev1.PodSpec) (authn.Keychain, error) {
	if p == nil || spec == nil {
		return nil, nil
	}
	sa := spec.ServiceAccountName
	if sa == "" {
		sa = "default"
	}
	var names []string
	for _, s := range spec.ImagePullSecrets {
		if s.Name != "" {
			names = append(names, s.Name)
		}
	}
	kc, err := kauth.New(ctx, p.cs, kauth.Options{Namespace: namespace, ServiceAccountName: sa, ImagePullSecrets: names})
	if err != nil {
		return nil, fmt.Errorf("reading the pull secrets of namespace %s (service account %s, secrets %s): %w",
			namespace, sa, strings.Join(names, ","), err)
	}
	return kc, nil
}

// pullKey names the credentials a pod spec pulls with, so that pods that
// name the same ones share one keychain.
func pullKey(namespace string, spec *corev1.PodSpec) string {
	if spec == nil {
		return namespace
	}
	names := make([]string, 0, len(spec.ImagePullSecrets))
	for _, s := range spec.ImagePullSecrets {
		names = append(names, s.Name)
	}
	slices.Sort(names)
	return namespace + "\x00" + spec.ServiceAccountName + "\x00" + strings.Join(names, "\x00")
}
