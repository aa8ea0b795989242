package attest

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/empty"
	ggcrmutate "github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/sigstore/sigstore-go/pkg/bundle"

	"github.com/twinforge/twinforge/attest/sbom"
	"github.com/twinforge/twinforge/attest/verify"
)

// TestSBOMPolicy: SBOMs generated from an image and signed like the
// provenance are read by the policy: a deliberately old package version is
// denied with the package named, a required SBOM that is missing is
// refused, and an SBOM of another image is refused.
func TestSBOMPolicy(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	keyPath, pubPath := writeKeyPair(t, key, nil)
	s, err := NewKeySigner(keyPath, nil)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	status := "Package: openssl\nStatus: install ok installed\nArchitecture: amd64\nVersion: 1.1.1k-1\n"
	tw.WriteHeader(&tar.Header{Name: "var/lib/dpkg/status", Mode: 0o644, Size: int64(len(status)), Typeflag: tar.TypeReg})
	tw.Write([]byte(status))
	tw.Close()
	layer, err := tarball.LayerFromReader(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	img, err := ggcrmutate.AppendLayers(empty.Image, layer)
	if err != nil {
		t.Fatal(err)
	}
	d, _ := img.Digest()
	manifest, _ := img.RawManifest()
	digest := d.String()
	statements, err := sbom.Generate(img, sbom.Image{Name: "registry.example/team/app", Digest: digest, Created: time.Unix(0, 0)}, sbom.Formats)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var sboms []*bundle.Bundle
	for _, f := range sbom.Formats {
		b, err := s.SignStatement(ctx, statements[f])
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		sboms = append(sboms, b)
	}
	bundles := signBoth(t, s, digest, manifest, true)
	base := []string{"requireSignedTimestamp: false", "requireTransparencyLog: false"}
	verifyWith := func(extra []string, sboms []*bundle.Bundle) (*verify.Result, error) {
		return verify.Verify(ctx, verify.Request{Digest: digest, ImageManifest: manifest, Provenance: bundles.Provenance, Image: bundles.Image, SBOMs: sboms,
			Policy: mustPolicy(t, policyDoc([]string{keyIdentity(pubPath)}, append(append([]string{}, base...), extra...)...))})
	}
	res, err := verifyWith([]string{"requireSBOM: true", "deniedPackages:", "  - purl: pkg:deb/debian/openssl", "    versions: < 1.1.1a"}, sboms)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.SBOMs) != 2 || res.SBOMs[0].Packages == 0 {
		t.Fatalf("SBOMs %+v", res.SBOMs)
	}
	for _, rule := range []string{"    versions: < 1.1.1n", "    versions: \">= 1.1.1, < 1.1.2\"", "    versions: \"*\""} {
		_, err = verifyWith([]string{"deniedPackages:", "  - purl: pkg:deb/*/openssl", rule, "    reason: CVE-2022-0778"}, sboms)
		wantCheck(t, err, verify.CheckDeniedPackages)
		if !bytes.Contains([]byte(err.Error()), []byte("pkg:deb/debian/openssl@1.1.1k-1")) || !bytes.Contains([]byte(err.Error()), []byte("CVE-2022-0778")) {
			t.Errorf("the denial does not name the package and the rule: %v", err)
		}
	}
	_, err = verifyWith([]string{"requireSBOM: true"}, nil)
	wantCheck(t, err, verify.CheckRequireSBOM)
	// An SBOM about another image, signed by the same key.
	other, err := sbom.Generate(img, sbom.Image{Name: "x", Digest: otherDigest}, []string{sbom.SPDX})
	if err != nil {
		t.Fatal(err)
	}
	ob, err := s.SignStatement(ctx, other[sbom.SPDX])
	if err != nil {
		t.Fatal(err)
	}
	_, err = verifyWith(nil, append(sboms, ob))
	wantCheck(t, err, verify.CheckSBOM)
	if _, err := verify.ParsePolicy([]byte(policyDoc([]string{keyIdentity(pubPath)}, "deniedPackages:", "  - purl: pkg:deb/debian/openssl@1.0"))); err == nil {
		t.Error("a purl pattern with a version was accepted")
	}
}
