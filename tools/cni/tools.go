//go:build tools

// Package tools pins the CNI plugins that give the pods of the Kubernetes
// node twinforge's tests run (internal/kubetest) their network: bridge with
// host-local for an address on a bridge of the node's own (no gateway, no
// masquerading, no forwarding), loopback for lo. It is its own module so the
// plugins' dependencies never enter twinforge's go.mod.
package tools

import (
	_ "github.com/containernetworking/plugins/plugins/ipam/host-local"
	_ "github.com/containernetworking/plugins/plugins/main/bridge"
	_ "github.com/containernetworking/plugins/plugins/main/loopback"
)
