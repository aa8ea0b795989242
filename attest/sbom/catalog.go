package sbom

import (
	"archive/tar"
	"bytes"
	"debug/buildinfo"
	"errors"
	"fmt"
	"io"
	"path"
	"sort"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/package-url/packageurl-go"
)

// Package types.
const (
	TypeGolang = "golang"
	TypeDeb    = "deb"
	TypeApk    = "apk"
)

// Package is one package found in an image.
type Package struct {
	// Type is TypeGolang, TypeDeb or TypeApk.
	Type    string `json:"type"`
	Name    string `json:"name"`
	Version string `json:"version"`
	// PURL is the package URL.
	PURL string `json:"purl"`
	// Location is the file it was found in, without a leading slash.
	Location string `json:"location"`
	// Checksum is the Go module sum ("h1:..."), when the binary records
	// it.
	Checksum string `json:"checksum,omitempty"`
	// Arch is a Debian or Alpine package's architecture.
	Arch string `json:"arch,omitempty"`
	// Distro is the distribution (debian, ubuntu, alpine) of an OS package,
	// from etc/os-release.
	Distro string `json:"distro,omitempty"`
}

// maxBinaryBytes bounds the executables read for Go build info.
const maxBinaryBytes = 256 << 20

// Catalog lists the packages in an image, sorted by PURL and location.
func Catalog(img v1.Image) ([]Package, error) {
	rc := mutate.Extract(img)
	defer rc.Close()
	tr := tar.NewReader(rc)
	var out []Package
	var dpkg, apk [][]byte
	var dpkgAt, apkAt []string
	osID := ""
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("reading the image's filesystem: %w", err)
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		p := strings.TrimPrefix(path.Clean("/"+h.Name), "/")
		switch {
		case p == "var/lib/dpkg/status" || (strings.HasPrefix(p, "var/lib/dpkg/status.d/") && !strings.HasSuffix(p, ".md5sums")):
			data, err := readDatabase(tr, h, p)
			if err != nil {
				return nil, err
			}
			dpkg, dpkgAt = append(dpkg, data), append(dpkgAt, p)
		case p == "lib/apk/db/installed":
			data, err := readDatabase(tr, h, p)
			if err != nil {
				return nil, err
			}
			apk, apkAt = append(apk, data), append(apkAt, p)
		case p == "etc/os-release" || p == "usr/lib/os-release":
			data, err := io.ReadAll(io.LimitReader(tr, 1<<20))
			if err != nil {
				return nil, err
			}
			if id := osReleaseID(data); id != "" && (osID == "" || p == "etc/os-release") {
				osID = id
			}
		case h.Mode&0o111 != 0 && h.Size > 4 && h.Size <= maxBinaryBytes:
			data, err := io.ReadAll(tr)
			if err != nil {
				return nil, err
			}
			out = append(out, goBinary(p, data)...)
		}
	}
	for i, d := range dpkg {
		out = append(out, parseDpkg(d, dpkgAt[i], distroOr(osID, "debian"))...)
	}
	for i, d := range apk {
		out = append(out, parseApk(d, apkAt[i], distroOr(osID, "alpine"))...)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].PURL != out[j].PURL {
			return out[i].PURL < out[j].PURL
		}
		return out[i].Location < out[j].Location
	})
	return out, nil
}

// maxDatabaseBytes bounds a package database read whole.
const maxDatabaseBytes = 64 << 20

// readDatabase reads a package database whole: one too large to read is
// an error, since cutting it short would leave packages out of the SBOM.
func readDatabase(r io.Reader, h *tar.Header, p string) ([]byte, error) {
	if h.Size > maxDatabaseBytes {
		return nil, fmt.Errorf("package database %s is %d bytes, more than the %d read", p, h.Size, maxDatabaseBytes)
	}
	return io.ReadAll(r)
}

func distroOr(id, def string) string {
	if id != "" {
		return id
	}
	return def
}

