package hermetic

import (
	"errors"
	"strings"
	"testing"

	"github.com/moby/buildkit/client/llb"
	"github.com/moby/buildkit/solver/pb"
	"github.com/moby/buildkit/sourcepolicy"
	spb "github.com/moby/buildkit/sourcepolicy/pb"
	digest "github.com/opencontainers/go-digest"
)

const (
	lockedImage = "sha256:1111111111111111111111111111111111111111111111111111111111111111"
	otherImage  = "sha256:2222222222222222222222222222222222222222222222222222222222222222"
	urlDigest   = "sha256:3333333333333333333333333333333333333333333333333333333333333333"
	gitCommit   = "4444444444444444444444444444444444444444"
)

func policyLock() *Lock {
	return &Lock{
		SchemaVersion: SchemaVersion,
		Source:        Source{Kind: SourceKindTree, Digest: emptySHA},
		Dockerfile:    File{Path: "Dockerfile", Digest: emptySHA},
		Platform:      "linux/amd64",
		Images:        []Image{{Name: "example.test/base:1", Digest: lockedImage, Location: "oci-layout:images/base"}},
		URLs:          []URL{{URL: "https://example.test/file.tgz", Digest: urlDigest}},
		Git:           []GitSource{{Remote: "https://example.test/org/repo.git", Ref: "main", Commit: gitCommit}},
	}
}

// sourceOp returns the source op BuildKit's own LLB client builds for st, so
// the identifiers tested are the real ones.
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

func TestSourcePolicy(t *testing.T) {
	l := policyLock()
	pol := l.SourcePolicy()

	tests := []struct {
		name      string
		op        *pb.SourceOp
		allowed   bool
		wantAttrs map[string]string // attrs that must be set after evaluation
		wantID    string            // identifier after evaluation ("" = unchanged)
	}{
		{name: "locked oci-layout digest", op: sourceOp(t, llb.OCILayout("example.test/base:1@"+lockedImage, llb.OCIStore("sess", "store-1"))), allowed: true},
		{name: "locked digest under another name", op: &pb.SourceOp{Identifier: "oci-layout://docker.io/library/alpine:latest@" + lockedImage}, allowed: true},
		{name: "other oci-layout digest", op: sourceOp(t, llb.OCILayout("example.test/base:1@"+otherImage, llb.OCIStore("sess", "store-1")))},
		{name: "docker-image by tag", op: sourceOp(t, llb.Image("example.test/base:1"))},
		{name: "docker-image by locked digest", op: sourceOp(t, llb.Image("example.test/base@"+lockedImage))},
		{name: "docker-image blob", op: &pb.SourceOp{Identifier: "docker-image+blob://example.test/base@" + lockedImage}},
		{name: "oci-layout blob", op: &pb.SourceOp{Identifier: "oci-layout+blob://store@" + lockedImage}},
		{name: "unlocked URL", op: sourceOp(t, llb.HTTP("https://example.test/other.tgz"))},
		{name: "unlocked http URL", op: sourceOp(t, llb.HTTP("http://example.test/file.tgz"))},
		{name: "locked URL", op: sourceOp(t, llb.HTTP("https://example.test/file.tgz")), allowed: true,
			wantAttrs: map[string]string{pb.AttrHTTPChecksum: urlDigest}},
		{name: "locked URL with another checksum is forced to the lock's", op: sourceOp(t, llb.HTTP("https://example.test/file.tgz", llb.Checksum(digest.Digest(otherImage)))), allowed: true,
			wantAttrs: map[string]string{pb.AttrHTTPChecksum: urlDigest}},
		{name: "local context", op: sourceOp(t, llb.Local("context")), allowed: true},
		{name: "local dockerfile", op: sourceOp(t, llb.Local("dockerfile")), allowed: true},
		{name: "locked git ref", op: sourceOp(t, llb.Git("https://example.test/org/repo.git", "main")), allowed: true,
			wantAttrs: map[string]string{pb.AttrGitChecksum: gitCommit}},
		{name: "locked git ref with subdir", op: sourceOp(t, llb.Git("https://example.test/org/repo.git", "main:sub/dir")), allowed: true,
			wantAttrs: map[string]string{pb.AttrGitChecksum: gitCommit}, wantID: "git://example.test/org/repo.git#main:sub/dir"},
		{name: "other git ref", op: sourceOp(t, llb.Git("https://example.test/org/repo.git", "dev"))},
		{name: "other git repo", op: sourceOp(t, llb.Git("https://example.test/org/other.git", "main"))},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := tc.op.Identifier
			_, err := sourcepolicy.NewEngine([]*spb.Policy{pol}).Evaluate(t.Context(), tc.op)
			if tc.allowed && err != nil {
				t.Fatalf("%s denied: %v", before, err)
			}
			if !tc.allowed {
				if !errors.Is(err, sourcepolicy.ErrSourceDenied) {
					t.Fatalf("%s: want denied, got %v", before, err)
				}
				return
			}
			for k, v := range tc.wantAttrs {
				if tc.op.Attrs[k] != v {
					t.Errorf("attr %s = %q, want %q (attrs %v)", k, tc.op.Attrs[k], v, tc.op.Attrs)
				}
			}
			wantID := tc.wantID
			if wantID == "" {
				wantID = before
			}
			if tc.op.Identifier != wantID {
				t.Errorf("identifier = %s, want %s", tc.op.Identifier, wantID)
			}
		})
	}
}

