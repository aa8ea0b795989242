// Package textout writes a command's result in the format asked for: the
// table its WriteText writes, or the value itself as indented JSON. The
// result types of the libraries (pipeline.Output, audit.Report,
// distribute.PushResult, ...) implement WriteText and are their own JSON
// document, so that the CLI and the libraries that show a workflow's
// outcome write it the same way.
package textout

import (
	"encoding/json"
	"io"
)

// TextWriter is a result that writes itself as text.
type TextWriter interface {
	WriteText(w io.Writer) error
}

// Write writes v in format: "json" writes v as indented JSON, anything
// else (the callers check the format first) as text.
func Write(w io.Writer, format string, v TextWriter) error {
	if format == "json" {
		return JSON(w, v)
	}
	return v.WriteText(w)
}

// JSON writes v as indented JSON, ending in a newline.
func JSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
