package main

import (
	"encoding/json"
	"fmt"

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
	if err := oneOf("output", c.String("output"), "text", "json"); err != nil {
		return usageError(err)
	}
	ctx := c.Context
	a, err := imagediff.Load(ctx, c.Args().Get(0))
	if err != nil {
		return fmt.Errorf("image A: %w", err)
	}
	b, err := imagediff.Load(ctx, c.Args().Get(1))
	if err != nil {
		return fmt.Errorf("image B: %w", err)
	}
	if err := imagediff.CheckComparable(a, b); err != nil {
		return err
	}
	report, err := imagediff.Compare(ctx, a, b, imagediff.WithMaxFiles(c.Int("max-files")))
	if err != nil {
		return err
	}
	if c.String("output") == "json" {
		enc := json.NewEncoder(c.App.Writer)
		enc.SetIndent("", "  ")
		err = enc.Encode(report)
	} else {
		err = report.WriteText(c.App.Writer)
	}
	if err != nil {
		return err
	}
	if !report.Equal() {
		return &codedError{code: exitNotReproducible, err: fmt.Errorf("the images differ")}
	}
	return nil
}
