package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/twinforge/twinforge/attest/github"
	"github.com/twinforge/twinforge/attest/verify"
	"github.com/twinforge/twinforge/hermetic"
	"github.com/twinforge/twinforge/internal/testenv"
)

func TestCheckGitHubSource(t *testing.T) {
	gh := &github.Context{ServerURL: "https://github.com", Repository: "org/app", SHA: "aaaa"}
	ok := hermetic.Source{Kind: "git", Commit: "aaaa", Repository: "https://github.com/org/app.git"}
	tests := []struct {
		name string
		edit func(*hermetic.Source)
		want string
	}{
		{"the run's commit", func(*hermetic.Source) {}, ""},
		{"ssh origin", func(s *hermetic.Source) { s.Repository = "git@github.com:org/app.git" }, ""},
		{"no origin", func(s *hermetic.Source) { s.Repository = "" }, ""},
		{"another commit", func(s *hermetic.Source) { s.Commit = "bbbb" }, "GITHUB_SHA"},
		{"another repository", func(s *hermetic.Source) { s.Repository = "https://github.com/evil/app" }, "not the run's repository"},
		{"dirty", func(s *hermetic.Source) { s.Dirty = true }, "uncommitted"},
		{"not git", func(s *hermetic.Source) { s.Kind = "tree" }, "inside the checked-out repository"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := ok
			tt.edit(&src)
			err := checkGitHubSource(src, gh)
			if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
		})
	}
}

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
