// Command golang makes examples/golang/out: a Go toolchain image for the
// examples' build stages, built offline from the Go installation of the go
// command on PATH. The project pins that toolchain (GOTOOLCHAIN=go1.27.3,
// fetched through the module proxy and checked against the checksum
// database), so the image's digest is fixed too.
//
//	GOTOOLCHAIN=go1.27.3 go run ./examples/golang [-o examples/golang/out]
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/twinforge/twinforge/internal/offline"
)

func main() {
	out := flag.String("o", "examples/golang/out", "OCI layout directory to write")
	busybox := flag.String("busybox", offline.DefaultBusybox, "static busybox binary (Debian package busybox-static)")
	goroot := flag.String("goroot", "", "Go installation to pack (default: `go env GOROOT`)")
	flag.Parse()
	if err := run(*out, *busybox, *goroot); err != nil {
		fmt.Fprintln(os.Stderr, "golang:", err)
		os.Exit(1)
	}
}

func run(out, busybox, goroot string) error {
	var err error
	if goroot == "" {
		if goroot, err = offline.GoRoot(); err != nil {
			return err
		}
	}
	version, err := offline.GoVersion(goroot)
	if err != nil {
		return err
	}
	img, err := offline.Golang(busybox, goroot)
	if err != nil {
		return err
	}
	d, err := offline.WriteLayout(out, img, version)
	if err != nil {
		return err
	}
	fmt.Printf("%s %s:%s@%s\n", out, offline.GolangName, version, d)
	return nil
}
