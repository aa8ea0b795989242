package main

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/twinforge/twinforge/internal/sigstack"
	"github.com/twinforge/twinforge/internal/testenv"
)

// gitIn runs git in dir with a fixed identity and fails the test on error.
//
// Commits are dated in the past, so SOURCE_DATE_EPOCH (the commit time)
// precedes every file's modification time in any checkout. BuildKit's
// rewrite-timestamp only clamps times later than the epoch: a file older
// than the commit keeps its own mtime in the image, which a fresh clone
// cannot reproduce (reported to the builder's owner).
func gitIn(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", append([]string{"-C", dir}, args...)...)
	cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=twinforge test", "GIT_AUTHOR_EMAIL=test@twinforge.test",
		"GIT_COMMITTER_NAME=twinforge test", "GIT_COMMITTER_EMAIL=test@twinforge.test", "GIT_CONFIG_NOSYSTEM=1",
		"GIT_AUTHOR_DATE=2025-01-01T00:00:00Z", "GIT_COMMITTER_DATE=2025-01-01T00:00:00Z")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// commitContext makes dir a git repository with everything in it
// committed, whose origin is a bare copy (so that the provenance names a
// repository a rebuilder can clone), and returns the commit.
func commitContext(t *testing.T, dir string) string {
	t.Helper()
	gitIn(t, dir, "init", "--quiet", "-b", "main")
	gitIn(t, dir, "add", "-A")
	gitIn(t, dir, "commit", "--quiet", "-m", "the source")
	bare := filepath.Join(t.TempDir(), "origin.git")
	gitIn(t, dir, "clone", "--quiet", "--bare", dir, bare)
	gitIn(t, dir, "remote", "add", "origin", "file://"+bare)
	return gitIn(t, dir, "rev-parse", "HEAD")
}

// identityToken mints a token of the stack's issuer for subject.
func (e *signEnv) identityToken(t *testing.T, subject string) string {
	t.Helper()
	tok, err := e.stack.IDToken(context.Background(), sigstack.Claims{Subject: subject, Email: subject})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// verdictPolicy trusts the builder for the provenance and the rebuilders
// for verdicts, of which it requires count.
func (e *signEnv) verdictPolicy(t *testing.T, count int, rebuilders ...string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "policy.yaml")
	doc := "apiVersion: twinforge.dev/v2\nkind: Policy\nidentities:\n  - issuer: " + e.stack.OIDCIssuer() + "\n    subject: builder@twinforge.test\n" +
		"builderIDs:\n  - https://twinforge.dev/builders/local/v1\nmaxAge: 1h\n"
	if count > 0 {
		doc += "requireReproduced:\n  count: " + string(rune('0'+count)) + "\n  by:\n"
		for _, r := range rebuilders {
			doc += "    - issuer: " + e.stack.OIDCIssuer() + "\n      subject: " + r + "\n"
		}
	}
	write(t, p, doc)
	return p
}

// baseImageFlags maps the examples' base images to their layouts.
func baseImageFlags(t *testing.T) []string {
	var flags []string
	for _, b := range testenv.BaseImages(t) {
		flags = append(flags, "--image", b.Name+"="+"oci-layout:"+b.Layout)
	}
	return flags
}

// assertNoDaemon checks that nothing started a daemon under state.
func assertNoDaemon(t *testing.T, state string) {
	t.Helper()
	if _, err := os.Stat(filepath.Join(state, "daemons")); err == nil {
		t.Errorf("a daemon was started under %s", state)
	}
}

// assertStateClean checks that a rebuild left no daemon state, process or
// work directory behind under state.
func assertStateClean(t *testing.T, state string) {
	t.Helper()
	entries, _ := os.ReadDir(filepath.Join(state, "daemons"))
	if len(entries) != 0 {
		t.Errorf("daemon state left behind: %v", entries)
	}
	work, _ := filepath.Glob(filepath.Join(state, "rebuild-*"))
	if len(work) != 0 {
		t.Errorf("work directories left behind: %v", work)
	}
	(&cliRunner{t: t, state: state}).assertClean()
}

type rebuildJSON struct {
	Image, Digest, RebuiltDigest, Reproduction, RebuilderID string
	Reproducible                                            bool
	Source                                                  struct{ Kind, Commit, Tree, Repository, Dir string }
	Verdict                                                 *struct {
		Method, Identity string
		Files            []string
		Push             *struct {
			Digest    string
			Referrers []struct{ Digest, ArtifactType string }
		}
	}
	Diff *struct {
		Layers []struct{ Files []struct{ Path string } }
	}
}

