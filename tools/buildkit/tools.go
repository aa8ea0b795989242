//go:build tools

// Package tools pins the BuildKit daemon and client that twinforge's
// Makefile builds into bin/. It is its own module so the server's
// dependencies never enter twinforge's go.mod.
package tools

import (
	_ "github.com/moby/buildkit/cmd/buildctl"
	_ "github.com/moby/buildkit/cmd/buildkitd"
)
