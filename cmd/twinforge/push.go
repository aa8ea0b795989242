package main

import (
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/urfave/cli/v2"

	"github.com/twinforge/twinforge/distribute"
)

type pushOptions struct {
	attachments cli.StringSlice
	output      string
	registry    distribute.RegistrySettings
}

func pushCommand() *cli.Command {
	o := &pushOptions{}
	return &cli.Command{
		Name:        "push",
		Usage:       "push an OCI layout's image by digest, with attestations as OCI 1.1 referrers",
		ArgsUsage:   "LAYOUT REF",
		Description: helpText("push"),
		Flags: append([]cli.Flag{
			&cli.StringSliceFlag{Name: "attachment", Aliases: []string{"a"}, Usage: "attach `FILE=ARTIFACT_TYPE` as a referrer, e.g. bundle.json=application/vnd.dev.sigstore.bundle.v0.3+json (repeatable)", Destination: &o.attachments},
			outputFlag(&o.output, "result format on stdout: text or json"),
		}, registryFlags(&o.registry)...),
		Action: o.run,
	}
}

func (o *pushOptions) run(c *cli.Context) error {
	if err := nArgs(c, 2, "push takes LAYOUT and REF, got %d arguments: e.g. `twinforge push out/hello registry.example/team/hello:1.0`", c.NArg()); err != nil {
		return err
	}
	ref, err := name.ParseReference(c.Args().Get(1), name.StrictValidation)
	if err != nil {
		return usageErrorf("REF %q: %v; give NAME:TAG or NAME@sha256:...", c.Args().Get(1), err)
	}
	files, err := distribute.ParseAttachments(o.attachments.Value())
	if err != nil {
		return usageError(err)
	}
	registry, err := o.registry.Options()
	if err != nil {
		return err
	}
	if err := checkOutput(o.output); err != nil {
		return err
	}
	res, err := distribute.PushLayout(c.Context, c.Args().Get(0), ref, files, registry...)
	if err != nil {
		return err
	}
	return writeOutput(c.App.Writer, o.output, res)
}
