package main

import (
	"errors"

	"github.com/urfave/cli/v2"

	"github.com/twinforge/twinforge/rebuild/imagediff"
)

func diffCommand() *cli.Command {
	return &cli.Command{
		Name:        "diff",
		Usage:       "show what differs between two images",
		ArgsUsage:   "A B",
		Description: helpText("diff"),
		Flags: []cli.Flag{
			outputFlag("text or json"),
			&cli.IntFlag{Name: "max-files", Value: 200, Usage: "file changes listed per layer (0: all)"},
		},
		Action: runDiff,
	}
}

func runDiff(c *cli.Context) error {
	if c.NArg() != 2 {
		return usageErrorf("diff takes two images, A and B; got %d arguments", c.NArg())
	}
	output, err := outputFrom(c)
	if err != nil {
		return err
	}
	report, err := imagediff.CompareRefs(c.Context, c.Args().Get(0), c.Args().Get(1), imagediff.WithMaxFiles(c.Int("max-files")))
	if err != nil {
		return err
	}
	if err := writeOutput(c.App.Writer, output, report); err != nil {
		return err
	}
	if !report.Equal() {
		return coded(exitNotReproducible, errors.New("the images differ"))
	}
	return nil
}
