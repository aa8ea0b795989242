//go:build tools

// Package tools pins the CNCF distribution registry that twinforge's
// distribute tests push to and replicate between. It is its own module so
// the server's dependencies never enter twinforge's go.mod.
package tools

import (
	_ "github.com/distribution/distribution/v3/cmd/registry"
)
