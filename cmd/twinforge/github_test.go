package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/twinforge/twinforge/attest/verify"
	"github.com/twinforge/twinforge/internal/testenv"
)

// In GitHub Actions the provenance names the run's repository, commit and
// invocation, and a checkout at another commit is refused before signing.
func TestGitHubActionsProvenance(t *testing.T) {
	testenv.NeedDaemon(t)
	c := newCLI(t)
	repo := t.TempDir()
	git := func(args ...string) string {
		cmd := exec.Command("git", append([]string{"-C", repo}, args...)...)
		cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@t", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@t",
			"GIT_AUTHOR_DATE=2026-01-01T00:00:00Z", "GIT_COMMITTER_DATE=2026-01-01T00:00:00Z")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	git("init", "-q", "-b", "main")
	git("remote", "add", "origin", "https://github.com/org/app.git")
	ctx := filepath.Join(repo, "app")
	os.MkdirAll(ctx, 0o755)
	write(t, filepath.Join(ctx, "Dockerfile"), readFile(t, "testdata/files-small/Dockerfile"))
	write(t, filepath.Join(ctx, "hello.txt"), "hello\n")
	git("add", ".")
	git("commit", "-q", "-m", "app")
	c.lock(ctx)
	git("add", ".")
	git("commit", "-q", "-m", "lock")
	head := git("rev-parse", "HEAD")

	keys := filepath.Join(testenv.RepoRoot(t), "attest", "testdata", "keys")
	env := map[string]string{
		"GITHUB_ACTIONS": "true", "GITHUB_REPOSITORY": "org/app", "GITHUB_SERVER_URL": "https://github.com",
		"GITHUB_REF": "refs/heads/main", "GITHUB_RUN_ID": "42", "GITHUB_RUN_ATTEMPT": "1", "COSIGN_PASSWORD": "twinforge-test",
	}
	for k, v := range env {
		t.Setenv(k, v)
	}
	build := func(sha string) result {
		t.Setenv("GITHUB_SHA", sha)
		return c.run("build", "--no-rebuild", "--progress", "quiet", "--sign", "key="+filepath.Join(keys, "cosign.key"),
			"--tsa-url", "", "--oci-layout", filepath.Join(t.TempDir(), "img"), ctx)
	}
	if r := build("0123456789012345678901234567890123456789"); r.code != exitRefused || !strings.Contains(r.stderr, "GITHUB_SHA") {
		t.Fatalf("a checkout at another commit: exit %d\n%s", r.code, r.stderr)
	}
	out := filepath.Join(t.TempDir(), "img")
	t.Setenv("GITHUB_SHA", head)
	c.must("build", "--no-rebuild", "--progress", "quiet", "--sign", "key="+filepath.Join(keys, "cosign.key"), "--tsa-url", "", "--oci-layout", out, ctx)
	bundles, err := verify.ReadBundles(out)
	if err != nil {
		t.Fatal(err)
	}
	info, err := verify.Describe(bundles.Provenance)
	if err != nil {
		t.Fatal(err)
	}
	statement := string(info.Payload)
	for _, want := range []string{head, "https://github.com/org/app", "actions/runs/42/attempts/1", `"run_id":"42"`} {
		if !strings.Contains(statement, want) {
			t.Errorf("provenance lacks %q:\n%s", want, statement)
		}
	}
}
