// Command hello is the example program twinforge builds from source: it
// prints a greeting and the build's own identity when it has one.
package main

import (
	"fmt"
	"os"
	"runtime"
)

func main() {
	name := "world"
	if len(os.Args) > 1 {
		name = os.Args[1]
	}
	fmt.Printf("hello, %s, from a reproducible build (%s, %s/%s)\n", name, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}
