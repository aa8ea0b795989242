//go:build tools

// Package tools pins etcd, the storage of the kube-apiserver twinforge's
// admission tests run. It is its own module, apart from the Kubernetes
// one, so neither forces its dependency versions on the other.
package tools

import (
	_ "go.etcd.io/etcd/server/v3"
)
