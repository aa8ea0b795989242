package main

import (
	"slices"

	"github.com/urfave/cli/v2"

	"github.com/twinforge/twinforge/distribute"
	"github.com/twinforge/twinforge/distribute/release"
)

type replicateOptions struct {
	release.Replication
	output   string
	registry distribute.RegistrySettings
	reader   release.ReaderSettings
}

func replicateCommand() *cli.Command {
	o := &replicateOptions{}
	return &cli.Command{
		Name:        "replicate",
		Usage:       "copy an image and its referrers by digest to more registries, verifying every copy",
		ArgsUsage:   "SRC@DIGEST DEST...",
		Description: helpText("replicate"),
		Flags: slices.Concat([]cli.Flag{
			&cli.IntFlag{Name: "jobs", Aliases: []string{"j"}, Value: 4, Usage: "destinations copied at the same time", Destination: &o.Jobs},
			outputFlag(&o.output, "result format on stdout: text or json"),
		}, registryFlags(&o.registry), readerFlags(&o.reader, false)),
		Action: o.run,
	}
}

func (o *replicateOptions) run(c *cli.Context) error {
	if c.NArg() < 2 {
		return usageErrorf("replicate takes SRC@DIGEST and at least one DEST, got %d arguments: e.g. `twinforge replicate registry.example/app@sha256:... mirror.example/app`", c.NArg())
	}
	registry, index, err := openReader(o.reader, o.registry)
	if err != nil {
		return err
	}
	if err := checkOutput(o.output); err != nil {
		return err
	}
	o.Source, o.Destinations, o.Index = c.Args().First(), c.Args().Tail(), index
	rep, err := o.Run(c.Context, registry...)
	if rep == nil {
		// Nothing was copied: what was refused says why.
		return releaseError(err)
	}
	if werr := writeOutput(c.App.Writer, o.output, rep); werr != nil {
		return werr
	}
	// Failed destinations exit 1, whatever the reason; the table and the
	// error say which and why.
	return err
}
