package attest

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/twinforge/twinforge/attest/verify"
)

func TestWriteReadBundles(t *testing.T) {
	v := newVirtualStack(t)
	dir, digest, manifest := testLayout(t)

	// Unsigned: nothing to read, no error.
	bs, err := verify.ReadBundles(dir)
	if err != nil || bs.Provenance != nil || bs.Image != nil {
		t.Fatalf("unsigned layout: %+v, %v", bs, err)
	}

	first := signBoth(t, virtualSigner(t, v), digest, manifest, true)
	if err := verify.WriteBundles(dir, first); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{verify.ProvenanceFile, verify.ImageFile} {
		data, err := os.ReadFile(filepath.Join(dir, verify.AttestationsDir, name))
		if err != nil {
			t.Fatal(err)
		}
		var doc struct {
			MediaType string `json:"mediaType"`
		}
		if err := json.Unmarshal(data, &doc); err != nil || doc.MediaType != verify.BundleMediaType {
			t.Errorf("%s: media type %q (%v)", name, doc.MediaType, err)
		}
	}
	// Other files in the directory survive a rewrite.
	extra := filepath.Join(dir, verify.AttestationsDir, "sbom.spdx.json")
	if err := os.WriteFile(extra, []byte("{}"), 0o644); err != nil {
		t.Fatal(err)
	}
	second := signBoth(t, virtualSigner(t, v), digest, manifest, false)
	if err := verify.WriteBundles(dir, second); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(extra); err != nil {
		t.Errorf("other attestation lost: %v", err)
	}
	read, err := verify.ReadBundles(dir)
	if err != nil {
		t.Fatal(err)
	}
	res, err := verify.Verify(context.Background(), verify.Request{Digest: digest, Provenance: read.Provenance, Image: read.Image, TrustedRoot: v.trusted, Policy: virtualPolicy(t, v)})
	if err != nil {
		t.Fatal(err)
	}
	if res.Reproduced {
		t.Error("read the first bundles back, not the second")
	}
	// No temporary directories are left behind.
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") {
			t.Errorf("left behind: %s", e.Name())
		}
	}
}

func TestWriteBundlesRefusals(t *testing.T) {
	v := newVirtualStack(t)
	dir, digest, manifest := testLayout(t)
	bs := signBoth(t, virtualSigner(t, v), digest, manifest, true)
	tests := []struct {
		name string
		dir  string
		b    verify.Bundles
		want string
	}{
		{"only one bundle", dir, verify.Bundles{Provenance: bs.Provenance}, "both"},
		{"not a layout", t.TempDir(), bs, "not an OCI layout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := verify.WriteBundles(tt.dir, tt.b)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error = %v", err)
			}
			if _, err := os.Stat(filepath.Join(tt.dir, verify.AttestationsDir)); !os.IsNotExist(err) {
				t.Error("something was written")
			}
		})
	}
	// A read-only layout: the earlier pair stays whole.
	if os.Geteuid() != 0 {
		if err := verify.WriteBundles(dir, bs); err != nil {
			t.Fatal(err)
		}
		os.Chmod(dir, 0o555)
		defer os.Chmod(dir, 0o755)
		if err := verify.WriteBundles(dir, bs); err == nil {
			t.Error("wrote into a read-only layout")
		}
	}
}

func TestReadBundlesMalformed(t *testing.T) {
	dir, _, _ := testLayout(t)
	os.MkdirAll(filepath.Join(dir, verify.AttestationsDir), 0o755)
	os.WriteFile(filepath.Join(dir, verify.AttestationsDir, verify.ProvenanceFile), []byte(`{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json"}`), 0o644)
	if _, err := verify.ReadBundles(dir); err == nil || !strings.Contains(err.Error(), "parsing bundle") {
		t.Errorf("error = %v", err)
	}
}

func TestLayoutHelpers(t *testing.T) {
	dir, digest, manifest := testLayout(t)
	got, err := verify.ImageDigest(dir)
	if err != nil || got != digest {
		t.Fatalf("ImageDigest = %s, %v", got, err)
	}
	if _, err := verify.ReadManifest(dir, otherDigest); err == nil {
		t.Error("read a blob that is not there")
	}
	// A blob whose content does not match its name.
	os.WriteFile(filepath.Join(dir, "blobs", "sha256", hexOf(digest)), append(manifest, ' '), 0o644)
	if _, err := verify.ReadManifest(dir, digest); err == nil || !strings.Contains(err.Error(), "does not match") {
		t.Errorf("tampered blob: %v", err)
	}
	if _, err := verify.ImageDigest(t.TempDir()); err == nil {
		t.Error("digest of a directory without index.json")
	}
}

func TestSignBuildAndDescribe(t *testing.T) {
	v := newVirtualStack(t)
	_, digest, manifest := testLayout(t)
	bs, err := SignBuild(context.Background(), virtualSigner(t, v), statementFor(t, digest, true), manifest)
	if err != nil {
		t.Fatal(err)
	}
	prov, err := verify.Describe(bs.Provenance)
	if err != nil {
		t.Fatal(err)
	}
	if prov.Statement == nil || !verify.SubjectHasDigest(prov.Statement, digest) || prov.Signer.Subject != testSubject || len(prov.Timestamps) != 1 || prov.MediaType != verify.BundleMediaType {
		t.Errorf("provenance = %+v", prov)
	}
	img, err := verify.Describe(bs.Image)
	if err != nil {
		t.Fatal(err)
	}
	if img.MessageDigest != digest || img.Statement != nil {
		t.Errorf("image = %+v", img)
	}
	// One failing signature fails both.
	v.mu.Lock()
	v.tsaCode = 500
	v.mu.Unlock()
	if bs, err := SignBuild(context.Background(), virtualSigner(t, v), statementFor(t, digest, true), manifest); err == nil || bs.Provenance != nil || bs.Image != nil {
		t.Errorf("SignBuild with a failing TSA = %+v, %v", bs, err)
	}
}
