package github

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDependencies keeps the package on the standard library and the one
// JWT decoder (internal/jwtclaims, on go-jose): the verifier and the
// admission webhook may import it, and they link go-jose through
// sigstore-go already.
func TestDependencies(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	allowed := map[string]bool{"github.com/twinforge/twinforge/attest/github": true, "github.com/twinforge/twinforge/internal/jwtclaims": true}
	for _, dep := range strings.Fields(string(out)) {
		if !allowed[dep] && !strings.HasPrefix(dep, "github.com/go-jose/go-jose/v4") {
			t.Errorf("attest/github depends on %s; keep it on the standard library and internal/jwtclaims", dep)
		}
	}
}