func TestSourcePolicyEmptyLockDeniesRemote(t *testing.T) {
	pol := (&Lock{}).SourcePolicy()
	e := sourcepolicy.NewEngine([]*spb.Policy{pol})
	for _, id := range []string{"docker-image://docker.io/library/busybox:latest", "https://example.test/x", "git://example.test/x.git"} {
		if _, err := e.Evaluate(t.Context(), &pb.SourceOp{Identifier: id}); !errors.Is(err, sourcepolicy.ErrSourceDenied) {
			t.Errorf("%s: want denied, got %v", id, err)
		}
	}
	if _, err := e.Evaluate(t.Context(), &pb.SourceOp{Identifier: "local://context"}); err != nil {
		t.Errorf("local denied: %v", err)
	}
}

func TestVerify(t *testing.T) {
	l := policyLock()
	df := []byte("FROM example.test/base:1 AS b\n" +
		"ADD https://example.test/file.tgz /f\n" +
		"ADD https://example.test/org/repo.git#main /r\n" +
		"FROM b\nCOPY --from=example.test/tools:2 / /\n" +
		"ADD https://example.test/new.tgz /n\n")
	a, err := AnalyzeDockerfile(df, l.BuildArgs, l.Target, l.Platform)
	if err != nil {
		t.Fatal(err)
	}
	err = l.Verify(a)
	if !errors.Is(err, ErrNotPinned) {
		t.Fatalf("want ErrNotPinned, got %v", err)
	}
	wantErrContains(t, err, "image example.test/tools:2 (Dockerfile line 5", "URL https://example.test/new.tgz (Dockerfile line 6)")
	if strings.Contains(err.Error(), "base:1") || strings.Contains(err.Error(), "file.tgz") || strings.Contains(err.Error(), "repo.git") {
		t.Errorf("pinned inputs reported: %v", err)
	}

	l.Images = append(l.Images, Image{Name: "example.test/tools:2", Digest: otherImage, Location: "oci-layout:tools"})
	l.URLs = append(l.URLs, URL{URL: "https://example.test/new.tgz", Digest: urlDigest})
	if err := l.Verify(a); err != nil {
		t.Errorf("fully pinned: %v", err)
	}
	// Normalised names match: alpine == docker.io/library/alpine:latest.
	l.Images = append(l.Images, Image{Name: "docker.io/library/alpine:latest", Digest: otherImage, Location: "oci-layout:alpine"})
	a2, err := AnalyzeDockerfile([]byte("FROM alpine\n"), nil, "", "linux/amd64")
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Verify(a2); err != nil {
		t.Errorf("normalised name: %v", err)
	}
}
