// Command base makes examples/base/out: a minimal image around Debian's
// static busybox, the base of the examples, built offline and byte for
// byte the same on every run so its digest is fixed.
//
//	go run ./examples/base [-o examples/base/out] [-busybox /bin/busybox]
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/twinforge/twinforge/internal/offline"
)

func main() {
	out := flag.String("o", "examples/base/out", "OCI layout directory to write")
	busybox := flag.String("busybox", offline.DefaultBusybox, "static busybox binary (Debian package busybox-static)")
	flag.Parse()
	img, err := offline.Base(*busybox)
	if err == nil {
		var d fmt.Stringer
		if d, err = offline.WriteLayout(*out, img, offline.BaseTag); err == nil {
			fmt.Printf("%s %s:%s@%s\n", *out, offline.BaseName, offline.BaseTag, d)
			return
		}
	}
	fmt.Fprintln(os.Stderr, "base:", err)
	os.Exit(1)
}
