package hermetic

import (
	"errors"
	"slices"
	"testing"
)

func imageNames(a *Analysis) []string {
	var out []string
	for _, im := range a.Images {
		out = append(out, im.Name)
	}
	return out
}

func TestAnalyzeImages(t *testing.T) {
	df := readTestdata(t, "dockerfiles/args.Dockerfile")
	tests := []struct {
		name      string
		buildArgs map[string]string
		platform  string
		want      []string
	}{
		{"defaults", nil, "linux/amd64", []string{"example.test/base:1", "example.test/runtime:amd64", "example.test/tools:2", "example.test/cache-src:3"}},
		{"build-arg override", map[string]string{"BASE_TAG": "2", "REGISTRY": "mirror.test"}, "linux/arm64", []string{"mirror.test/base:2", "mirror.test/runtime:arm64", "example.test/tools:2", "example.test/cache-src:3"}},
		{"platform arg override", map[string]string{"TARGETARCH": "riscv64"}, "linux/amd64", []string{"example.test/base:1", "example.test/runtime:riscv64", "example.test/tools:2", "example.test/cache-src:3"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, err := AnalyzeDockerfile(df, tc.buildArgs, "", tc.platform)
			if err != nil {
				t.Fatal(err)
			}
			if got := imageNames(a); !slices.Equal(got, tc.want) {
				t.Errorf("images = %q, want %q", got, tc.want)
			}
		})
	}
	a, err := AnalyzeDockerfile(df, nil, "", "linux/amd64")
	if err != nil {
		t.Fatal(err)
	}
	wantLines := []ImageUse{
		{Name: "example.test/base:1", Line: 3, Instruction: "FROM"},
		{Name: "example.test/runtime:amd64", Line: 9, Instruction: "FROM"},
		{Name: "example.test/tools:2", Line: 11, Instruction: "COPY --from"},
		{Name: "example.test/cache-src:3", Line: 13, Instruction: "RUN --mount"},
	}
	if !slices.Equal(a.Images, wantLines) {
		t.Errorf("image uses = %+v, want %+v", a.Images, wantLines)
	}
}

func TestAnalyzeStageArgs(t *testing.T) {
	df := []byte(`ARG IMG=example.test/a:1
FROM ${IMG}
ARG IMG
ARG SRC=https://example.test/${IMG}.tgz
ENV DIR=/opt
ADD ${SRC} ${DIR}/
`)
	a, err := AnalyzeDockerfile(df, nil, "", "linux/amd64")
	if err != nil {
		t.Fatal(err)
	}
	if len(a.URLs) != 1 || a.URLs[0].URL != "https://example.test/example.test/a:1.tgz" || a.URLs[0].Line != 6 {
		t.Fatalf("URLs = %+v", a.URLs)
	}
}

func TestAnalyzeInputsAndFindings(t *testing.T) {
	a, err := AnalyzeDockerfile(readTestdata(t, "dockerfiles/inputs.Dockerfile"), map[string]string{"FILE_VERSION": "2.0"}, "", "linux/amd64")
	if err != nil {
		t.Fatal(err)
	}
	wantURLs := []URLUse{
		{URL: "https://example.test/files/tool-2.0.tar.gz", Line: 4},
		{URL: "https://example.test/empty", Checksum: emptySHA, Line: 5},
	}
	if !slices.Equal(a.URLs, wantURLs) {
		t.Errorf("URLs = %+v, want %+v", a.URLs, wantURLs)
	}
	if len(a.Git) != 2 {
		t.Fatalf("git = %+v", a.Git)
	}
	if g := a.Git[0]; g.Remote != "https://example.test/repo.git" || g.Ref != "v1.0" || g.SubDir != "sub" || g.Line != 6 {
		t.Errorf("git[0] = %+v", g)
	}
	if g := a.Git[1]; g.Remote != "git@example.test:org/other.git" || g.Ref != "0123456789abcdef0123456789abcdef01234567" {
		t.Errorf("git[1] = %+v", g)
	}
	wantFindings := []Finding{
		{Kind: FindingSyntax, Value: "docker/dockerfile:1.7", Line: 1},
		{Kind: FindingNetwork, Value: "host", Line: 8},
		{Kind: FindingSecurity, Value: "insecure", Line: 10},
		{Kind: FindingMount, Value: "secret", Line: 11},
		{Kind: FindingMount, Value: "cache", Line: 11},
		{Kind: FindingMount, Value: "ssh", Line: 11},
	}
	if !slices.Equal(a.Findings, wantFindings) {
		t.Errorf("findings = %+v, want %+v", a.Findings, wantFindings)
	}
}

func TestAnalyzeErrors(t *testing.T) {
	tests := []struct {
		name   string
		df     string
		target string
		want   []string
	}{
		{"syntax error", string(readTestdata(t, "dockerfiles/syntax-error.Dockerfile")), "", []string{"Dockerfile:3:", "unknown instruction"}},
		{"bad flag", "FROM example.test/a:1\n\nRUN --network=moon true\n", "", []string{"Dockerfile:3:", "moon"}},
		{"empty", "\n\n", "", []string{"empty"}},
		{"no stages", "ARG A=1\n", "", []string{"no stages"}},
		{"unknown target", "FROM example.test/a:1 AS one\n", "two", []string{`"two"`}},
		{"blank base", "ARG B\nFROM ${B}\n", "", []string{"Dockerfile:2:", "blank"}},
		{"copy from variable", "FROM example.test/a:1\nARG X=y\nCOPY --from=$X / /\n", "", []string{"Dockerfile:3:", "variable expansion"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := AnalyzeDockerfile([]byte(tc.df), nil, tc.target, "linux/amd64")
			wantErrContains(t, err, tc.want...)
		})
	}
	var dfe *dockerfileError
	_, err := AnalyzeDockerfile(readTestdata(t, "dockerfiles/syntax-error.Dockerfile"), nil, "", "")
	if !errors.As(err, &dfe) || dfe.line != 3 {
		t.Errorf("want a line-3 Dockerfile error, got %v", err)
	}
}
