package hermetic

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const emptySHA = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

func TestParseValidRoundTrip(t *testing.T) {
	data := readTestdata(t, "locks/valid.json")
	l, err := Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	if l.Images[0].Name != "example.test/base:1" || l.Git[0].Commit != "0123456789abcdef0123456789abcdef01234567" {
		t.Fatalf("unexpected lock: %+v", l)
	}
	out, err := l.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out, data) {
		t.Errorf("Marshal does not reproduce the canonical file:\n%s\nwant:\n%s", out, data)
	}
}

func TestParseErrors(t *testing.T) {
	valid := string(readTestdata(t, "locks/valid.json"))
	tests := []struct {
		name string
		data string
		is   error
		want []string
	}{
		{"malformed", string(readTestdata(t, "locks/malformed.json")), ErrInvalidLock, []string{"line 6:"}},
		{"unknown field", string(readTestdata(t, "locks/unknown-field.json")), ErrInvalidLock, []string{`"imagez"`, "line 8"}},
		{"unknown schema", string(readTestdata(t, "locks/schema2.json")), ErrUnsupportedSchema, []string{"schemaVersion 2", "supported: 1"}},
		{"unpinned image", string(readTestdata(t, "locks/unpinned-image.json")), ErrInvalidLock, []string{"example.test/base:1", "unpinned"}},
		{"empty", "", ErrInvalidLock, []string{"empty"}},
		{"wrong type", strings.Replace(valid, `"sourceDateEpoch": 0`, `"sourceDateEpoch": "zero"`, 1), ErrInvalidLock, []string{"sourceDateEpoch", "line 35:"}},
		{"trailing data", valid + "{}", ErrInvalidLock, []string{"after the lock"}},
		{"missing schema", strings.Replace(valid, `"schemaVersion": 1,`, ``, 1), ErrInvalidLock, []string{"schemaVersion"}},
		{"uppercase digest", strings.Replace(valid, "sha256:e3b0c4", "sha256:E3B0C4", 1), ErrInvalidLock, []string{"source.digest"}},
		{"short digest", strings.Replace(valid, `"digest": "`+emptySHA+`",
      "location"`, `"digest": "sha256:abc",
      "location"`, 1), ErrInvalidLock, []string{"images[0].digest"}},
		{"bad image name", strings.Replace(valid, "example.test/base:1", "Example.test/BASE::1", 1), ErrInvalidLock, []string{"images[0].name"}},
		{"bad location", strings.Replace(valid, "oci-layout:images/base", "somewhere", 1), ErrInvalidLock, []string{"images[0].location"}},
		{"short commit", strings.Replace(valid, "0123456789abcdef0123456789abcdef01234567", "0123456", 1), ErrInvalidLock, []string{"git[0].commit"}},
		{"url without digest", strings.Replace(valid, `"url": "https://example.test/file.tar.gz",
      "digest": "`+emptySHA+`"`, `"url": "https://example.test/file.tar.gz",
      "digest": ""`, 1), ErrInvalidLock, []string{"https://example.test/file.tar.gz", "not pinned"}},
		{"bad platform", strings.Replace(valid, `"linux/amd64"`, `"linux"`, 1), ErrInvalidLock, []string{"platform"}},
		{"bad kind", strings.Replace(valid, `"kind": "tree"`, `"kind": "svn"`, 1), ErrInvalidLock, []string{"source.kind"}},
		{"absolute dockerfile", strings.Replace(valid, `"path": "Dockerfile"`, `"path": "/Dockerfile"`, 1), ErrInvalidLock, []string{"dockerfile.path"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.data))
			wantErrContains(t, err, tc.want...)
			if !errors.Is(err, tc.is) {
				t.Errorf("error %v does not wrap %v", err, tc.is)
			}
		})
	}
}

func TestParseFilesDigestMustMatch(t *testing.T) {
	dir := copyTree(t, "testdata/context")
	digest, files, err := ContextDigest(dir, "Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	l := &Lock{
		SchemaVersion: SchemaVersion,
		Source:        Source{Kind: SourceKindTree, Digest: digest},
		Dockerfile:    File{Path: "Dockerfile", Digest: emptySHA},
		Platform:      "linux/amd64",
		Files:         files,
	}
	data, err := l.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Parse(data); err != nil {
		t.Fatal(err)
	}
	tampered := bytes.Replace(data, []byte(`"0644"`), []byte(`"0755"`), 1)
	_, err = Parse(tampered)
	wantErrContains(t, err, "source.digest", "edited by hand")
}

func TestLoad(t *testing.T) {
	missing := filepath.Join(t.TempDir(), DefaultFileName)
	_, err := Load(missing)
	if !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("want ErrNotExist, got %v", err)
	}
	wantErrContains(t, err, missing, "twinforge lock")

	bad := filepath.Join(t.TempDir(), DefaultFileName)
	if err := os.WriteFile(bad, readTestdata(t, "locks/malformed.json"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = Load(bad)
	wantErrContains(t, err, bad, "line 6")

	l, err := Load(filepath.Join("testdata", "locks", "valid.json"))
	if err != nil || l.Platform != "linux/amd64" {
		t.Fatalf("Load valid: %v %+v", err, l)
	}
}

func TestMarshalSortsAndIsDeterministic(t *testing.T) {
	l := &Lock{
		SchemaVersion: SchemaVersion,
		Source:        Source{Kind: SourceKindTree, Digest: emptySHA},
		Dockerfile:    File{Path: "Dockerfile", Digest: emptySHA},
		Platform:      "linux/arm64",
		BuildArgs:     map[string]string{"B": "2", "A": "<&>"},
		Images: []Image{
			{Name: "example.test/z:1", Digest: emptySHA, Location: "oci-layout:z"},
			{Name: "example.test/a:1", Digest: emptySHA, Location: "registry:example.test/a@" + emptySHA},
		},
		URLs: []URL{{URL: "https://b.test/x", Digest: emptySHA}, {URL: "https://a.test/x", Digest: emptySHA}},
	}
	a, err := l.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	b, err := l.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, b) {
		t.Fatal("Marshal is not deterministic")
	}
	s := string(a)
	if !strings.HasSuffix(s, "}\n") || !strings.Contains(s, "\n  \"source\": {\n    \"kind\"") {
		t.Errorf("unexpected formatting:\n%s", s)
	}
	if strings.Index(s, "example.test/a:1") > strings.Index(s, "example.test/z:1") || strings.Index(s, "a.test") > strings.Index(s, "b.test") {
		t.Errorf("slices not sorted:\n%s", s)
	}
	if !strings.Contains(s, `"A": "<&>"`) {
		t.Errorf("HTML escaping should be off:\n%s", s)
	}
	if l.Images[0].Name != "example.test/z:1" {
		t.Error("Marshal must not reorder the caller's slices")
	}
}
