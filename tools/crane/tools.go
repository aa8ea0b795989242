//go:build tools

// Package tools pins crane, the go-containerregistry CLI the distribute
// tests use as an independent reader of what twinforge pushed.
package tools

import (
	_ "github.com/google/go-containerregistry/cmd/crane"
)
