package attest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/random"

	"github.com/twinforge/twinforge/attest/verify"
)

// testLayout writes a random one-image OCI layout and returns its
// directory, the image digest and the manifest bytes.
func testLayout(t testing.TB) (dir, digest string, manifest []byte) {
	t.Helper()
	dir = t.TempDir()
	img, err := random.Image(256, 1)
	if err != nil {
		t.Fatal(err)
	}
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.AppendImage(img); err != nil {
		t.Fatal(err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	manifest, err = img.RawManifest()
	if err != nil {
		t.Fatal(err)
	}
	return dir, d.String(), manifest
}

// statementFor is the fixture provenance for digest, reproduced or not.
func statementFor(t testing.TB, digest string, reproduced bool) []byte {
	t.Helper()
	return statementWith(t, digest, func(info *BuildInfo) {
		if !reproduced {
			info.Rebuild = nil
		}
	})
}

// statementWith is the fixture provenance for digest, reproduced, changed
// by edit.
func statementWith(t testing.TB, digest string, edit func(*BuildInfo)) []byte {
	t.Helper()
	info := fixtureBuildInfo(t)
	info.Subject.Digest = digest
	info.StartedOn, info.FinishedOn = time.Now().Add(-time.Minute), time.Now()
	info.Rebuild.Digest = digest
	edit(&info)
	st, err := Provenance(info)
	if err != nil {
		t.Fatal(err)
	}
	data, err := MarshalStatement(st)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// signBoth signs the provenance and the manifest of an image.
func signBoth(t testing.TB, s Signer, digest string, manifest []byte, reproduced bool) verify.Bundles {
	t.Helper()
	ctx := context.Background()
	prov, err := s.SignStatement(ctx, statementFor(t, digest, reproduced))
	if err != nil {
		t.Fatal(err)
	}
	img, err := s.SignArtifact(ctx, manifest)
	if err != nil {
		t.Fatal(err)
	}
	return verify.Bundles{Provenance: prov, Image: img}
}

// policyDoc builds a policy file's text from identity lines and extra
// top-level lines.
func policyDoc(identities []string, extra ...string) string {
	var b strings.Builder
	b.WriteString("apiVersion: twinforge.dev/v2\nkind: Policy\nidentities:\n")
	for _, id := range identities {
		b.WriteString(id)
		b.WriteString("\n")
	}
	for _, e := range extra {
		b.WriteString(e)
		b.WriteString("\n")
	}
	return b.String()
}

func certIdentity(issuer, subject string) string {
	return fmt.Sprintf("  - issuer: %q\n    subject: %q", issuer, subject)
}

func keyIdentity(path string) string {
	return fmt.Sprintf("  - publicKey: %q", path)
}

func mustPolicy(t testing.TB, doc string) *verify.Policy {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(path, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	p, err := verify.LoadPolicy(path)
	if err != nil {
		t.Fatalf("policy:\n%s\n%v", doc, err)
	}
	return p
}

// wantCheck asserts err is a *VerificationError for check.
func wantCheck(t testing.TB, err error, check string) {
	t.Helper()
	var ve *verify.VerificationError
	if !errors.As(err, &ve) {
		t.Fatalf("want a VerificationError %q, got %v", check, err)
	}
	if ve.Check != check {
		t.Fatalf("failed check = %q, want %q: %v", ve.Check, check, err)
	}
}
