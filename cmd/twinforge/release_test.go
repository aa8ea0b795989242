package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/twinforge/twinforge/distribute/release"
	"github.com/twinforge/twinforge/internal/regtest"
	"github.com/twinforge/twinforge/internal/testenv"
)

// TestSBOMAndReleaseIndex builds an image that contains a deliberately old
// package version, attests its SPDX and CycloneDX SBOMs, pushes and
// releases it, replicates image and index to two regions, and checks what
// verify admits and refuses: the denied package by name, a tag moved in a
// region, a region serving an older index, a team key revoked and
// rotated. cosign reads the SBOM attestation twinforge attached.
func TestSBOMAndReleaseIndex(t *testing.T) {
	testenv.NeedDaemon(t)
	c := newCLI(t)
	ctx := c.context("files-small")
	write(t, filepath.Join(ctx, "dpkg-status"), "Package: openssl\nStatus: install ok installed\nArchitecture: amd64\nVersion: 1.1.1k-1\n\nPackage: libc6\nStatus: install ok installed\nArchitecture: amd64\nVersion: 2.36-9\n")
	write(t, filepath.Join(ctx, "Dockerfile"), "FROM example.test/base:1\nCOPY hello.txt /hello.txt\nCOPY dpkg-status /var/lib/dpkg/status\n")
	c.lock(ctx)
	src := regtest.StartDistribution(t)
	regions := []*regtest.Registry{regtest.StartReferrers(t), regtest.StartDistribution(t)}
	keys := filepath.Join(testenv.RepoRoot(t), "attest", "testdata", "keys")
	os.Setenv("COSIGN_PASSWORD", "twinforge-test")
	defer os.Unsetenv("COSIGN_PASSWORD")

	if r := c.run("build", "--progress", "quiet", "--sbom", "spdx", "--sign", "none", ctx); r.code != exitUsage {
		t.Fatalf("--sbom without signing: exit %d", r.code)
	}
	image := src.Host + "/payments/app"
	r := c.must("build", "--progress", "quiet", "--no-rebuild", "--output", "json", "--sign", "key="+filepath.Join(keys, "cosign.key"), "--tsa-url", "",
		"--sbom", "spdx,cyclonedx", "--push", image+":1.2", "--insecure", ctx)
	var built struct {
		Digest    string
		Signature struct{ SBOMs []string }
	}
	if err := json.Unmarshal([]byte(r.stdout), &built); err != nil {
		t.Fatal(err)
	}
	if len(built.Signature.SBOMs) != 2 {
		t.Fatalf("SBOM bundles: %v", built.Signature.SBOMs)
	}
	pinned := image + "@" + built.Digest

	// cosign reads the SPDX attestation twinforge attached (a key-signed
	// bundle: the trusted root has no authority in it).
	emptyRoot := filepath.Join(t.TempDir(), "trusted_root.json")
	write(t, emptyRoot, `{"mediaType":"application/vnd.dev.sigstore.trustedroot+json;version=0.1"}`)
	out, err := exec.Command(testenv.Binary(t, "cosign"), "verify-attestation", "--new-bundle-format", "--type", "spdxjson", "--trusted-root", emptyRoot,
		"--key", filepath.Join(keys, "cosign.pub"), "--insecure-ignore-tlog", "--allow-insecure-registry", pinned).CombinedOutput()
	if err != nil {
		t.Fatalf("cosign verify-attestation --type spdxjson: %v\n%s", err, out)
	}
	var checked bool
	for _, line := range strings.Split(string(out), "\n") {
		var env struct{ Payload []byte }
		if json.Unmarshal([]byte(line), &env) != nil || env.Payload == nil {
			continue
		}
		assertContains(t, "cosign's attestation", string(env.Payload), `"predicateType":"https://spdx.dev/Document"`, "pkg:deb/debian/openssl@1.1.1k-1", built.Digest[len("sha256:"):])
		checked = true
	}
	if !checked {
		t.Fatalf("cosign printed no attestation:\n%s", out)
	}

	policy := func(extra string) string {
		p := filepath.Join(t.TempDir(), "policy.yaml")
		write(t, p, "apiVersion: twinforge.dev/v2\nkind: Policy\nidentities:\n  - publicKey: "+filepath.Join(keys, "cosign.pub")+
			"\nrequireSignedTimestamp: false\nrequireTransparencyLog: false\nrequireSBOM: true\n"+extra)
		return p
	}
	allow := policy("")
	deny := policy("deniedPackages:\n  - purl: pkg:deb/*/openssl\n    versions: < 1.1.1n\n    reason: CVE-2022-0778\n")
	c.must("verify", "--insecure", "--policy", allow, pinned)
	r = c.run("verify", "--insecure", "--policy", deny, pinned)
	if r.code != exitRefused {
		t.Fatalf("verify with the deny policy: exit %d\n%s", r.code, r.stderr)
	}
	assertContains(t, "denial", r.stderr, "policy.deniedPackages", "pkg:deb/debian/openssl@1.1.1k-1", "CVE-2022-0778")
	c.must("verify", "--policy", allow, filepath.Join(c.dir, "out", "files-small"))

	// The release index.
	dir := t.TempDir()
	repo := filepath.Join(dir, "release-repo")
	rk := []string{filepath.Join(dir, "k1.pem"), filepath.Join(dir, "k2.pem"), filepath.Join(dir, "k3.pem")}
	c.must("release", "init", "--root-keys", strings.Join(rk, ","), "--threshold", "2", repo)
	pay, pay2 := filepath.Join(dir, "payments.pem"), filepath.Join(dir, "payments2.pem")
	c.must("release", "keygen", pay)
	c.must("release", "keygen", pay2)
	c.must("release", "team", "add", "--repo", repo, "--key", pay+".pub", "--paths", "payments/*", "payments")
	if r := c.run("release", "add", "--repo", repo, "--team", "payments", "--key", pay, "--tag", "1.2", "--insecure", src.Host+"/billing/app@"+built.Digest); r.code != exitRefused && r.code != exitFailure {
		t.Fatalf("releasing outside the team's paths: exit %d", r.code)
	}
	r = c.must("release", "add", "--repo", repo, "--team", "payments", "--key", pay, "--tag", "1.2", "--insecure", pinned)
	assertContains(t, "release add", r.stdout, "payments/app:1.2", built.Digest, "sha256:")
	old := filepath.Join(dir, "old-repo")
	if err := os.CopyFS(old, os.DirFS(repo)); err != nil {
		t.Fatal(err)
	}
	c.must("release", "add", "--repo", repo, "--team", "payments", "--key", pay, "--tag", "1.3", "--insecure", pinned)
	srv := httptest.NewServer(http.FileServer(http.Dir(filepath.Join(repo, "repository"))))
	defer srv.Close()
	root := filepath.Join(repo, "repository", "1.root.json")

	var dests []string
	for _, reg := range regions {
		dests = append(dests, reg.Host+"/payments/app")
	}
	r = c.must(append([]string{"replicate", "--insecure", "--release-repo", srv.URL, "--release-root", root, pinned}, dests...)...)
	assertContains(t, "replicate", r.stdout, "release-index", "release index")
	states := []string{t.TempDir(), t.TempDir()}
	verifyRegion := func(i int, ref string) result {
		return c.run("verify", "--insecure", "--policy", allow, "--release-repo", "oci://"+dests[i], "--release-root", root, "--release-state", states[i], ref)
	}
	crane := func(args ...string) {
		t.Helper()
		if out, err := exec.Command(testenv.Binary(t, "crane"), append(args, "--insecure")...).CombinedOutput(); err != nil {
			t.Fatalf("crane %v: %v\n%s", args, err, out)
		}
	}
	// Replication copies by digest; region 0 tags what it deploys.
	crane("tag", dests[0]+"@"+built.Digest, "1.3")
	for i, ref := range []string{dests[0] + ":1.3", dests[1] + "@" + built.Digest} {
		if r := verifyRegion(i, ref); r.code != 0 {
			t.Fatalf("verify %s: exit %d\n%s", ref, r.code, r.stderr)
		}
	}
	// Region 0: the tag 1.2 names another manifest (the index's).
	crane("tag", dests[0]+":release-index", "1.2")
	r = verifyRegion(0, dests[0]+":1.2")
	if r.code != exitRefused {
		t.Fatalf("a moved tag: exit %d\n%s", r.code, r.stderr)
	}
	assertContains(t, "moved tag", r.stderr, "release.notListed", "payments/app:1.2")
	// Region 1 is compromised: it serves the older, validly signed index.
	c.must("release", "push", "--repo", old, "--insecure", dests[1])
	r = verifyRegion(1, dests[1]+"@"+built.Digest)
	if r.code != exitRefused {
		t.Fatalf("an older index: exit %d\n%s", r.code, r.stderr)
	}
	assertContains(t, "rollback", r.stderr, "release.rollback")

	// The team's key is revoked: its releases are refused until re-signed.
	viaHTTP := func() result {
		return c.run("verify", "--insecure", "--policy", allow, "--release-repo", srv.URL, "--release-root", root, "--release-state", filepath.Join(dir, "http-state"), pinned)
	}
	if r := viaHTTP(); r.code != 0 {
		t.Fatalf("verify over HTTP: exit %d\n%s", r.code, r.stderr)
	}
	c.must("release", "team", "revoke-key", "--repo", repo, "payments", pay+".pub")
	r = viaHTTP()
	if r.code != exitRefused {
		t.Fatalf("after revocation: exit %d\n%s", r.code, r.stderr)
	}
	assertContains(t, "revoked", r.stderr, "release.threshold", "payments")
	c.must("release", "team", "add-key", "--repo", repo, "payments", pay2+".pub")
	c.must("release", "team", "sign", "--repo", repo, "--key", pay2, "payments")
	if r := viaHTTP(); r.code != 0 {
		t.Fatalf("after rotation: exit %d\n%s", r.code, r.stderr)
	}
	r = c.must("release", "list", "--release-repo", srv.URL, "--release-root", root, "--release-state", t.TempDir())
	assertContains(t, "list", r.stdout, "payments/app:1.2", "payments/app:1.3", built.Digest)
}

