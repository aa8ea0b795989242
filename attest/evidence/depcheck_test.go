package evidence

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// TestDependencies keeps the package free of BuildKit, containerd and
// twinforge's build packages: the admission webhook imports it.
func TestDependencies(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	forbiddenPrefixes := []string{"github.com/moby/buildkit", "github.com/containerd/"}
	forbidden := []string{
		"github.com/twinforge/twinforge/attest",
		"github.com/twinforge/twinforge/builder",
		"github.com/twinforge/twinforge/hermetic",
		"github.com/twinforge/twinforge/isolation",
		"github.com/twinforge/twinforge/rebuild",
	}
	for _, dep := range strings.Fields(string(out)) {
		if slices.Contains(forbidden, dep) || slices.ContainsFunc(forbiddenPrefixes, func(p string) bool { return strings.HasPrefix(dep, p) }) {
			t.Errorf("attest/evidence depends on %s", dep)
		}
	}
}
