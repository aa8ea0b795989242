package main

import (
	"errors"

	"github.com/urfave/cli/v2"

	"github.com/twinforge/twinforge/rebuild/imagediff"
)

func diffCommand() *cli.Command {
	var output string
	var maxFiles int
	return &cli.Command{
		Name:        "diff",
		Usage:       "show what differs between two images",
		ArgsUsage:   "A B",
		Description: helpText("diff"),
		Flags: []cli.Flag{
			outputFlag(&output, "text or json"),
			&cli.IntFlag{Name: "max-files", Value: 200, Usage: "file changes listed per layer (0: all)", Destination: &maxFiles},
		},
		Action: func(c *cli.Context) error {
			if err := nArgs(c, 2, "diff takes two images, A and B; got %d arguments", c.NArg()); err != nil {
				return err
			}
			if err := checkOutput(output); err != nil {
				return err
			}
			report, err := imagediff.CompareRefs(c.Context, c.Args().Get(0), c.Args().Get(1), imagediff.WithMaxFiles(maxFiles))
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
		},
	}
}
