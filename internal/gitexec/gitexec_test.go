package gitexec

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestRunAndChanged(t *testing.T) {
	if !Available() {
		t.Skip("no git")
	}
	ctx := context.Background()
	dir := t.TempDir()
	t.Setenv("GIT_AUTHOR_NAME", "t")
	t.Setenv("GIT_AUTHOR_EMAIL", "t@t")
	t.Setenv("GIT_COMMITTER_NAME", "t")
	t.Setenv("GIT_COMMITTER_EMAIL", "t@t")
	if _, err := Run(ctx, dir, "init", "-q"); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "a"), []byte("a"), 0o644)
	os.WriteFile(filepath.Join(dir, "b"), []byte("b"), 0o644)
	Run(ctx, dir, "add", "a")
	if _, err := Run(ctx, dir, "commit", "-q", "-m", "a"); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "a"), []byte("changed"), 0o644)
	Run(ctx, dir, "mv", "a", "c")
	got, err := Changed(ctx, dir, ".")
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(got)
	if !slices.Equal(got, []string{"b", "c"}) {
		t.Errorf("changed = %q, want b (untracked) and c (renamed)", got)
	}
	_, err = Run(ctx, dir, "rev-parse", "--verify", "--quiet", "nope")
	if ExitCode(err) != 1 {
		t.Errorf("exit code %d (%v), want 1", ExitCode(err), err)
	}
}

// git refuses the transports that run commands.
func TestProtocolsRestricted(t *testing.T) {
	if !Available() {
		t.Skip("no git")
	}
	marker := filepath.Join(t.TempDir(), "ran")
	_, err := Run(context.Background(), "", "ls-remote", "--", "ext::sh -c touch% "+marker, "HEAD")
	if err == nil || !strings.Contains(err.Error(), "transport 'ext' not allowed") {
		t.Errorf("ext:: transport: %v", err)
	}
	if _, serr := os.Stat(marker); serr == nil {
		t.Error("git ran the ext:: command")
	}
}
