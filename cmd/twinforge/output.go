package main

import (
	"io"

	"github.com/urfave/cli/v2"

	"github.com/twinforge/twinforge/internal/textout"
)

// writeOutput writes a result in the --output format: text or json.
func writeOutput(w io.Writer, format string, v textout.TextWriter) error {
	return textout.Write(w, format, v)
}

// writeJSON writes v as indented JSON.
func writeJSON(w io.Writer, v any) error { return textout.JSON(w, v) }

// outputFlag is --output (-o), text by default.
func outputFlag(usage string) cli.Flag {
	return &cli.StringFlag{Name: "output", Aliases: []string{"o"}, Value: "text", Usage: usage}
}

// outputFrom reads --output, one of formats (default: text and json).
func outputFrom(c *cli.Context, formats ...string) (string, error) {
	if len(formats) == 0 {
		formats = []string{"text", "json"}
	}
	return c.String("output"), usageError(oneOf("output", c.String("output"), formats...))
}
