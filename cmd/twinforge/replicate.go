package main

import (
	"fmt"
	"slices"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/urfave/cli/v2"

	"github.com/twinforge/twinforge/distribute"
	"github.com/twinforge/twinforge/distribute/release"
)

type replicateOptions struct {
	jobs     int
	output   string
	registry registryOptions
	reader   releaseReader
}

func replicateCommand() *cli.Command {
	o := &replicateOptions{}
	return &cli.Command{
		Name:        "replicate",
		Usage:       "copy an image and its referrers by digest to more registries, verifying every copy",
		ArgsUsage:   "SRC@DIGEST DEST...",
		Description: helpText("replicate"),
		Flags: slices.Concat([]cli.Flag{
			&cli.IntFlag{Name: "jobs", Aliases: []string{"j"}, Value: 4, Usage: "destinations copied at the same time", Destination: &o.jobs},
			outputFlag(&o.output, "result format on stdout: text or json"),
		}, registryFlags(&o.registry), o.reader.flags(false)),
		Action: o.run,
	}
}

func (o *replicateOptions) run(c *cli.Context) error {
	if c.NArg() < 2 {
		return usageErrorf("replicate takes SRC@DIGEST and at least one DEST, got %d arguments: e.g. `twinforge replicate registry.example/app@sha256:... mirror.example/app`", c.NArg())
	}
	args := c.Args().Slice()
	ref, err := name.ParseReference(args[0])
	if err != nil {
		return usageErrorf("SRC %q: %v", args[0], err)
	}
	src, ok := ref.(name.Digest)
	if !ok {
		return usageError(fmt.Errorf("SRC %s: %w, e.g. %s@sha256:...", args[0], distribute.ErrDigestRequired, ref.Context()))
	}
	var dests []name.Repository
	for _, s := range args[1:] {
		repo, err := name.NewRepository(s)
		if err != nil {
			return usageErrorf("DEST %q: give a repository without tag or digest, e.g. mirror.example/team/app (%v)", s, err)
		}
		dests = append(dests, repo)
	}
	registry, index, err := o.reader.open(c, o.registry)
	if err != nil {
		return err
	}
	if err := checkOutput(o.output); err != nil {
		return err
	}
	if o.jobs < 1 {
		return usageErrorf("--jobs %d: need at least 1", o.jobs)
	}
	seen := map[string]bool{}
	for _, d := range dests {
		if seen[d.String()] {
			return usageErrorf("DEST %s is given twice", d)
		}
		seen[d.String()] = true
	}
	rep, err := release.ReplicateImage(c.Context, src, dests, index, o.jobs, registry...)
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
