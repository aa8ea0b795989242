package distribute_test

import (
	"os/exec"
	"strings"
	"testing"
)

// distribute is imported by the CLI and may be by admission: it must not
// pull in BuildKit, containerd or the build packages. Of twinforge's
// internal packages it may use internal/errclass, which needs only the
// standard library.
func TestDependencies(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "github.com/twinforge/twinforge/distribute").CombinedOutput()
	if err != nil {
		t.Skipf("go list unavailable: %v\n%s", err, out)
	}
	for _, dep := range strings.Fields(string(out)) {
		if dep == "github.com/twinforge/twinforge/internal/errclass" {
			continue
		}
		for _, banned := range []string{"github.com/moby/buildkit", "github.com/containerd/", "github.com/twinforge/twinforge/builder", "github.com/twinforge/twinforge/isolation", "github.com/twinforge/twinforge/internal/"} {
			if strings.HasPrefix(dep, banned) {
				t.Errorf("distribute depends on %s", dep)
			}
		}
	}
}
