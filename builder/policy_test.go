package builder

import (
	"errors"
	gofs "io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/moby/buildkit/client/llb"
	"github.com/moby/buildkit/solver/pb"
	"github.com/moby/buildkit/sourcepolicy"
	spb "github.com/moby/buildkit/sourcepolicy/pb"

	"github.com/twinforge/twinforge/isolation"
)

// sourceOp is the source op BuildKit's own LLB client makes for st, so the
// identifiers judged are the real ones.
func sourceOp(t *testing.T, st llb.State) *pb.SourceOp {
	t.Helper()
	def, err := st.Marshal(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, dt := range def.Def {
		var op pb.Op
		if err := op.UnmarshalVT(dt); err != nil {
			t.Fatal(err)
		}
		if src := op.GetSource(); src != nil {
			return src
		}
	}
	t.Fatal("no source op")
	return nil
}

// The default policy (a request without a lock's) admits the base images'
// layouts by digest and the local context, nothing remote: not images, not
// single image blobs, not URLs or git.
func TestDefaultPolicy(t *testing.T) {
	const base = "sha256:1111111111111111111111111111111111111111111111111111111111111111"
	const other = "sha256:2222222222222222222222222222222222222222222222222222222222222222"
	pol := DefaultPolicy([]BaseImage{{Name: "example.test/base:1", Digest: base, Layout: "/l"}})
	for _, tc := range []struct {
		name    string
		op      *pb.SourceOp
		allowed bool
	}{
		{"base layout", sourceOp(t, llb.OCILayout("example.test/base:1@"+base, llb.OCIStore("s", "base0"))), true},
		{"local context", sourceOp(t, llb.Local("context")), true},
		{"other layout", sourceOp(t, llb.OCILayout("example.test/base:1@"+other, llb.OCIStore("s", "base0"))), false},
		{"registry image", sourceOp(t, llb.Image("example.test/base@"+base)), false},
		{"registry blob", sourceOp(t, llb.ImageBlob("example.test/base@"+base)), false},
		{"layout blob", sourceOp(t, llb.OCILayoutBlob("example.test/base@"+base, llb.ImageBlobOCIStore("s", "base0"))), false},
		{"URL", sourceOp(t, llb.HTTP("https://example.test/f")), false},
		{"git", sourceOp(t, llb.Git("https://example.test/r.git", "main")), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id := tc.op.Identifier
			_, err := sourcepolicy.NewEngine([]*spb.Policy{pol}).Evaluate(t.Context(), tc.op)
			switch {
			case tc.allowed && err != nil:
				t.Fatalf("%s denied: %v", id, err)
			case !tc.allowed && !errors.Is(err, sourcepolicy.ErrSourceDenied):
				t.Fatalf("%s: want denied, got %v", id, err)
			}
		})
	}
}

