package evidence

import (
	"testing"

	"github.com/twinforge/twinforge/internal/depcheck"
)

// TestDependencies keeps the package free of BuildKit, containerd and
// twinforge's build packages: the admission webhook imports it.
func TestDependencies(t *testing.T) {
	depcheck.Forbid(t, "attest/evidence", append([]string{"github.com/twinforge/twinforge/attest"}, depcheck.BuildPackages...), depcheck.BuildModules)
}
