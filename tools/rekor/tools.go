//go:build tools

// Package tools pins Rekor v2 (rekor-tiles, POSIX storage) that twinforge's
// Makefile builds into bin/. It is its own module so the server's
// dependencies never enter twinforge's go.mod.
package tools

import (
	_ "github.com/sigstore/rekor-tiles/v2/cmd/rekor-server/posix"
)
