// Command vendored prints a UUID: a Go service whose one dependency is
// vendored, for twinforge's module checks.
package main

import (
	"fmt"

	"github.com/google/uuid"
)

func main() { fmt.Println(uuid.NewString()) }
