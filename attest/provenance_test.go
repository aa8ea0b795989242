package attest

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/twinforge/twinforge/attest/verify"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata")

const (
	testDigest    = "sha256:aa033156ccc23e9b4ffe67d5ebc472179e1a37e440edd9a8f6212951caa5db2e"
	otherDigest   = "sha256:bb033156ccc23e9b4ffe67d5ebc472179e1a37e440edd9a8f6212951caa5db2e"
	testBuilderID = "https://ci.example.test/twinforge/local@v1"
)

func fixtureLock(t testing.TB) *Lock {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "twinforge.lock"))
	if err != nil {
		t.Fatal(err)
	}
	l, err := ParseLock(data)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func fixtureBuildInfo(t testing.TB) BuildInfo {
	start := time.Date(2026, 11, 25, 13, 44, 4, 0, time.UTC)
	return BuildInfo{
		Subject:     Subject{Name: "registry.example.test/team/hello", Digest: testDigest},
		Lock:        fixtureLock(t),
		ContextPath: "examples/hello",
		BuilderID:   testBuilderID,
		Build: Builder{
			BuildKitVersion: "v0.34.2", Runc: "runc version 1.1.15+ds1", Snapshotter: "overlayfs",
		},
		Rebuild: &Rebuild{
			Digest:           testDigest,
			Builder:          Builder{BuildKitVersion: "v0.34.2", Runc: "runc version 1.1.15+ds1", Snapshotter: "native", CPUSet: "0"},
			RebuilderID:      "https://ci.example.test/twinforge/rebuilder@v1",
			Variations:       []string{"snapshotter=native", "cpuset=0", "hostname=rebuild", "umask=027", "tz=Asia/Tokyo"},
			StrictVariations: "warn",
			Decided:          []string{"snapshotter", "cpus", "hostname"},
			Warned:           []string{"umask", "tz"},
			Warnings:         []string{"usr/local/bin/hello: mode depends on the umask; BuildKit pins 0022, so it reproduces on BuildKit builders"},
		},
		InvocationID: "run-42",
		StartedOn:    start,
		FinishedOn:   start.Add(93 * time.Second),
		Variations:   []string{"hostname=build"},
		GitHub:       map[string]string{"repository": "team/hello", "ref": "refs/heads/main", "sha": "7d3b69493aecdf48986c136bccbd1aedc40dcdd7", "run_id": "1234"},
	}
}