// goBinary reads the modules a Go executable was built from.
func goBinary(p string, data []byte) []Package {
	if !bytes.HasPrefix(data, []byte("\x7fELF")) && !bytes.HasPrefix(data, []byte("MZ")) && !bytes.HasPrefix(data, []byte{0xcf, 0xfa, 0xed, 0xfe}) {
		return nil
	}
	bi, err := buildinfo.Read(bytes.NewReader(data))
	if err != nil {
		return nil
	}
	var out []Package
	add := func(mpath, version, sum string) {
		if mpath == "" || version == "" || version == "(devel)" {
			return
		}
		ns, name := path.Split(mpath)
		purl := packageurl.NewPackageURL(TypeGolang, strings.TrimSuffix(ns, "/"), name, version, nil, "").ToString()
		out = append(out, Package{Type: TypeGolang, Name: mpath, Version: version, PURL: purl, Location: p, Checksum: sum})
	}
	add(bi.Main.Path, bi.Main.Version, bi.Main.Sum)
	for _, d := range bi.Deps {
		if d.Replace != nil {
			d = d.Replace
		}
		add(d.Path, d.Version, d.Sum)
	}
	add("stdlib", strings.TrimPrefix(bi.GoVersion, "go"), "")
	return out
}

// parseDpkg reads a dpkg status file: installed packages only.
func parseDpkg(data []byte, at, distro string) []Package {
	var out []Package
	for _, para := range paragraphs(data) {
		if st := para["Status"]; st != "" && !strings.HasSuffix(st, " installed") {
			continue
		}
		name, version, arch := para["Package"], para["Version"], para["Architecture"]
		if name == "" || version == "" {
			continue
		}
		q := packageurl.Qualifiers{}
		if arch != "" {
			q = append(q, packageurl.Qualifier{Key: "arch", Value: arch})
		}
		purl := packageurl.NewPackageURL(TypeDeb, distro, name, version, q, "").ToString()
		out = append(out, Package{Type: TypeDeb, Name: name, Version: version, PURL: purl, Location: at, Arch: arch, Distro: distro})
	}
	return out
}

// paragraphs splits an RFC 822-style file (dpkg status) into fields;
// continuation lines are dropped.
func paragraphs(data []byte) []map[string]string {
	var out []map[string]string
	cur := map[string]string{}
	// Lines of any length: a scanner's limit would end the file early
	// and hide the packages after a long description.
	for _, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSuffix(line, "\r")
		if strings.TrimSpace(line) == "" {
			if len(cur) > 0 {
				out = append(out, cur)
				cur = map[string]string{}
			}
			continue
		}
		if line[0] == ' ' || line[0] == '\t' {
			continue
		}
		if k, v, ok := strings.Cut(line, ":"); ok {
			cur[k] = strings.TrimSpace(v)
		}
	}
	if len(cur) > 0 {
		out = append(out, cur)
	}
	return out
}

// parseApk reads an apk installed database (P: name, V: version, A: arch).
func parseApk(data []byte, at, distro string) []Package {
	var out []Package
	var name, version, arch string
	flush := func() {
		if name != "" && version != "" {
			q := packageurl.Qualifiers{}
			if arch != "" {
				q = append(q, packageurl.Qualifier{Key: "arch", Value: arch})
			}
			purl := packageurl.NewPackageURL(TypeApk, distro, name, version, q, "").ToString()
			out = append(out, Package{Type: TypeApk, Name: name, Version: version, PURL: purl, Location: at, Arch: arch, Distro: distro})
		}
		name, version, arch = "", "", ""
	}
	for _, line := range strings.Split(string(data), "\n") {
		switch {
		case strings.TrimSpace(line) == "":
			flush()
		case strings.HasPrefix(line, "P:"):
			name = line[2:]
		case strings.HasPrefix(line, "V:"):
			version = line[2:]
		case strings.HasPrefix(line, "A:"):
			arch = line[2:]
		}
	}
	flush()
	return out
}

func osReleaseID(data []byte) string {
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "ID="); ok {
			return strings.ToLower(strings.Trim(strings.TrimSpace(v), `"'`))
		}
	}
	return ""
}
