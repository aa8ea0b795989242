package attest

import (
	"testing"

	"github.com/twinforge/twinforge/internal/depcheck"
)

// TestDependencies keeps attest on its own types: it records builds, it
// does not make them, so it imports neither BuildKit nor twinforge's build
// packages (the orchestrator hands it a Lock and a Builder).
func TestDependencies(t *testing.T) {
	depcheck.Forbid(t, "attest", depcheck.BuildPackages, depcheck.BuildModules)
}
