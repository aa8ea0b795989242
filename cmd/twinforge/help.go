package main

import (
	"embed"
	"strings"
)

// The long help of each command is a text file, help/PATH.txt for the
// command path joined by "-" (help/admission-serve.txt), so that it reads
// and diffs as the text it is, and the Go files stay about flags.
//
//go:embed help/*.txt
var helpFiles embed.FS

// helpText is the Description in help/name.txt. The file's final newline is
// not part of it: the help template adds its own.
func helpText(name string) string {
	b, err := helpFiles.ReadFile("help/" + name + ".txt")
	if err != nil {
		// Only a mistyped name gets here, and TestHelpGolden catches it.
		panic("twinforge: no help text " + name + ": " + err.Error())
	}
	return strings.TrimSuffix(string(b), "\n")
}
