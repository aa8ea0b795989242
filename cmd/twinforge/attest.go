package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"text/tabwriter"

	"github.com/urfave/cli/v2"

	"github.com/twinforge/twinforge/attest/evidence"
)

func attestCommand() *cli.Command {
	return &cli.Command{
		Name:  "attest",
		Usage: "work with the attestations beside an image",
		Subcommands: []*cli.Command{
			{
				Name:        "inspect",
				Usage:       "show an image's provenance and signatures (without verifying them)",
				ArgsUsage:   "LAYOUT",
				Description: helpText("attest-inspect"),
				Flags: []cli.Flag{
					outputFlag("text, or json for the provenance statement"),
				},
				Action: runAttestInspect,
			},
		},
	}
}

func runAttestInspect(c *cli.Context) error {
	if c.NArg() != 1 {
		return usageErrorf("attest inspect takes one LAYOUT, got %d arguments", c.NArg())
	}
	output := c.String("output")
	if err := oneOf("output", output, "text", "json"); err != nil {
		return usageError(err)
	}
	src, err := evidence.Open(c.Args().First())
	if err != nil {
		return err
	}
	ev, err := src.Evidence(c.Context, "")
	if err != nil {
		return err
	}
	lines, prov, err := ev.Inspect()
	if err != nil {
		return err
	}
	if output == "json" {
		var buf bytes.Buffer
		if err := json.Indent(&buf, prov.Payload, "", "  "); err != nil {
			return fmt.Errorf("provenance payload is not JSON: %w", err)
		}
		buf.WriteByte('\n')
		_, err := c.App.Writer.Write(buf.Bytes())
		return err
	}
	tw := tabwriter.NewWriter(c.App.Writer, 0, 4, 2, ' ', 0)
	for _, l := range lines {
		fmt.Fprintf(tw, "%s\t%s\n", l.Label, l.Value)
	}
	return tw.Flush()
}
