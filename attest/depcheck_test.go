package attest

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// TestDependencies keeps attest on its own types: it records builds, it
// does not make them, so it imports neither BuildKit nor twinforge's build
// packages (the orchestrator hands it a Lock and a Builder).
func TestDependencies(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	forbiddenPrefixes := []string{"github.com/moby/buildkit", "github.com/containerd/"}
	forbidden := []string{
		"github.com/twinforge/twinforge/builder",
		"github.com/twinforge/twinforge/hermetic",
		"github.com/twinforge/twinforge/isolation",
		"github.com/twinforge/twinforge/rebuild",
	}
	for _, dep := range strings.Fields(string(out)) {
		if slices.Contains(forbidden, dep) || slices.ContainsFunc(forbiddenPrefixes, func(p string) bool { return strings.HasPrefix(dep, p) }) {
			t.Errorf("attest depends on %s", dep)
		}
	}
}
