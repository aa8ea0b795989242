//go:build tools

// Package tools pins containerd, the container runtime of the Kubernetes
// node twinforge's tests run pods on (internal/kubetest), with its runc
// shim and the ctr client. It is its own module so the runtime's
// dependencies never enter twinforge's go.mod.
package tools

import (
	_ "github.com/containerd/containerd/v2/cmd/containerd"
	_ "github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2"
	_ "github.com/containerd/containerd/v2/cmd/ctr"
)
