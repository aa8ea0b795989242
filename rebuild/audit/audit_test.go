package audit

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/random"
	intoto "github.com/in-toto/attestation/go/v1"
	"google.golang.org/protobuf/proto"

	"github.com/twinforge/twinforge/attest"
	"github.com/twinforge/twinforge/attest/verify"
	"github.com/twinforge/twinforge/hermetic"
)

const goldenDigest = "sha256:aa033156ccc23e9b4ffe67d5ebc472179e1a37e440edd9a8f6212951caa5db2e"

// golden is attest's provenance fixture as a JSON tree, to edit.
func golden(t *testing.T) map[string]any {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "..", "attest", "testdata", "provenance.golden.json"))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func statement(t *testing.T, m map[string]any) *intoto.Statement {
	t.Helper()
	data, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	st, err := verify.ParseStatement(data)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// The inputs read back from a provenance are the lock it was made from,
// but for what a provenance does not carry (the file listing and where
// the images were), and give the same source policy.
func TestFromProvenanceGolden(t *testing.T) {
	in, err := FromProvenance(statement(t, golden(t)), goldenDigest)
	if err != nil {
		t.Fatal(err)
	}
	want, err := hermetic.Load(filepath.Join("..", "..", "attest", "testdata", "twinforge.lock"))
	if err != nil {
		t.Fatal(err)
	}
	got := in.lock()
	want.Files = nil
	for i := range want.Images {
		want.Images[i].Location = got.Images[i].Location
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("inputs differ from the lock (-lock +provenance):\n%s", diff)
	}
	if !proto.Equal(want.SourcePolicy(), got.SourcePolicy()) {
		t.Error("the source policy differs from the lock's")
	}
	if in.ContextPath != "examples/hello" || in.SubjectName != "registry.example.test/team/hello" || in.BuilderID == "" || len(in.ResolvedDependencies) != 7 {
		t.Errorf("inputs = %+v", in)
	}
	if got.Images[0].Location != "registry:example.test/base@sha256:576724e26ab11e71e78581ea8c4b606f90b0a9f7230b3d13238a76548d360d0a" {
		t.Errorf("unmapped image location = %s", got.Images[0].Location)
	}
}

func TestFromProvenanceRefusals(t *testing.T) {
	pred := func(m map[string]any) map[string]any { return m["predicate"].(map[string]any) }
	def := func(m map[string]any) map[string]any { return pred(m)["buildDefinition"].(map[string]any) }
	deps := func(m map[string]any) []any { return def(m)["resolvedDependencies"].([]any) }
	dep := func(m map[string]any, i int) map[string]any { return deps(m)[i].(map[string]any) }
	tests := []struct {
		name   string
		edit   func(m map[string]any)
		digest string
		want   string
	}{
		{"another image", nil, "sha256:" + strings.Repeat("b", 64), "not about"},
		{"another build type", func(m map[string]any) { def(m)["buildType"] = "https://example.test/other/v1" }, "", "build type"},
		{"unknown dependency", func(m map[string]any) {
			def(m)["resolvedDependencies"] = append(deps(m), map[string]any{"name": "secret", "uri": "vault:x"})
		}, "", `unknown resolved dependency "secret"`},
		{"unknown parameter", func(m map[string]any) {
			def(m)["externalParameters"].(map[string]any)["network"] = "host"
		}, "", `unknown external parameter "network"`},
		{"dirty source", func(m map[string]any) { dep(m, 0)["annotations"].(map[string]any)["dirty"] = true }, "", "uncommitted changes"},
		{"no source commit", func(m map[string]any) { delete(dep(m, 0)["digest"].(map[string]any), "gitCommit") }, "", "gitCommit"},
		{"no context digest", func(m map[string]any) { delete(dep(m, 0), "annotations") }, "", "contextDigest"},
		{"no source", func(m map[string]any) { def(m)["resolvedDependencies"] = deps(m)[1:] }, "", "no source dependency"},
		{"Dockerfile elsewhere", func(m map[string]any) { dep(m, 1)["uri"] = "file:Dockerfile.other" }, "", "dockerfile dependency"},
		{"image without its name", func(m map[string]any) { delete(dep(m, 2), "annotations") }, "", "no annotation reference"},
		{"unpinned URL", func(m map[string]any) { dep(m, 4)["digest"] = map[string]any{"gitCommit": strings.Repeat("0", 40)} }, "", "not pinned"},
		{"no SOURCE_DATE_EPOCH", func(m map[string]any) {
			delete(def(m)["internalParameters"].(map[string]any), "sourceDateEpoch")
		}, "", "sourceDateEpoch"},
		{"fractional SOURCE_DATE_EPOCH", func(m map[string]any) {
			def(m)["internalParameters"].(map[string]any)["sourceDateEpoch"] = 1.5
		}, "", "whole number"},
		{"build argument not a string", func(m map[string]any) {
			def(m)["externalParameters"].(map[string]any)["buildArgs"] = map[string]any{"N": 1}
		}, "", "buildArgs.N"},
		{"frontend image as a build argument", func(m map[string]any) {
			def(m)["externalParameters"].(map[string]any)["buildArgs"] = map[string]any{"BUILDKIT_SYNTAX": "example.test/frontend:1"}
		}, "", "BUILDKIT_SYNTAX"},
		{"another BuildKit control as a build argument", func(m map[string]any) {
			def(m)["externalParameters"].(map[string]any)["buildArgs"] = map[string]any{"GREETING": "hi", "BUILDKIT_CACHE_MOUNT_NS": "shared"}
		}, "", "BUILDKIT_CACHE_MOUNT_NS"},
		{"no platform", func(m map[string]any) { delete(def(m)["externalParameters"].(map[string]any), "platform") }, "", "platform"},
		{"bad platform", func(m map[string]any) { def(m)["externalParameters"].(map[string]any)["platform"] = "linux" }, "", "platform"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := golden(t)
			if tt.edit != nil {
				tt.edit(m)
			}
			d := tt.digest
			if d == "" {
				d = goldenDigest
			}
			_, err := FromProvenance(statement(t, m), d)
			if !errors.Is(err, ErrRefused) {
				t.Fatalf("error = %v, want ErrRefused", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not mention %q", err, tt.want)
			}
		})
	}
}

func gitIn(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", append([]string{"-C", dir}, args...)...)
	cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@test", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@test",
		"GIT_CONFIG_NOSYSTEM=1", "GIT_AUTHOR_DATE=2025-01-01T00:00:00Z", "GIT_COMMITTER_DATE=2025-01-01T00:00:00Z")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %v: %v\n%s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

func writeFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

const dockerfile = "FROM example.test/base:1\nCOPY hello.txt /hello.txt\n"

// sourceRepo commits a repository whose build context is app/, and
// returns it with the inputs a provenance of a build of it records.
func sourceRepo(t *testing.T, baseDigest string) (string, *Inputs) {
	t.Helper()
	repo := filepath.Join(t.TempDir(), "repo")
	writeFile(t, filepath.Join(repo, "app", "Dockerfile"), dockerfile)
	writeFile(t, filepath.Join(repo, "app", "hello.txt"), "hello\n")
	writeFile(t, filepath.Join(repo, "README"), "not built\n")
	gitIn(t, repo, "init", "--quiet", "-b", "main")
	gitIn(t, repo, "add", "-A")
	gitIn(t, repo, "commit", "--quiet", "-m", "source")
	digest, _, err := hermetic.ContextDigest(filepath.Join(repo, "app"), "Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	return repo, &Inputs{
		SubjectDigest: goldenDigest,
		Source: hermetic.Source{Kind: hermetic.SourceKindGit, Commit: gitIn(t, repo, "rev-parse", "HEAD"),
			Tree: gitIn(t, repo, "rev-parse", "HEAD:app"), Ref: "refs/heads/main", Digest: digest},
		ContextPath:     "app",
		Dockerfile:      hermetic.File{Path: "Dockerfile", Digest: digestOf([]byte(dockerfile))},
		Platform:        "linux/amd64",
		SourceDateEpoch: 1735689600,
		Images:          []hermetic.Image{{Name: "example.test/base:1", Digest: baseDigest}},
	}
}

func TestOpenSource(t *testing.T) {
	ctx := context.Background()
	repo, in := sourceRepo(t, goldenDigest)
	for _, dir := range []string{repo, filepath.Join(repo, "app")} {
		co, err := OpenSource(ctx, in, dir)
		if err != nil {
			t.Fatalf("OpenSource(%s): %v", dir, err)
		}
		if co.ContextDir != filepath.Join(repo, "app") || co.Commit != in.Source.Commit || co.Tree != in.Source.Tree || co.Repository != "" {
			t.Errorf("checkout = %+v", co)
		}
	}
	// Neither the lock file nor what lies outside the context matters.
	writeFile(t, filepath.Join(repo, "app", hermetic.DefaultFileName), "{}")
	writeFile(t, filepath.Join(repo, "notes.txt"), "scratch\n")
	if _, err := OpenSource(ctx, in, repo); err != nil {
		t.Errorf("with a lock file and an untracked file outside the context: %v", err)
	}

	tests := []struct {
		name  string
		setup func(t *testing.T, repo string, in *Inputs) string
		want  []string
	}{
		{"not a git work tree", func(t *testing.T, _ string, _ *Inputs) string { return t.TempDir() }, []string{"not a git work tree"}},
		{"another commit", func(t *testing.T, repo string, in *Inputs) string {
			writeFile(t, filepath.Join(repo, "app", "more.txt"), "more\n")
			gitIn(t, repo, "add", "-A")
			gitIn(t, repo, "commit", "--quiet", "-m", "more")
			return repo
		}, []string{"is at commit", "provenance records commit"}},
		{"edited file", func(t *testing.T, repo string, _ *Inputs) string {
			writeFile(t, filepath.Join(repo, "app", "hello.txt"), "edited\n")
			return repo
		}, []string{"not clean", "app/hello.txt"}},
		{"untracked file in the context", func(t *testing.T, repo string, _ *Inputs) string {
			writeFile(t, filepath.Join(repo, "app", "stray.txt"), "stray\n")
			return repo
		}, []string{"not clean", "app/stray.txt"}},
		{"another tree", func(t *testing.T, repo string, in *Inputs) string {
			in.Source.Tree = strings.Repeat("0", 40)
			return repo
		}, []string{"has tree", in.Source.Tree}},
		{"context outside the repository", func(t *testing.T, repo string, in *Inputs) string {
			in.ContextPath = "../elsewhere"
			return repo
		}, []string{"context"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			repo, in := sourceRepo(t, goldenDigest)
			dir := tt.setup(t, repo, in)
			_, err := OpenSource(ctx, in, dir)
			if !errors.Is(err, ErrRefused) {
				t.Fatalf("error = %v, want ErrRefused", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestCloneSource(t *testing.T) {
	ctx := context.Background()
	repo, in := sourceRepo(t, goldenDigest)
	bare := filepath.Join(t.TempDir(), "origin.git")
	gitIn(t, repo, "clone", "--quiet", "--bare", repo, bare)
	// A later commit on the branch: the clone must go back to the recorded one.
	writeFile(t, filepath.Join(repo, "app", "later.txt"), "later\n")
	gitIn(t, repo, "add", "-A")
	gitIn(t, repo, "commit", "--quiet", "-m", "later")
	gitIn(t, repo, "push", "--quiet", bare, "main")

	in.Source.Repository = "file://" + bare
	dir := filepath.Join(t.TempDir(), "clone")
	co, err := CloneSource(ctx, in, dir)
	if err != nil {
		t.Fatal(err)
	}
	if co.Commit != in.Source.Commit || co.Repository != in.Source.Repository || co.ContextDir != filepath.Join(dir, "app") {
		t.Errorf("checkout = %+v", co)
	}
	if _, err := os.Stat(filepath.Join(co.ContextDir, "later.txt")); err == nil {
		t.Error("the clone is not at the recorded commit")
	}

	for _, bad := range []string{"", "ext::sh -c touch% /tmp/pwned", "--upload-pack=touch /tmp/pwned"} {
		in.Source.Repository = bad
		if _, err := CloneSource(ctx, in, filepath.Join(t.TempDir(), "c")); !errors.Is(err, ErrRefused) {
			t.Errorf("repository %q: error = %v, want ErrRefused", bad, err)
		}
	}
	in.Source.Repository = "file://" + filepath.Join(t.TempDir(), "nothing.git")
	if _, err := CloneSource(ctx, in, filepath.Join(t.TempDir(), "c")); err == nil || errors.Is(err, ErrRefused) {
		t.Errorf("a repository that is not there: %v", err)
	}
}

// writeLayout writes a random image as an OCI layout tagged tag.
func writeLayout(t *testing.T, tag string) (string, string) {
	t.Helper()
	img, err := random.Image(64, 1)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "layout")
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.AppendImage(img, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": tag})); err != nil {
		t.Fatal(err)
	}
	d, _ := img.Digest()
	return dir, d.String()
}

func TestRequest(t *testing.T) {
	ctx := context.Background()
	base, baseDigest := writeLayout(t, "1")
	other, otherDigest := writeLayout(t, "1")
	repo, in := sourceRepo(t, baseDigest)
	co, err := OpenSource(ctx, in, repo)
	if err != nil {
		t.Fatal(err)
	}
	in.BuildArgs = map[string]string{"GREETING": "hi"}
	in.URLs = []hermetic.URL{{URL: "https://files.example.test/a", Digest: "sha256:" + strings.Repeat("c", 64)}}
	for _, spec := range []string{"oci-layout:" + base, "oci-layout:" + base + ":1", base} {
		req, err := in.Request(ctx, co, Images{Layouts: map[string]string{"example.test/base:1": spec}})
		if err != nil {
			t.Fatalf("Request with %s: %v", spec, err)
		}
		if len(req.BaseImages) != 1 || req.BaseImages[0].Layout != base || req.BaseImages[0].Digest != baseDigest ||
			req.ContextDir != co.ContextDir || req.SourceDateEpoch != in.SourceDateEpoch || req.Platform != "linux/amd64" ||
			req.BuildArgs["GREETING"] != "hi" || !proto.Equal(req.SourcePolicy, in.lock().SourcePolicy()) {
			t.Errorf("request = %+v", req)
		}
	}
	// An image without a layout is fetched by digest into the cache; one
	// there already is used as it is.
	cache := t.TempDir()
	if out, err := exec.Command("cp", "-a", base, filepath.Join(cache, "sha256-"+strings.TrimPrefix(baseDigest, "sha256:"))).CombinedOutput(); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	req, err := in.Request(ctx, co, Images{Cache: cache})
	if err != nil || req.BaseImages[0].Layout != filepath.Join(cache, "sha256-"+strings.TrimPrefix(baseDigest, "sha256:")) {
		t.Errorf("Request from the cache = %+v, %v", req.BaseImages, err)
	}

	tests := []struct {
		name   string
		images map[string]string
		edit   func(t *testing.T, in *Inputs, ctxDir string)
		want   []string
	}{
		{"layout with another image", map[string]string{"example.test/base:1": "oci-layout:" + other}, nil, []string{"example.test/base:1", other, "does not hold", baseDigest, otherDigest}},
		{"tag with another image", map[string]string{"example.test/base:1": "oci-layout:" + other + ":1"}, nil, []string{"example.test/base:1", "under tag 1", otherDigest}},
		{"unknown tag", map[string]string{"example.test/base:1": "oci-layout:" + base + ":2"}, nil, []string{"no tag", "2"}},
		{"not a layout", map[string]string{"example.test/base:1": "oci-layout:" + t.TempDir()}, nil, []string{"example.test/base:1", "not an OCI layout"}},
		{"Dockerfile differs", nil, func(t *testing.T, in *Inputs, _ string) {
			in.Dockerfile.Digest = "sha256:" + strings.Repeat("d", 64)
		}, []string{"Dockerfile", "dockerfile material"}},
		{"context differs", nil, func(t *testing.T, _ *Inputs, ctxDir string) {
			if err := os.Chmod(filepath.Join(ctxDir, "hello.txt"), 0o600); err != nil {
				t.Fatal(err)
			}
		}, []string{"content digest", "does not hold what was built"}},
		{"base image not pinned", nil, func(t *testing.T, in *Inputs, _ string) { in.Images = nil }, []string{"example.test/base:1"}},
		{"network", nil, func(t *testing.T, in *Inputs, ctxDir string) {
			df := dockerfile + "RUN --network=host true\n"
			writeFile(t, filepath.Join(ctxDir, "Dockerfile"), df)
			in.Dockerfile.Digest = digestOf([]byte(df))
			in.Source.Digest, _, _ = hermetic.ContextDigest(ctxDir, "Dockerfile")
		}, []string{"network"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			repo, in := sourceRepo(t, baseDigest)
			co := &Checkout{Dir: repo, ContextDir: filepath.Join(repo, "app"), Kind: hermetic.SourceKindGit}
			if tt.edit != nil {
				tt.edit(t, in, co.ContextDir)
			}
			images := tt.images
			if images == nil {
				images = map[string]string{"example.test/base:1": base}
			}
			_, err := in.Request(ctx, co, Images{Layouts: images})
			if !errors.Is(err, ErrRefused) {
				t.Fatalf("error = %v, want ErrRefused", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

// A provenance that lists the Go modules its lock pins (examples/goservice
// vendors one) is read back with them, as the lock had them.
func TestFromProvenanceGoModules(t *testing.T) {
	lockPath := filepath.Join("..", "..", "examples", "goservice", hermetic.DefaultFileName)
	data, err := os.ReadFile(lockPath)
	if err != nil {
		t.Fatal(err)
	}
	al, err := attest.ParseLock(data)
	if err != nil {
		t.Fatal(err)
	}
	finished := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	st, err := attest.Provenance(attest.BuildInfo{
		Subject: attest.Subject{Name: "registry.example.test/team/goservice", Digest: goldenDigest}, Lock: al,
		ContextPath: "examples/goservice", Build: attest.Builder{BuildKitVersion: "v0.34.2"},
		StartedOn: finished.Add(-time.Minute), FinishedOn: finished,
	})
	if err != nil {
		t.Fatal(err)
	}
	in, err := FromProvenance(st, goldenDigest)
	if err != nil {
		t.Fatalf("FromProvenance: %v", err)
	}
	want, err := hermetic.Load(lockPath)
	if err != nil {
		t.Fatal(err)
	}
	if len(want.GoModules) == 0 {
		t.Fatal("the example's lock pins no Go module: the test checks nothing")
	}
	if diff := cmp.Diff(want.GoModules, in.lock().GoModules); diff != "" {
		t.Errorf("Go modules differ from the lock's (-lock +provenance):\n%s", diff)
	}
	if _, err := in.lock().Marshal(); err != nil {
		t.Errorf("the lock read back does not marshal: %v", err)
	}
}
