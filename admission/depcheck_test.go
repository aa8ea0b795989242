package admission

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// TestDependencies keeps the webhook and the node agent free of BuildKit,
// containerd and twinforge's build packages: they run in the cluster with
// the verifier alone (attest/verify), not the build machinery; the node
// agent speaks to the runtime through the CRI API only.
func TestDependencies(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".", "./nodeagent").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	forbiddenPrefixes := []string{"github.com/moby/buildkit", "github.com/containerd/", "github.com/docker/docker/"}
	forbidden := []string{
		"github.com/twinforge/twinforge/attest",
		"github.com/twinforge/twinforge/builder",
		"github.com/twinforge/twinforge/hermetic",
		"github.com/twinforge/twinforge/isolation",
		"github.com/twinforge/twinforge/rebuild",
	}
	// The small helpers of internal/ that stand on the standard library
	// (and go-yaml, go-tuf); the rest of internal/ is test harness.
	allowedInternal := []string{
		"github.com/twinforge/twinforge/internal/errclass",
		"github.com/twinforge/twinforge/internal/fsatomic",
		"github.com/twinforge/twinforge/internal/strictyaml",
		"github.com/twinforge/twinforge/internal/textout",
		"github.com/twinforge/twinforge/internal/tuffetch",
	}
	deps := strings.Fields(string(out))
	if !slices.Contains(deps, "github.com/twinforge/twinforge/attest/verify") {
		t.Fatal("admission no longer uses attest/verify: go list output looks wrong")
	}
	for _, dep := range deps {
		if slices.Contains(forbidden, dep) || slices.ContainsFunc(forbiddenPrefixes, func(p string) bool { return strings.HasPrefix(dep, p) }) ||
			strings.HasPrefix(dep, "github.com/twinforge/twinforge/internal/") && !slices.Contains(allowedInternal, dep) {
			t.Errorf("admission depends on %s", dep)
		}
	}
}
