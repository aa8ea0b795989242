package main

import (
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
	output, err := outputFrom(c)
	if err != nil {
		return err
	}
	src, err := evidence.Open(c.Args().First())
	if err != nil {
		return err
	}
	ev, err := src.Evidence(c.Context, "")
	if err != nil {
		return err
	}
	in, err := ev.Inspection()
	if err != nil {
		return err
	}
	if output == "json" {
		return in.WriteStatement(c.App.Writer)
	}
	return in.WriteText(c.App.Writer)
}
