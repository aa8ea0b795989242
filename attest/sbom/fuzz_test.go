package sbom

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/package-url/packageurl-go"
)

// debianName is what dpkg accepts as a package name.
var debianName = regexp.MustCompile(`^[a-z0-9][a-z0-9+.-]+$`)

// installedParagraphs reads a dpkg status file the plain way, as the
// oracle of FuzzDpkgStatus: each paragraph of "Field: value" lines whose
// package is installed, by name, with its version.
func installedParagraphs(status string) map[string]string {
	out := map[string]string{}
	for _, para := range regexp.MustCompile(`\n[ \t]*\n`).Split("\n"+status+"\n", -1) {
		fields := map[string]string{}
		for _, line := range strings.Split(para, "\n") {
			if line == "" || line[0] == ' ' || line[0] == '\t' {
				continue
			}
			if k, v, ok := strings.Cut(line, ":"); ok {
				fields[k] = strings.TrimSpace(v)
			}
		}
		name, version, st := fields["Package"], fields["Version"], fields["Status"]
		if name != "" && version != "" && (st == "" || strings.HasSuffix(st, " installed")) {
			out[name] = version
		}
	}
	return out
}

// FuzzDpkgStatus: the SBOM is what deniedPackages judges, so a package the
// image's dpkg database lists as installed must come out of the
// catalogue, and out of each SBOM format read back, under a package URL
// that parses to its name and version. A package hidden there is a denied
// package let through.
func FuzzDpkgStatus(f *testing.F) {
	f.Add("Package: openssl\nStatus: install ok installed\nArchitecture: amd64\nVersion: 1.1.1k-1\nDescription: old\n multi-line\n\nPackage: removed\nStatus: deinstall ok config-files\nVersion: 1.0\n")
	f.Add("Package: libc6\nVersion: 2.36-9\n \t\nPackage: openssl\nVersion: 3.0.11-1~deb12u2\nArchitecture: arm64\n")
	f.Add("Package: g++-12\nVersion: 1:12.2.0-14\n\nPackage: lib.x+y\nVersion: 0.1+git20240101\n")
	im := Image{Name: "registry.example/team/app", Digest: "sha256:" + strings.Repeat("a", 64), Created: time.Unix(0, 0)}
	f.Fuzz(func(t *testing.T, status string) {
		want := installedParagraphs(status)
		for name, version := range want {
			if !debianName.MatchString(name) || strings.ContainsAny(version, " \t\r") {
				return // dpkg itself would not have installed it
			}
		}
		img, err := mutate.AppendLayers(empty.Image, layer(t, map[string]string{"etc/os-release": "ID=debian\n", "var/lib/dpkg/status": status}))
		if err != nil {
			t.Fatal(err)
		}
		pkgs, err := Catalog(img)
		if err != nil {
			t.Fatal(err)
		}
		lists := map[string][]Package{"catalogue": pkgs}
		for _, format := range Formats {
			doc, err := Encode(format, im, pkgs)
			if err != nil {
				t.Fatalf("%s: %v", format, err)
			}
			pt, _ := PredicateType(format)
			back, err := Packages(pt, doc)
			if err != nil {
				t.Fatalf("%s read back: %v", format, err)
			}
			lists[format] = back
		}
		for name, version := range want {
			for where, list := range lists {
				found := false
				for _, p := range list {
					u, err := packageurl.FromString(p.PURL)
					found = found || (err == nil && u.Type == TypeDeb && u.Name == name && u.Version == version)
				}
				if !found {
					t.Fatalf("installed package %s %s is not in the %s", name, version, where)
				}
			}
		}
	})
}

// TestCatalogLongLines: a description longer than a line scanner takes
// hides none of the packages after it.
func TestCatalogLongLines(t *testing.T) {
	status := "Package: filler\nVersion: 1\nDescription: " + strings.Repeat("x", 1<<20+10) + "\n\nPackage: openssl\nVersion: 1.1.1k-1\n"
	pkgs, err := Catalog(testImage(t, map[string]string{"var/lib/dpkg/status": status}))
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, p := range pkgs {
		found = found || p.Name == "openssl"
	}
	if !found {
		t.Fatal("openssl, listed after a long line, is not catalogued")
	}
}
