//go:build tools

// Package tools pins Fulcio (sigstore's certificate authority) that twinforge's
// Makefile builds into bin/. It is its own module so the server's
// dependencies never enter twinforge's go.mod.
package tools

import (
	_ "github.com/sigstore/fulcio"
)
