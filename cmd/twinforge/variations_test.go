package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/twinforge/twinforge/internal/testenv"
)

// Differences that real builders make fail the build with exit 3 and name
// their file, with strict variations as without: the pinned variations
// never turn a deciding difference into a warning.
func TestDecidingVariationsExit3(t *testing.T) {
	testenv.NeedDaemon(t)
	c := newCLI(t)
	tests := []struct{ context, file string }{
		{"clock", "built-at"},
		{"urandom", "random.bin"},
		{"hostname", "etc/built-on"},
		{"cpus", "etc/cpus"},
	}
	for _, tt := range tests {
		ctx := c.context(tt.context)
		c.lock(ctx)
		for _, strict := range []string{"", "--strict-variations"} {
			t.Run(tt.context+strict, func(t *testing.T) {
				args := []string{"build", "--progress", "quiet", "--oci-layout", filepath.Join(t.TempDir(), "out")}
				if strict != "" {
					args = append(args, strict)
				}
				r := c.run(append(args, ctx)...)
				if r.code != exitNotReproducible {
					t.Fatalf("exit %d, want 3\n%s", r.code, r.stderr)
				}
				assertContains(t, "stderr", r.stderr, tt.file, "not reproducible", "what differs between the build and the rebuild")
				if strings.Contains(r.stderr, "warning:") || strings.Contains(r.stderr, "pinned variations") {
					t.Errorf("a deciding difference was blamed on the pinned variations:\n%s", r.stderr)
				}
			})
		}
	}
	c.assertClean()
}

// A plain Dockerfile whose file modes follow the umask reproduces on
// default settings, warns with --strict-variations (exit 0, the provenance
// recording the warnings) and fails with --strict-variations=fail.
func TestPinnedVariationsWarn(t *testing.T) {
	testenv.NeedDaemon(t)
	c := newCLI(t)
	ctx := c.context("umask")
	c.lock(ctx)
	files := []string{"data/a", "data/c"}

	r := c.must("build", "--progress", "quiet", "--output", "json", "--oci-layout", filepath.Join(t.TempDir(), "off"), ctx)
	var off buildJSON
	decode(t, r.stdout, &off)
	if !off.Reproducible || off.Rebuild.StrictVariations != "off" || len(off.Rebuild.Warnings) != 0 || strings.Contains(r.stderr, "warning:") {
		t.Errorf("default settings: %s\n%s", r.stdout, r.stderr)
	}

	keys := filepath.Join(testenv.RepoRoot(t), "attest", "testdata", "keys")
	os.Setenv("COSIGN_PASSWORD", "twinforge-test")
	defer os.Unsetenv("COSIGN_PASSWORD")
	warnOut := filepath.Join(t.TempDir(), "warn")
	r = c.must("build", "--progress", "quiet", "--output", "json", "--strict-variations", "--oci-layout", warnOut,
		"--sign", "key="+filepath.Join(keys, "cosign.key"), "--tsa-url", "", ctx)
	var warn buildJSON
	decode(t, r.stdout, &warn)
	if !warn.Reproducible || warn.Rebuild.StrictVariations != "warn" || warn.Rebuild.Strict == nil || warn.Rebuild.Strict.Digest == warn.Digest {
		t.Errorf("--strict-variations: %s", r.stdout)
	}
	for _, f := range files {
		assertContains(t, "stderr", r.stderr, "warning: "+f+": mode depends on the umask; BuildKit pins 0022, so it reproduces on BuildKit builders")
		found := false
		for _, w := range warn.Rebuild.Warnings {
			found = found || (w.Path == f && w.Variation == "umask")
		}
		if !found {
			t.Errorf("no umask warning for %s in the JSON: %+v", f, warn.Rebuild.Warnings)
		}
	}
	// The provenance says the umask only warned; a policy that requires
	// strict variations refuses the image, one that does not accepts it.
	policy := func(extra string) string {
		p := filepath.Join(t.TempDir(), "policy.yaml")
		write(t, p, "apiVersion: twinforge.dev/v2\nkind: Policy\nidentities:\n  - publicKey: "+filepath.Join(keys, "cosign.pub")+
			"\nrequireSignedTimestamp: false\nrequireTransparencyLog: false\n"+extra)
		return p
	}
	v := c.must("verify", "--policy", policy(""), "--output", "json", warnOut)
	var verified struct {
		StrictVariations   string
		WarnedVariations   []string
		DecidingVariations []string
		VariationWarnings  []string
	}
	decode(t, v.stdout, &verified)
	if verified.StrictVariations != "warn" || strings.Join(verified.WarnedVariations, ",") != "umask,tz" ||
		!contains(verified.DecidingVariations, "hostname") || len(verified.VariationWarnings) != 3 {
		t.Errorf("provenance: %s", v.stdout)
	}
	if r := c.run("verify", "--policy", policy("requireStrictVariations: true\n"), warnOut); r.code != exitRefused {
		t.Errorf("a policy requiring strict variations: exit %d\n%s", r.code, r.stderr)
	} else {
		assertContains(t, "refusal", r.stderr, "policy.requireStrictVariations", "mode depends on the umask")
	}

	r = c.run("build", "--progress", "quiet", "--strict-variations=fail", "--oci-layout", filepath.Join(t.TempDir(), "fail"), ctx)
	if r.code != exitNotReproducible {
		t.Fatalf("--strict-variations=fail: exit %d, want 3\n%s", r.code, r.stderr)
	}
	assertContains(t, "stderr", r.stderr, "pinned variations", "what differs between the build and the strict rebuild", "the umask", "data/a", "data/c")
	c.assertClean()
}