// TestReleaseRotateRoot: a root key and the timestamp key are replaced
// with commands; readers holding the first root follow the rotation, and a
// root signed below the threshold is refused with exit 4 before anything
// is written.
func TestReleaseRotateRoot(t *testing.T) {
	c := newCLI(t)
	dir := t.TempDir()
	repo := filepath.Join(dir, "release-repo")
	k := func(n string) string { return filepath.Join(dir, n+".pem") }
	c.must("release", "init", "--root-keys", k("k1")+","+k("k2")+","+k("k3"), "--threshold", "2", repo)
	c.must("release", "keygen", k("k4"))
	c.must("release", "keygen", k("ts2"))
	srv := httptest.NewServer(http.FileServer(http.Dir(filepath.Join(repo, "repository"))))
	defer srv.Close()
	root := filepath.Join(dir, "root-v1.json")
	write(t, root, readFile(t, filepath.Join(repo, "repository", "1.root.json")))
	state := t.TempDir()
	list := func() result {
		return c.run("release", "list", "--output", "json", "--release-repo", srv.URL, "--release-root", root, "--release-state", state)
	}
	if r := list(); r.code != 0 {
		t.Fatalf("list: exit %d\n%s", r.code, r.stderr)
	}
	// One root key is not enough.
	if r := c.run("release", "rotate-root", "--repo", repo, "--root-keys", k("k2"), "--add-key", "root="+k("k4")+".pub"); r.code != exitRefused {
		t.Fatalf("rotation signed by one key: exit %d\n%s", r.code, r.stderr)
	}
	r := c.must("release", "rotate-root", "--repo", repo, "--root-keys", k("k2")+","+k("k3")+","+k("k4"),
		"--add-key", "root="+k("k4")+".pub", "--remove-key", "root="+keyID(t, c, k("k1")), "--add-key", "timestamp="+k("ts2"),
		"--remove-key", "timestamp="+keyID(t, c, filepath.Join(repo, "keys", "timestamp.pem")))
	assertContains(t, "rotate-root", r.stdout, "root v2")
	r = list()
	if r.code != 0 {
		t.Fatalf("list after rotation: exit %d\n%s", r.code, r.stderr)
	}
	assertContains(t, "list", r.stdout, `"rootVersion": 2`)
	// The repository now signs timestamps with the new key.
	c.must("release", "refresh", "--repo", repo)
	if r := list(); r.code != 0 {
		t.Fatalf("list after refresh: exit %d\n%s", r.code, r.stderr)
	}
	if got := readFile(t, filepath.Join(repo, "keys", "timestamp.pem")); got != readFile(t, k("ts2")) {
		t.Error("the new timestamp key did not replace the old one")
	}
}

// keyID is the key ID release keygen printed for a key file's public key.
func keyID(t *testing.T, _ *cliRunner, keyFile string) string {
	t.Helper()
	pub, err := release.LoadPublicKey(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	id, err := release.KeyID(pub)
	if err != nil {
		t.Fatal(err)
	}
	return id
}
