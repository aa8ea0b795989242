package main

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/twinforge/twinforge/internal/testenv"
)

// TestLibrary runs the example against real buildkitd daemons: a build,
// its rebuild, key signing and verification with no CLI involved.
func TestLibrary(t *testing.T) {
	testenv.NeedDaemon(t)
	root := testenv.RepoRoot(t)
	keys := filepath.Join(root, "attest", "testdata", "keys")
	t.Setenv("COSIGN_PASSWORD", "twinforge-test")
	err := run(context.Background(), filepath.Join(root, "examples", "files"), filepath.Join(t.TempDir(), "img"),
		filepath.Join(keys, "cosign.key"), filepath.Join(keys, "cosign.pub"), filepath.Join(root, "bin", "buildkitd"), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
}
