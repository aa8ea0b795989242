//go:build tools

// Package tools pins actionlint, the GitHub Actions workflow checker that
// `make lint-workflows` runs on .github/workflows/*.yml and on the example
// caller in examples/github.
package tools

import (
	_ "github.com/rhysd/actionlint/cmd/actionlint"
)
