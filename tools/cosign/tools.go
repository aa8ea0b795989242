//go:build tools

// Package tools pins cosign, used for interop checks, that twinforge's
// Makefile builds into bin/. It is its own module so the server's
// dependencies never enter twinforge's go.mod.
package tools

import (
	_ "github.com/sigstore/cosign/v2/cmd/cosign"
)
