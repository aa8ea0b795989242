package main

import (
	"github.com/urfave/cli/v2"

	"github.com/twinforge/twinforge/attest/evidence"
)

func attestCommand() *cli.Command {
	var output string
	return &cli.Command{
		Name:  "attest",
		Usage: "work with the attestations beside an image",
		Subcommands: []*cli.Command{{
			Name:        "inspect",
			Usage:       "show an image's provenance and signatures (without verifying them)",
			ArgsUsage:   "LAYOUT",
			Description: helpText("attest-inspect"),
			Flags:       []cli.Flag{outputFlag(&output, "text, or json for the provenance statement")},
			Action: func(c *cli.Context) error {
				if err := nArgs(c, 1, "attest inspect takes one LAYOUT, got %d arguments", c.NArg()); err != nil {
					return err
				}
				if err := checkOutput(output); err != nil {
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
			},
		}},
	}
}
