package offline

import (
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"runtime"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// The references the examples' Dockerfiles use for the offline images.
const (
	BaseName   = "example.test/base"
	BaseTag    = "1"
	GolangName = "example.test/golang"
)

// DefaultBusybox is where Debian's busybox-static installs its binary.
const DefaultBusybox = "/bin/busybox"

// Base is a minimal image around a static busybox.
func Base(busybox string) (v1.Image, error) {
	entries, err := Busybox(busybox)
	if err != nil {
		return nil, err
	}
	layer, err := Layer(entries, true)
	if err != nil {
		return nil, err
	}
	return Image(v1.Config{
		Env: []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
		Cmd: []string{"/bin/sh"},
	}, v1.Platform{OS: "linux", Architecture: runtime.GOARCH}, layer)
}

// GoRoot is the GOROOT of the go command on PATH.
func GoRoot() (string, error) {
	b, err := exec.Command("go", "env", "GOROOT").Output()
	if err != nil {
		return "", fmt.Errorf("finding GOROOT: %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}

// GoVersion reads the version of the Go installation at goroot, "1.27.3".
func GoVersion(goroot string) (string, error) {
	b, err := os.ReadFile(path.Join(goroot, "VERSION"))
	if err != nil {
		return "", fmt.Errorf("reading Go version: %w", err)
	}
	first, _, _ := strings.Cut(string(b), "\n")
	return strings.TrimPrefix(first, "go"), nil
}

// Golang is a Go toolchain image for build stages: the busybox base plus
// the Go installation at goroot, pruned to what building a program needs,
// set up to build offline (no proxy, no toolchain switch, no cgo).
func Golang(busybox, goroot string) (v1.Image, error) {
	bb, err := Busybox(busybox)
	if err != nil {
		return nil, err
	}
	base, err := Layer(bb, true)
	if err != nil {
		return nil, err
	}
	gofiles, err := Tree(goroot, "usr/local/go", keepGo)
	if err != nil {
		return nil, err
	}
	toolchain, err := Layer(gofiles, false)
	if err != nil {
		return nil, err
	}
	return Image(v1.Config{
		Env: []string{
			"PATH=/usr/local/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
			"GOTOOLCHAIN=local", "GOPROXY=off", "GOFLAGS=-trimpath -buildvcs=false",
			"CGO_ENABLED=0", "GOCACHE=/tmp/go-cache", "GOPATH=/tmp/go", "HOME=/root",
		},
		WorkingDir: "/src",
	}, v1.Platform{OS: "linux", Architecture: runtime.GOARCH}, base, toolchain)
}

// keepGo drops what building a program does not need: the toolchain's own
// sources and tests, documentation, and tools a build never runs.
func keepGo(rel string, d fs.DirEntry) bool {
	top, _, _ := strings.Cut(rel, "/")
	switch top {
	case "VERSION", "go.env", "LICENSE", "bin", "pkg", "src":
	default:
		return false
	}
	base := path.Base(rel)
	switch {
	case rel == "src/cmd", rel == "bin/gofmt", base == "testdata", strings.HasSuffix(base, "_test.go"):
		return false
	case strings.HasPrefix(rel, "pkg/tool/") && !d.IsDir():
		switch base {
		case "asm", "cgo", "compile", "link", "buildid", "pack":
			return true
		}
		return false
	}
	return true
}
