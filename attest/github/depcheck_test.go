package github

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDependencies keeps the package on the standard library alone: the
// verifier and the admission webhook may import it, and the CLI links it.
func TestDependencies(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, dep := range strings.Fields(string(out)) {
		if dep != "github.com/twinforge/twinforge/attest/github" {
			t.Errorf("attest/github depends on %s; keep it on the standard library", dep)
		}
	}
}