// TestProvenanceGolden pins every field of the statement for the lock
// fixture: rerun with -update after a deliberate change and review the diff.
func TestProvenanceGolden(t *testing.T) {
	st, err := Provenance(fixtureBuildInfo(t))
	if err != nil {
		t.Fatal(err)
	}
	got, err := MarshalStatement(st)
	if err != nil {
		t.Fatal(err)
	}
	var pretty bytes.Buffer
	if err := json.Indent(&pretty, got, "", "  "); err != nil {
		t.Fatal(err)
	}
	pretty.WriteByte('\n')
	golden := filepath.Join("testdata", "provenance.golden.json")
	if *update {
		if err := os.WriteFile(golden, pretty.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(string(want), pretty.String()); diff != "" {
		t.Errorf("statement differs from %s (-want +got):\n%s", golden, diff)
	}
	// The same input always gives the same bytes.
	again, _ := Provenance(fixtureBuildInfo(t))
	againBytes, _ := MarshalStatement(again)
	if !bytes.Equal(got, againBytes) {
		t.Error("MarshalStatement is not deterministic")
	}
}

// TestProvenanceFields checks each field's meaning against the lock, not
// just its bytes.
func TestProvenanceFields(t *testing.T) {
	info := fixtureBuildInfo(t)
	l := info.Lock
	st, err := Provenance(info)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := MarshalStatement(st)
	var doc map[string]any
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	get := func(path string) any {
		var cur any = doc
		for _, k := range strings.Split(path, ".") {
			m, ok := cur.(map[string]any)
			if !ok {
				t.Fatalf("%s: %s is not an object", path, k)
			}
			cur = m[k]
		}
		return cur
	}
	checks := []struct {
		path string
		want any
	}{
		{"_type", "https://in-toto.io/Statement/v1"},
		{"predicateType", "https://slsa.dev/provenance/v1"},
		{"predicate.buildDefinition.buildType", "https://twinforge.dev/buildtypes/dockerfile/v1"},
		{"predicate.buildDefinition.externalParameters.source.repository", l.Source.Repository},
		{"predicate.buildDefinition.externalParameters.source.ref", l.Source.Ref},
		{"predicate.buildDefinition.externalParameters.source.kind", "git"},
		{"predicate.buildDefinition.externalParameters.context", "examples/hello"},
		{"predicate.buildDefinition.externalParameters.dockerfile", l.Dockerfile.Path},
		{"predicate.buildDefinition.externalParameters.buildArgs.VERSION", "1.2.3"},
		{"predicate.buildDefinition.externalParameters.buildArgs.GREETING", "hello"},
		{"predicate.buildDefinition.externalParameters.target", l.Target},
		{"predicate.buildDefinition.externalParameters.platform", l.Platform},
		{"predicate.buildDefinition.internalParameters.sourceDateEpoch", float64(l.SourceDateEpoch)},
		{"predicate.buildDefinition.internalParameters.buildkitVersion", l.BuildKitVersion},
		{"predicate.buildDefinition.internalParameters.github.run_id", "1234"},
		{"predicate.runDetails.builder.id", testBuilderID},
		{"predicate.runDetails.metadata.invocationId", "run-42"},
		{"predicate.runDetails.metadata.startedOn", "2026-11-25T13:44:04Z"},
		{"predicate.runDetails.metadata.finishedOn", "2026-11-25T13:45:37Z"},
	}
	for _, c := range checks {
		if got := get(c.path); !cmp.Equal(got, c.want) {
			t.Errorf("%s = %#v, want %#v", c.path, got, c.want)
		}
	}
	if v := get("predicate.buildDefinition.internalParameters.variations"); !cmp.Equal(v, []any{"hostname=build"}) {
		t.Errorf("variations = %v", v)
	}
	if d, _ := get("predicate.buildDefinition.internalParameters.lockDigest").(string); !sha256Digest.MatchString(d) {
		t.Errorf("lockDigest = %q", d)
	}

	// Subject.
	subj := st.GetSubject()
	if len(subj) != 1 || subj[0].GetName() != info.Subject.Name || subj[0].GetDigest()["sha256"] != strings.TrimPrefix(testDigest, "sha256:") {
		t.Errorf("subject = %v", subj)
	}

	// Every locked input is a resolved dependency with its digest.
	prov, err := verify.ProvenancePredicate(st)
	if err != nil {
		t.Fatal(err)
	}
	deps := map[string]map[string]string{}
	names := map[string]string{}
	for _, rd := range prov.GetBuildDefinition().GetResolvedDependencies() {
		deps[rd.GetUri()] = rd.GetDigest()
		names[rd.GetUri()] = rd.GetName()
	}
	wantDeps := map[string]map[string]string{
		"git+https://git.example.test/team/hello.git@refs/heads/main": {"gitCommit": l.Source.Commit, "gitTree": l.Source.Tree},
		"file:build/Dockerfile": {"sha256": hexOf(l.Dockerfile.Digest)},
		"pkg:docker/base@1?platform=linux%2Famd64&repository_url=example.test%2Fbase":          {"sha256": hexOf(l.Images[0].Digest)},
		"pkg:docker/golang@1.27.3?platform=linux%2Famd64&repository_url=example.test%2Fgolang": {"sha256": hexOf(l.Images[1].Digest)},
		"https://downloads.example.test/tool-1.0.tar.gz":                                       {"sha256": hexOf(l.URLs[0].Digest)},
		"https://git.example.test/lib/vendored.git#v2.0.0":                                     {"gitCommit": l.Git[0].Commit},
		"pkg:github/moby/buildkit@v0.34.2#frontend/dockerfile":                                 nil,
	}
	if diff := cmp.Diff(wantDeps, deps); diff != "" {
		t.Errorf("resolvedDependencies (-want +got):\n%s", diff)
	}
	wantNames := map[string]string{
		"git+https://git.example.test/team/hello.git@refs/heads/main": "source", "file:build/Dockerfile": "dockerfile",
		"https://downloads.example.test/tool-1.0.tar.gz": "url", "https://git.example.test/lib/vendored.git#v2.0.0": "git",
		"pkg:github/moby/buildkit@v0.34.2#frontend/dockerfile": "dockerfile.v0",
	}
	for uri, n := range wantNames {
		if names[uri] != n {
			t.Errorf("dependency %s is named %q, want %q", uri, names[uri], n)
		}
	}

	// Builder dependencies: buildkitd and runc versions.
	var bdeps []string
	for _, rd := range prov.GetRunDetails().GetBuilder().GetBuilderDependencies() {
		bdeps = append(bdeps, rd.GetName()+"="+rd.GetUri())
	}
	if want := []string{"buildkitd=pkg:github/moby/buildkit@v0.34.2", "runc=pkg:github/opencontainers/runc@1.1.15+ds1"}; !cmp.Equal(bdeps, want) {
		t.Errorf("builderDependencies = %v, want %v", bdeps, want)
	}

	// The rebuild byproduct.
	bps := prov.GetRunDetails().GetByproducts()
	if len(bps) != 1 || bps[0].GetName() != "rebuild" || bps[0].GetDigest()["sha256"] != hexOf(testDigest) {
		t.Fatalf("byproducts = %v", bps)
	}
	ann := bps[0].GetAnnotations().GetFields()
	if !ann["reproduced"].GetBoolValue() || ann["rebuilderId"].GetStringValue() != info.Rebuild.RebuilderID || ann["snapshotter"].GetStringValue() != "native" {
		t.Errorf("rebuild annotations = %v", ann)
	}
}

func hexOf(d string) string { return strings.TrimPrefix(d, "sha256:") }

func TestProvenanceRebuild(t *testing.T) {
	tests := []struct {
		name           string
		rebuild        *Rebuild
		wantReproduced bool
		wantDigest     string
	}{
		{"reproduced", &Rebuild{Digest: testDigest, RebuilderID: "r"}, true, hexOf(testDigest)},
		{"different digest", &Rebuild{Digest: otherDigest, RebuilderID: "r"}, false, hexOf(otherDigest)},
		{"not rebuilt", nil, false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			info := fixtureBuildInfo(t)
			info.Rebuild = tt.rebuild
			st, err := Provenance(info)
			if err != nil {
				t.Fatal(err)
			}
			prov, err := verify.ProvenancePredicate(st)
			if err != nil {
				t.Fatal(err)
			}
			bp := prov.GetRunDetails().GetByproducts()[0]
			if got := bp.GetAnnotations().GetFields()["reproduced"].GetBoolValue(); got != tt.wantReproduced {
				t.Errorf("reproduced = %v, want %v", got, tt.wantReproduced)
			}
			if got := bp.GetDigest()["sha256"]; got != tt.wantDigest {
				t.Errorf("rebuild digest = %q, want %q", got, tt.wantDigest)
			}
		})
	}
}

func TestProvenanceSources(t *testing.T) {
	tests := []struct {
		name    string
		source  Source
		wantURI string
		wantDig map[string]string
	}{
		{"git without ref", Source{Kind: "git", Repository: "https://git.example.test/a.git", Commit: "7d3b69493aecdf48986c136bccbd1aedc40dcdd7", Tree: "6a36d5bfb7af47d8f36a3711ecbf67e040eea412", Digest: testDigest},
			"git+https://git.example.test/a.git@7d3b69493aecdf48986c136bccbd1aedc40dcdd7", map[string]string{"gitCommit": "7d3b69493aecdf48986c136bccbd1aedc40dcdd7", "gitTree": "6a36d5bfb7af47d8f36a3711ecbf67e040eea412"}},
		{"tree", Source{Kind: "tree", Digest: testDigest},
			"context:" + testDigest, map[string]string{"sha256": hexOf(testDigest)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			info := fixtureBuildInfo(t)
			info.Lock.Source = tt.source
			st, err := Provenance(info)
			if err != nil {
				t.Fatal(err)
			}
			prov, _ := verify.ProvenancePredicate(st)
			src := prov.GetBuildDefinition().GetResolvedDependencies()[0]
			if src.GetUri() != tt.wantURI || !cmp.Equal(src.GetDigest(), tt.wantDig) {
				t.Errorf("source = %s %v, want %s %v", src.GetUri(), src.GetDigest(), tt.wantURI, tt.wantDig)
			}
		})
	}
}

func TestProvenanceInvalid(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*BuildInfo)
		want   string
	}{
		{"no lock", func(b *BuildInfo) { b.Lock = nil }, "no lock"},
		{"no subject name", func(b *BuildInfo) { b.Subject.Name = "" }, "no name"},
		{"bad digest", func(b *BuildInfo) { b.Subject.Digest = "sha256:abc" }, "subject digest"},
		{"bad rebuild digest", func(b *BuildInfo) { b.Rebuild.Digest = "md5:x" }, "rebuild digest"},
		{"time travel", func(b *BuildInfo) { b.FinishedOn = b.StartedOn.Add(-time.Second) }, "before it started"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			info := fixtureBuildInfo(t)
			tt.mutate(&info)
			_, err := Provenance(info)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestProvenanceDefaultBuilderID(t *testing.T) {
	info := fixtureBuildInfo(t)
	info.BuilderID = ""
	st, err := Provenance(info)
	if err != nil {
		t.Fatal(err)
	}
	prov, _ := verify.ProvenancePredicate(st)
	if got := prov.GetRunDetails().GetBuilder().GetId(); got != DefaultBuilderID {
		t.Errorf("builder id = %q", got)
	}
}

// TestProvenanceGoModules: every Go module of the lock is a resolved
// dependency, a package URL with its dirHash and go.sum hashes, and says
// which checksum database tree proved it.
func TestProvenanceGoModules(t *testing.T) {
	info := fixtureBuildInfo(t)
	l := *info.Lock
	l.GoModules = []GoModule{{Path: "github.com/google/uuid", Version: "v1.6.0", GoSum: "go.sum",
		Sum: "h1:NIvaJDMOsjHA8n1jAhLSgzrAzy1Hgr+hNrb57e+94F0=", GoModSum: "h1:TIyPZe4MgqvfeYDBFedMoGGpEw/LqOeaOT+nhxU+yHo="}}
	l.GoSumDB = &GoSumDB{Name: "sum.golang.org", TreeSize: 42, TreeHash: "x", TreeHead: "note"}
	info.Lock = &l
	st, err := Provenance(info)
	if err != nil {
		t.Fatal(err)
	}
	p, err := verify.ProvenancePredicate(st)
	if err != nil {
		t.Fatal(err)
	}
	var found bool
	for _, rd := range p.GetBuildDefinition().GetResolvedDependencies() {
		if rd.GetName() != GoModuleDependency {
			continue
		}
		found = true
		ann := rd.GetAnnotations().GetFields()
		if rd.GetUri() != "pkg:golang/github.com/google/uuid@v1.6.0" || rd.GetDigest()["dirHash"] != "348bda24330eb231c0f27d630212d2833ac0cf2d4782bfa136b6f9edefbde05d" ||
			ann["h1"].GetStringValue() != l.GoModules[0].Sum || ann["sumDB"].GetStringValue() != "sum.golang.org" {
			t.Errorf("dependency %v", rd)
		}
	}
	if !found {
		t.Fatal("no Go module among the resolved dependencies")
	}
}

// TestMaterials: the lock's inputs as resolvedDependencies URIs and digest
// sets, in the lock's order.
func TestMaterials(t *testing.T) {
	const (
		emptySHA    = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
		lockedImage = "sha256:1111111111111111111111111111111111111111111111111111111111111111"
		urlDigest   = "sha256:2222222222222222222222222222222222222222222222222222222222222222"
		gitCommit   = "0123456789abcdef0123456789abcdef01234567"
	)
	l := &Lock{
		Source:     Source{Kind: SourceKindTree, Digest: emptySHA},
		Dockerfile: File{Path: "Dockerfile", Digest: emptySHA},
		Platform:   "linux/amd64",
		Images:     []Image{{Name: "example.test/base:1", Digest: lockedImage}},
		URLs:       []URL{{URL: "https://example.test/file.tgz", Digest: urlDigest}},
		Git:        []GitSource{{Remote: "https://example.test/org/repo.git", Ref: "main", Commit: gitCommit}},
	}
	got := l.materials()
	want := []material{
		{uri: "file:Dockerfile", digest: map[string]string{"sha256": hexOf(emptySHA)}},
		{uri: "pkg:docker/base@1?platform=linux%2Famd64&repository_url=example.test%2Fbase", digest: map[string]string{"sha256": hexOf(lockedImage)}},
		{uri: "https://example.test/file.tgz", digest: map[string]string{"sha256": hexOf(urlDigest)}},
		{uri: "https://example.test/org/repo.git#main", digest: map[string]string{"gitCommit": gitCommit}},
	}
	if diff := cmp.Diff(want, got, cmp.AllowUnexported(material{})); diff != "" {
		t.Errorf("materials (-want +got):\n%s", diff)
	}
}

// Each side's cache is recorded apart: warm on one side says nothing of
// the other.
func TestProvenanceCache(t *testing.T) {
	info := fixtureBuildInfo(t)
	info.Build.Cache, info.Build.CacheScope = "warm", "https://github.com/example/hello"
	info.Rebuild.Builder.Cache, info.Rebuild.Builder.CacheScope = "cold", "https://github.com/example/hello"
	info.Rebuild.Builder.CacheReset = "discarded: blob sha256:abc… does not match its digest"
	info.Rebuild.Builder.RootFS = "tmpfs"
	st, err := Provenance(info)
	if err != nil {
		t.Fatal(err)
	}
	prov, err := verify.ProvenancePredicate(st)
	if err != nil {
		t.Fatal(err)
	}
	var buildkitd map[string]any
	for _, d := range prov.GetRunDetails().GetBuilder().GetBuilderDependencies() {
		if d.GetName() == "buildkitd" {
			buildkitd = d.GetAnnotations().AsMap()
		}
	}
	if buildkitd["cache"] != "warm" || buildkitd["cacheScope"] != "https://github.com/example/hello" {
		t.Errorf("build's buildkitd annotations %v: want cache warm with its scope", buildkitd)
	}
	rb := prov.GetRunDetails().GetByproducts()[0].GetAnnotations().AsMap()
	if rb["cache"] != "cold" || rb["rootFS"] != "tmpfs" || !strings.Contains(fmt.Sprint(rb["cacheReset"]), "does not match") {
		t.Errorf("rebuild annotations %v: want cache cold, rootFS tmpfs and why the cache was reset", rb)
	}

}
