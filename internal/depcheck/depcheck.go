// Package depcheck lets a package's tests keep its dependencies in bounds:
// which packages it must never import, directly or not.
package depcheck

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// BuildModules are the module path prefixes of the build machinery the
// verifier side (attest, evidence, admission) never imports.
var BuildModules = []string{"github.com/moby/buildkit", "github.com/containerd/"}

// BuildPackages are twinforge's own build packages, which the verifier side
// never imports either.
var BuildPackages = []string{
	"github.com/twinforge/twinforge/builder",
	"github.com/twinforge/twinforge/hermetic",
	"github.com/twinforge/twinforge/isolation",
	"github.com/twinforge/twinforge/rebuild",
}

// Forbid fails t for every package the package in the current directory
// depends on that is one of exact or whose path starts with one of
// prefixes; name is how the errors call the package.
func Forbid(t *testing.T, name string, exact, prefixes []string) {
	t.Helper()
	out, err := exec.Command("go", "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, dep := range strings.Fields(string(out)) {
		if slices.Contains(exact, dep) || slices.ContainsFunc(prefixes, func(p string) bool { return strings.HasPrefix(dep, p) }) {
			t.Errorf("%s depends on %s", name, dep)
		}
	}
}