// The vendored Go service reproduces on default settings (its binary's mode
// follows the umask, which BuildKit pins), and fails only when strict
// variations are asked to fail, naming the binary and the umask.
func TestVendoredGoServiceStrict(t *testing.T) {
	testenv.NeedDaemon(t)
	testenv.BaseImages(t)
	c := newCLI(t)
	ex := filepath.Join(testenv.RepoRoot(t), "examples", "goservice")
	r := c.run("build", "--progress", "quiet", "--strict-variations=fail", "--oci-layout", filepath.Join(t.TempDir(), "fail"), ex)
	if r.code != exitNotReproducible {
		t.Fatalf("--strict-variations=fail: exit %d, want 3\n%s%s", r.code, r.stdout, r.stderr)
	}
	// The rebuild without the pinned variations reproduced the digest.
	assertContains(t, "stderr", r.stderr, "warning: goservice: mode depends on the umask; BuildKit pins 0022", "pinned variations")
	assertContains(t, "stdout", r.stdout, "strict variations  fail")
	c.assertClean()
}

type buildJSON struct {
	Digest       string
	Reproducible bool
	Rebuild      struct {
		Digest           string
		StrictVariations string
		Strict           *struct{ Digest, OCILayout string }
		Warnings         []struct{ Path, Variation, Message string }
	}
}

func decode(t *testing.T, s string, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(s), v); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, s)
	}
}

// The auditor's path takes --strict-variations too: a published build the
// umask changes is reproduced from its provenance, warned about with the
// flag, and refused a verdict with =fail.
func TestRebuildStrictVariations(t *testing.T) {
	testenv.NeedDaemon(t)
	c := newCLI(t)
	ctx := c.context("umask")
	commitContext(t, ctx)
	c.lock(ctx)
	keys := filepath.Join(testenv.RepoRoot(t), "attest", "testdata", "keys")
	os.Setenv("COSIGN_PASSWORD", "twinforge-test")
	defer os.Unsetenv("COSIGN_PASSWORD")
	layout := filepath.Join(t.TempDir(), "img")
	c.must("build", "--progress", "quiet", "--no-rebuild", "--sign", "key="+filepath.Join(keys, "cosign.key"), "--tsa-url", "", "--oci-layout", layout, ctx)
	policy := filepath.Join(t.TempDir(), "policy.yaml")
	write(t, policy, "apiVersion: twinforge.dev/v2\nkind: Policy\nidentities:\n  - publicKey: "+filepath.Join(keys, "cosign.pub")+
		"\nrequireSignedTimestamp: false\nrequireTransparencyLog: false\n")
	rebuild := func(extra ...string) result {
		args := append([]string{"rebuild", "--policy", policy, "--source", ctx, "--state-dir", t.TempDir(), "--progress", "quiet",
			"--output", "json", "--oci-layout", filepath.Join(t.TempDir(), "rebuilt")}, baseImageFlags(t)...)
		return c.run(append(append(args, extra...), layout)...)
	}
	type auditJSON struct {
		Reproducible     bool
		StrictVariations string
		Warnings         []struct{ Path, Variation string }
	}

	r := rebuild()
	var off auditJSON
	decode(t, r.stdout, &off)
	if r.code != 0 || !off.Reproducible || off.StrictVariations != "off" || len(off.Warnings) != 0 {
		t.Fatalf("default settings: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	r = rebuild("--strict-variations")
	var warn auditJSON
	decode(t, r.stdout, &warn)
	if r.code != 0 || !warn.Reproducible || warn.StrictVariations != "warn" || len(warn.Warnings) != 3 {
		t.Fatalf("--strict-variations: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	assertContains(t, "stderr", r.stderr, "warning: data/a: mode depends on the umask")
	r = rebuild("--strict-variations=fail")
	if r.code != exitNotReproducible {
		t.Fatalf("--strict-variations=fail: exit %d, want 3\n%s%s", r.code, r.stdout, r.stderr)
	}
	assertContains(t, "stderr", r.stderr, "pinned variations", "no verdict was signed")
}
