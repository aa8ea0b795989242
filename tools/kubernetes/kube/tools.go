//go:build tools

// Package tools pins kube-apiserver and kubectl, the real Kubernetes API
// server twinforge's admission webhook is tested against. It is its own
// module so Kubernetes' dependencies never enter twinforge's go.mod.
package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