// Nothing reaches BuildKit but the frontend options twinforge sets: build
// args a lock may hold, the ones twinforge sets, named contexts for the
// base images, the built-in frontend pinned.
func TestFrontendAttrs(t *testing.T) {
	bases := []BaseImage{{Name: "example.test/base:1", Digest: "sha256:1111111111111111111111111111111111111111111111111111111111111111", Layout: "/l"}}
	req := Request{Dockerfile: "sub/Dockerfile", BuildArgs: map[string]string{"VERSION": "1"}, SourceDateEpoch: 7, Target: "app", Platform: "linux/amd64"}
	attrs, err := frontendAttrs(req, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]string{"filename": "Dockerfile", "force-network-mode": "none", "cmdline": "", "build-arg:VERSION": "1",
		"build-arg:SOURCE_DATE_EPOCH": "7", "target": "app", "platform": "linux/amd64"} {
		if got, ok := attrs[k]; !ok || got != v {
			t.Errorf("attr %s = %q (set %v), want %q", k, got, ok, v)
		}
	}
	ns := attrs["build-arg:BUILDKIT_CACHE_MOUNT_NS"]
	again, _ := frontendAttrs(req, nil)
	if ns == "" || ns == again["build-arg:BUILDKIT_CACHE_MOUNT_NS"] {
		t.Errorf("cache namespaces %q and %q: want one of its own per build", ns, again["build-arg:BUILDKIT_CACHE_MOUNT_NS"])
	}
	// On a daemon that keeps a cache for its scope, cache mounts are kept
	// with it: the namespace stays, and differs between scopes.
	kept := func(scope string) string {
		a, err := frontendAttrs(req, &isolation.CacheInfo{Scope: scope, State: isolation.CacheWarm, Dir: "/c"})
		if err != nil {
			t.Fatal(err)
		}
		return a["build-arg:BUILDKIT_CACHE_MOUNT_NS"]
	}
	if a, b, c := kept("github.com/a/x"), kept("github.com/a/x"), kept("github.com/b/y"); a != b || a == c {
		t.Errorf("cached namespaces %q, %q (same scope), %q (another): want the same per scope, another per scope", a, b, c)
	}
	if _, ok := attrs[attrNoCache]; ok {
		t.Error("no-cache set without NoCache")
	}
	req.NoCache = true
	if cold, _ := frontendAttrs(req, nil); cold[attrNoCache] != "" {
		t.Errorf("NoCache: no-cache attr %q missing", cold[attrNoCache])
	} else if _, ok := cold[attrNoCache]; !ok {
		t.Error("NoCache: no-cache attr missing")
	}
	req.NoCache = false
	attrs["context:example.test/base:1"] = "oci-layout://base0@" + bases[0].Digest
	if err := checkFrontendAttrs(attrs, bases); err != nil {
		t.Fatalf("twinforge's own options refused: %v", err)
	}

	for name, tc := range map[string]struct {
		key, value, want string
	}{
		"syntax build arg":       {"build-arg:BUILDKIT_SYNTAX", "example.test/frontend:1", "BUILDKIT_SYNTAX"},
		"lower-case syntax arg":  {"build-arg:buildkit_syntax", "example.test/frontend:1", "buildkit_syntax"},
		"other BuildKit arg":     {"build-arg:BUILDKIT_MULTI_PLATFORM", "1", "BUILDKIT_MULTI_PLATFORM"},
		"frontend source":        {"source", "example.test/frontend:1", `"source"`},
		"frontend caps":          {"frontend.caps", "moby.buildkit.frontend.inputs", `"frontend.caps"`},
		"registry named context": {"context:example.test/base:1", "docker-image://example.test/base:1", "OCI layouts only"},
		"unknown named context":  {"context:example.test/other:1", "oci-layout://base0@" + bases[0].Digest, "context:example.test/other:1"},
		"extra hosts":            {"add-hosts", "registry=127.0.0.1", `"add-hosts"`},
	} {
		t.Run(name, func(t *testing.T) {
			bad := map[string]string{}
			for k, v := range attrs {
				bad[k] = v
			}
			bad[tc.key] = tc.value
			err := checkFrontendAttrs(bad, bases)
			if !errors.Is(err, ErrRefused) {
				t.Fatalf("want refused, got %v", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not name %s", err, tc.want)
			}
		})
	}
	unpinned := map[string]string{}
	for k, v := range attrs {
		if k != "cmdline" {
			unpinned[k] = v
		}
	}
	if err := checkFrontendAttrs(unpinned, bases); !errors.Is(err, ErrRefused) {
		t.Errorf("an unpinned frontend was not refused: %v", err)
	}
}

// The frontend reads the Dockerfile and its ignore file from the
// Dockerfile's directory, and nothing else of it: not .git, not the lock,
// not what the ignore file keeps out of the context.
func TestDockerfileFSHoldsTheDockerfileAlone(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"Dockerfile", "Dockerfile.dockerignore", ".dockerignore", "twinforge.lock", "secret.env", ".git/config", "sub/Dockerfile"} {
		p := filepath.Join(dir, filepath.FromSlash(f))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(f), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for dockerfile, want := range map[string][]string{
		"Dockerfile":     {"Dockerfile", "Dockerfile.dockerignore"},
		"sub/Dockerfile": {"Dockerfile"},
	} {
		fs, err := dockerfileFS(dir, filepath.FromSlash(dockerfile))
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		if err := fs.Walk(t.Context(), "", func(p string, _ gofs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			got = append(got, p)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s: the frontend sees %v, want %v", dockerfile, got, want)
		}
	}
}