// The auditor's path end to end: a signed build pushed to a registry is
// rebuilt by two independent rebuilders from its provenance alone, each in
// a fresh state directory, one from a local checkout and one from a fresh
// clone; their verdicts are pushed as referrers and counted by verify.
func TestRebuildFromRegistry(t *testing.T) {
	e := newSignEnv(t)
	c := newCLI(t)
	ctx := c.context("files-small")
	commit := commitContext(t, ctx)
	c.lock(ctx)
	repo := e.registry.Host + "/team/files"
	builtLayout := filepath.Join(t.TempDir(), "img")
	r := c.must(append(append([]string{"build", "--progress", "quiet", "--output", "json", "--oci-layout", builtLayout,
		"--sign", "keyless", "--identity-token", e.token, "--push", repo + ":1.0", "--insecure"}, e.flags...), ctx)...)
	var built struct{ Digest string }
	if err := json.Unmarshal([]byte(r.stdout), &built); err != nil {
		t.Fatalf("%v\n%s", err, r.stdout)
	}
	image := repo + "@" + built.Digest
	policy := e.verdictPolicy(t, 0)
	root := filepath.Join(e.stack.Dir(), "trusted_root.json")

	// Rebuilder A: from a local checkout, verdict to a file and pushed.
	stateA := t.TempDir()
	verdictA := filepath.Join(t.TempDir(), "verdict-a.sigstore.json")
	args := append(append([]string{"rebuild", "--policy", policy, "--source", ctx, "--state-dir", stateA,
		"--progress", "quiet", "--output", "json", "--oci-layout", filepath.Join(t.TempDir(), "rebuilt-a"),
		"--sign", "keyless", "--identity-token", e.identityToken(t, "rebuilder-a@twinforge.test"),
		"--rebuilder-id", "https://rebuilder-a.twinforge.test/v1", "--verdict", verdictA, "--push-verdict", "--insecure"},
		e.flags...), baseImageFlags(t)...)
	r = c.must(append(args, image)...)
	var got rebuildJSON
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil {
		t.Fatalf("%v\n%s", err, r.stdout)
	}
	if !got.Reproducible || got.Reproduction != "reproduced" || got.RebuiltDigest != built.Digest || got.Source.Commit != commit ||
		got.Verdict == nil || got.Verdict.Method != "keyless" || !strings.Contains(got.Verdict.Identity, "rebuilder-a@twinforge.test") ||
		got.Verdict.Push == nil || len(got.Verdict.Push.Referrers) != 1 || len(got.Verdict.Files) != 1 {
		t.Fatalf("rebuild A: %s", r.stdout)
	}
	if _, err := os.Stat(verdictA); err != nil {
		t.Fatalf("verdict file: %v", err)
	}
	assertStateClean(t, stateA)

	// verify counts the verdict from the registry's referrers.
	one := e.verdictPolicy(t, 1, "rebuilder-a@twinforge.test")
	v := c.must("verify", "--policy", one, "--trusted-root", root, "--insecure", image)
	assertContains(t, "verify", v.stdout, built.Digest, "rebuild verdicts", "rebuilder-a@twinforge.test", "https://rebuilder-a.twinforge.test/v1")
	// A tag is resolved to the digest first.
	v = c.must("verify", "--policy", one, "--trusted-root", root, "--insecure", repo+":1.0")
	assertContains(t, "verify by tag", v.stdout, "resolved from", repo+":1.0", built.Digest)

	two := e.verdictPolicy(t, 2, "rebuilder-a@twinforge.test", "rebuilder-b@twinforge.test")
	refusal := c.run("verify", "--policy", two, "--trusted-root", root, "--insecure", image)
	if refusal.code != exitRefused {
		t.Fatalf("verify with two verdicts required: exit %d\n%s%s", refusal.code, refusal.stdout, refusal.stderr)
	}
	assertContains(t, "refusal", refusal.stderr, "policy.requireReproduced", "1 of the 2")

	// Rebuilder B: a fresh clone of the recorded repository, by tag.
	stateB := t.TempDir()
	args = append(append([]string{"rebuild", "--policy", policy, "--state-dir", stateB,
		"--progress", "quiet", "--oci-layout", filepath.Join(t.TempDir(), "rebuilt-b"),
		"--sign", "keyless", "--identity-token", e.identityToken(t, "rebuilder-b@twinforge.test"),
		"--rebuilder-id", "https://rebuilder-b.twinforge.test/v1", "--push-verdict", "--insecure"},
		e.flags...), baseImageFlags(t)...)
	r = c.must(append(args, repo+":1.0")...)
	assertContains(t, "rebuild B", r.stdout, "reproduced", "cloned from file://", commit, "rebuilder-b@twinforge.test", "pushed")
	assertStateClean(t, stateB)
	v = c.must("verify", "--policy", two, "--trusted-root", root, "--insecure", "--output", "json", image)
	var verified struct {
		ReproducedBy []struct{ Subject string }
	}
	if err := json.Unmarshal([]byte(v.stdout), &verified); err != nil || len(verified.ReproducedBy) != 2 {
		t.Fatalf("verify with two verdicts: %v\n%s", err, v.stdout)
	}

	// The layout source reads verdicts from attestations/verdicts/.
	layout := filepath.Join(t.TempDir(), "layout")
	if out, err := exec.Command("cp", "-a", builtLayout, layout).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v\n%s", err, out)
	}
	if r := c.run("verify", "--policy", one, "--trusted-root", root, layout); r.code != exitRefused {
		t.Fatalf("verify a layout without verdicts: exit %d\n%s", r.code, r.stderr)
	}
	// Rebuilding a layout keeps the verdict beside it.
	args = append(append([]string{"rebuild", "--policy", policy, "--source", ctx, "--state-dir", t.TempDir(),
		"--progress", "quiet", "--oci-layout", filepath.Join(t.TempDir(), "rebuilt-layout"),
		"--sign", "keyless", "--identity-token", e.identityToken(t, "rebuilder-a@twinforge.test")}, e.flags...), baseImageFlags(t)...)
	r = c.must(append(args, layout)...)
	assertContains(t, "rebuild layout", r.stdout, "reproduced", filepath.Join(layout, "attestations", "verdicts"))
	v = c.must("verify", "--policy", one, "--trusted-root", root, layout)
	assertContains(t, "verify layout", v.stdout, "rebuilder-a@twinforge.test")
	// A verdict file from elsewhere counts as well.
	write(t, filepath.Join(layout, "attestations", "verdicts", "b.sigstore.json"), readFile(t, verdictA))
	c.must("verify", "--policy", one, "--trusted-root", root, layout)

	// A provenance file alone is enough; without --sign nothing is signed.
	args = append([]string{"rebuild", "--policy", policy, "--trusted-root", root, "--source", ctx, "--state-dir", t.TempDir(),
		"--progress", "quiet", "--oci-layout", filepath.Join(t.TempDir(), "rebuilt-file"),
		"--provenance", filepath.Join(builtLayout, "attestations", "provenance.sigstore.json")}, baseImageFlags(t)...)
	r = c.must(args...)
	assertContains(t, "rebuild --provenance", r.stdout, "reproduced", built.Digest, "not signed")

	t.Run("refusals", func(t *testing.T) {
		otherCommit := filepath.Join(t.TempDir(), "ahead")
		gitIn(t, ctx, "clone", "--quiet", ctx, otherCommit)
		write(t, filepath.Join(otherCommit, "extra.txt"), "more\n")
		gitIn(t, otherCommit, "add", "extra.txt")
		gitIn(t, otherCommit, "commit", "--quiet", "-m", "one more")
		ahead := gitIn(t, otherCommit, "rev-parse", "HEAD")

		dirty := filepath.Join(t.TempDir(), "dirty")
		gitIn(t, ctx, "clone", "--quiet", ctx, dirty)
		write(t, filepath.Join(dirty, "hello.txt"), "edited after the build\n")

		var golang, base string
		for _, b := range testenv.BaseImages(t) {
			if strings.Contains(b.Name, "golang") {
				golang = b.Layout
			} else {
				base = b.Name
			}
		}
		mallory := filepath.Join(t.TempDir(), "mallory.yaml")
		write(t, mallory, strings.Replace(readFile(t, policy), "builder@twinforge.test", "mallory@twinforge.test", 1))

		tests := []struct {
			name  string
			flags []string
			code  int
			want  []string
		}{
			{"provenance fails verification", []string{"--policy", mallory, "--source", ctx}, exitRefused, []string{"identity", "mallory@twinforge.test", "not rebuilt"}},
			{"source at another commit", []string{"--policy", policy, "--source", otherCommit}, exitRefused, []string{ahead, commit}},
			{"dirty source", []string{"--policy", policy, "--source", dirty}, exitRefused, []string{"not clean", "hello.txt", commit}},
			{"base image with another digest", []string{"--policy", policy, "--source", ctx, "--image", base + "=oci-layout:" + golang}, exitRefused, []string{base, golang, "does not hold"}},
			{"base image layout missing", []string{"--policy", policy, "--source", ctx, "--image", base + "=oci-layout:" + filepath.Join(t.TempDir(), "nothing")}, exitRefused, []string{base, "not an OCI layout"}},
			{"no policy", []string{"--source", ctx}, exitUsage, []string{"--policy"}},
			{"verdict without signing", []string{"--policy", policy, "--verdict", filepath.Join(t.TempDir(), "v.json")}, exitUsage, []string{"--sign"}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				state := t.TempDir()
				args := append([]string{"rebuild", "--progress", "quiet", "--state-dir", state, "--trusted-root", root, "--insecure"}, tt.flags...)
				if !contains(tt.flags, "--image") {
					args = append(args, baseImageFlags(t)...)
				}
				args = append(args, image)
				r := c.run(args...)
				if r.code != tt.code {
					t.Fatalf("exit %d, want %d\n%s%s", r.code, tt.code, r.stdout, r.stderr)
				}
				assertContains(t, "stderr", r.stderr, tt.want...)
				assertNoDaemon(t, state)
			})
		}
	})
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// A build that does not reproduce is caught by the rebuild, with what
// differs, and no verdict is signed or pushed.
func TestRebuildNotReproducible(t *testing.T) {
	e := newSignEnv(t)
	c := newCLI(t)
	ctx := c.context("clock")
	commitContext(t, ctx)
	c.lock(ctx)
	repo := e.registry.Host + "/team/clock"
	r := c.must(append(append([]string{"build", "--no-rebuild", "--progress", "quiet", "--output", "json", "--oci-layout", filepath.Join(t.TempDir(), "img"),
		"--sign", "keyless", "--identity-token", e.token, "--push", repo + ":1", "--insecure"}, e.flags...), ctx)...)
	var built struct{ Digest string }
	if err := json.Unmarshal([]byte(r.stdout), &built); err != nil {
		t.Fatalf("%v\n%s", err, r.stdout)
	}
	image := repo + "@" + built.Digest
	policy := e.verdictPolicy(t, 0)
	state := t.TempDir()
	verdict := filepath.Join(t.TempDir(), "verdict.json")
	args := append(append([]string{"rebuild", "--policy", policy, "--source", ctx, "--state-dir", state, "--progress", "quiet",
		"--oci-layout", filepath.Join(t.TempDir(), "rebuilt"), "--sign", "keyless", "--identity-token", e.identityToken(t, "rebuilder-a@twinforge.test"),
		"--verdict", verdict, "--push-verdict", "--insecure"}, e.flags...), baseImageFlags(t)...)
	r = c.run(append(args, image)...)
	if r.code != exitNotReproducible {
		t.Fatalf("exit %d, want 3\n%s%s", r.code, r.stdout, r.stderr)
	}
	assertContains(t, "stdout", r.stdout, "not reproducible", built.Digest)
	assertContains(t, "stderr", r.stderr, "built-at", "no verdict was signed")
	if _, err := os.Stat(verdict); err == nil {
		t.Error("a verdict was written for an image that did not reproduce")
	}
	assertStateClean(t, state)

	// JSON carries the diff too.
	r = c.run(append(append(args[:0:0], args...), "--output", "json", image)...)
	var got rebuildJSON
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil || r.code != exitNotReproducible || got.Reproducible || got.Diff == nil || got.Verdict != nil {
		t.Fatalf("json: exit %d, %v\n%s", r.code, err, r.stdout)
	}
	// Nothing was pushed: a policy that wants one verdict refuses.
	root := filepath.Join(e.stack.Dir(), "trusted_root.json")
	v := c.run("verify", "--policy", e.verdictPolicy(t, 1, "rebuilder-a@twinforge.test"), "--trusted-root", root, "--insecure", image)
	if v.code != exitRefused {
		t.Fatalf("verify: exit %d\n%s%s", v.code, v.stdout, v.stderr)
	}
	assertContains(t, "verify", v.stderr, "policy.requireReproduced", "no rebuild verdicts")
}

func TestRebuildHelp(t *testing.T) {
	c := newCLI(t)
	r := c.must("rebuild", "--help")
	assertContains(t, "rebuild --help", r.stdout, "Examples:", "twinforge rebuild", "--push-verdict", "--source", "--image", "--sign")
	for _, hidden := range []string{"--builder-id", "--push value", "--tlscert"} {
		if strings.Contains(r.stdout, hidden) {
			t.Errorf("rebuild --help offers %s, which does not apply", hidden)
		}
	}
}
