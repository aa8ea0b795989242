//go:build tools

// Package tools pins the Kubernetes components twinforge's tests run:
// kube-apiserver and kubectl, the real API server the admission webhook is
// tested against, and kube-controller-manager, kube-scheduler and kubelet,
// the node its pods really run on (internal/kubetest). It is its own module
// so Kubernetes' dependencies never enter twinforge's go.mod.
package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubectl"
	_ "k8s.io/kubernetes/cmd/kubelet"
)
