package main

import (
	"encoding/json"
	"io"
)

// textWriter is a result that writes itself as text; as --output json it
// is the value itself.
type textWriter interface {
	WriteText(w io.Writer) error
}

// writeOutput writes a result in the --output format: text or json.
func writeOutput(w io.Writer, format string, v textWriter) error {
	if format == "json" {
		return writeJSON(w, v)
	}
	return v.WriteText(w)
}

// writeJSON writes v as indented JSON.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
