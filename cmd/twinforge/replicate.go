package main

import (
	"errors"
	"fmt"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/urfave/cli/v2"

	"github.com/twinforge/twinforge/distribute"
	"github.com/twinforge/twinforge/distribute/release"
)

func replicateCommand() *cli.Command {
	return &cli.Command{
		Name:        "replicate",
		Usage:       "copy an image and its referrers by digest to more registries, verifying every copy",
		ArgsUsage:   "SRC@DIGEST DEST...",
		Description: helpText("replicate"),
		Flags: append(append([]cli.Flag{
			&cli.IntFlag{Name: "jobs", Aliases: []string{"j"}, Value: 4, Usage: "destinations copied at the same time"},
			&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Value: "text", Usage: "result format on stdout: text or json"},
		}, registryFlags()...), releaseReaderFlags(false)...),
		Action: runReplicate,
	}
}

// replicateOptions is what the replicate command's flags parse to.
type replicateOptions struct {
	src      name.Digest
	dests    []name.Repository
	jobs     int
	output   string
	registry registryConfig
	release  *release.ClientConfig
}

func replicateOptionsFrom(c *cli.Context) (*replicateOptions, error) {
	if c.NArg() < 2 {
		return nil, usageErrorf("replicate takes SRC@DIGEST and at least one DEST, got %d arguments: e.g. `twinforge replicate registry.example/app@sha256:... mirror.example/app`", c.NArg())
	}
	o := &replicateOptions{jobs: c.Int("jobs"), output: c.String("output")}
	args := c.Args().Slice()
	ref, err := name.ParseReference(args[0])
	if err != nil {
		return nil, usageErrorf("SRC %q: %v", args[0], err)
	}
	d, ok := ref.(name.Digest)
	if !ok {
		return nil, usageError(fmt.Errorf("SRC %s: %w, e.g. %s@sha256:...", args[0], distribute.ErrDigestRequired, ref.Context()))
	}
	o.src = d
	for _, s := range args[1:] {
		repo, err := name.NewRepository(s)
		if err != nil {
			return nil, usageErrorf("DEST %q: give a repository without tag or digest, e.g. mirror.example/team/app (%v)", s, err)
		}
		o.dests = append(o.dests, repo)
	}
	if o.registry, err = registryConfigFrom(c); err != nil {
		return nil, err
	}
	if o.release, err = releaseReaderFrom(c, o.registry); err != nil {
		return nil, err
	}
	return o, o.validate()
}

func (o *replicateOptions) validate() error {
	if err := oneOf("output", o.output, "text", "json"); err != nil {
		return usageError(err)
	}
	if o.jobs < 1 {
		return usageErrorf("--jobs %d: need at least 1", o.jobs)
	}
	seen := map[string]bool{}
	for _, d := range o.dests {
		if seen[d.String()] {
			return usageErrorf("DEST %s is given twice", d)
		}
		seen[d.String()] = true
	}
	return nil
}

func runReplicate(c *cli.Context) error {
	o, err := replicateOptionsFrom(c)
	if err != nil {
		return err
	}
	opts := append(o.registry.options(), distribute.WithJobs(o.jobs))
	results, err := distribute.Replicate(c.Context, o.src, o.dests, opts...)
	if results == nil {
		// Nothing was copied: the source or the arguments were refused.
		return err
	}
	var index []release.ReplicaResult
	if o.release != nil {
		var ierr error
		if _, index, ierr = release.Replicate(c.Context, *o.release, o.dests, o.registry.options()...); ierr != nil {
			if index == nil {
				// Nothing was copied: the index was refused or unreadable.
				return errors.Join(err, releaseError(ierr))
			}
			err = errors.Join(err, ierr)
		}
	}
	if werr := writeOutput(c.App.Writer, o.output, release.ReplicationReport{Images: results, Index: index}); werr != nil {
		return werr
	}
	// Failed destinations exit 1, whatever the reason; the table and the
	// error say which and why.
	return err
}
