package sbom

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// testImage is an image with a Debian package database, an Alpine one in
// a later layer whose first version a whiteout removes, and a Go binary
// (this test's own executable).
func testImage(t *testing.T, extra map[string]string) v1.Image {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]string{
		"etc/os-release":       "PRETTY_NAME=\"Debian GNU/Linux 12\"\nID=debian\n",
		"var/lib/dpkg/status":  "Package: openssl\nStatus: install ok installed\nArchitecture: amd64\nVersion: 1.1.1k-1\nDescription: old\n multi-line\n\nPackage: removed\nStatus: deinstall ok config-files\nVersion: 1.0\n\nPackage: libc6\nStatus: install ok installed\nArchitecture: amd64\nVersion: 2.36-9\n",
		"usr/bin/app":          string(bin),
		"lib/apk/db/installed": "P:stale\nV:0.1\n\n",
	}
	for k, v := range extra {
		files[k] = v
	}
	first := layer(t, files)
	second := layer(t, map[string]string{"lib/apk/db/.wh.installed": ""})
	img, err := mutate.AppendLayers(empty.Image, first, second)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func layer(t *testing.T, files map[string]string) v1.Layer {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for name, content := range files {
		mode := int64(0o644)
		if strings.HasPrefix(name, "usr/bin/") {
			mode = 0o755
		}
		tw.WriteHeader(&tar.Header{Name: name, Mode: mode, Size: int64(len(content)), Typeflag: tar.TypeReg})
		tw.Write([]byte(content))
	}
	tw.Close()
	l, err := tarball.LayerFromReader(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestCatalogEncodeRead(t *testing.T) {
	img := testImage(t, nil)
	pkgs, err := Catalog(img)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{
		"pkg:deb/debian/openssl@1.1.1k-1?arch=amd64":                false,
		"pkg:deb/debian/libc6@2.36-9?arch=amd64":                    false,
		"pkg:golang/github.com/google/go-containerregistry@v0.22.1": false,
		"pkg:golang/github.com/package-url/packageurl-go@v0.1.7":    false,
	}
	for _, p := range pkgs {
		if _, ok := want[p.PURL]; ok {
			want[p.PURL] = true
		}
		if p.Name == "removed" || p.Name == "stale" {
			t.Errorf("catalogued %s, which is not installed", p.PURL)
		}
	}
	for purl, found := range want {
		if !found {
			t.Errorf("%s not catalogued (got %d packages)", purl, len(pkgs))
		}
	}
	d, _ := img.Digest()
	im := Image{Name: "registry.example/team/app", Digest: d.String(), Created: time.Unix(0, 0)}
	for _, format := range Formats {
		doc, err := Encode(format, im, pkgs)
		if err != nil {
			t.Fatal(err)
		}
		again, _ := Encode(format, im, pkgs)
		if !bytes.Equal(doc, again) {
			t.Errorf("%s: two encodings of the same image differ", format)
		}
		pt, _ := PredicateType(format)
		back, err := Packages(pt, doc)
		if err != nil {
			t.Fatalf("%s: %v", format, err)
		}
		// SPDX lists the image itself as a package too.
		var purls []string
		for _, p := range back {
			purls = append(purls, p.PURL)
		}
		if !strings.Contains(strings.Join(purls, " "), "pkg:deb/debian/openssl@1.1.1k-1?arch=amd64") || len(back) < len(pkgs) {
			t.Errorf("%s: read back %d packages: %v", format, len(back), purls[:min(5, len(purls))])
		}
		st, err := Statement(format, im, doc)
		if err != nil {
			t.Fatal(err)
		}
		var parsed struct {
			PredicateType string `json:"predicateType"`
			Subject       []struct{ Digest map[string]string }
		}
		if err := json.Unmarshal(st, &parsed); err != nil || parsed.PredicateType != pt || "sha256:"+parsed.Subject[0].Digest["sha256"] != im.Digest {
			t.Errorf("%s statement: %s", format, st[:min(200, len(st))])
		}
	}
	if _, err := Encode("xml", im, pkgs); err == nil {
		t.Error("an unknown format encoded")
	}
}
