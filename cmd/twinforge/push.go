package main

import (
	"os"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/urfave/cli/v2"

	"github.com/twinforge/twinforge/distribute"
)

type pushOptions struct {
	attachments cli.StringSlice
	output      string
	registry    registryOptions
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
	layout := c.Args().Get(0)
	ref, err := name.ParseReference(c.Args().Get(1), name.StrictValidation)
	if err != nil {
		return usageErrorf("REF %q: %v; give NAME:TAG or NAME@sha256:...", c.Args().Get(1), err)
	}
	// The type is after the last "=", so file names may contain one.
	var files, types []string
	for _, v := range o.attachments.Value() {
		i := strings.LastIndex(v, "=")
		if i <= 0 || i == len(v)-1 {
			return usageErrorf("--attachment %q: use FILE=ARTIFACT_TYPE, e.g. bundle.json=%s", v, distribute.SigstoreBundleType)
		}
		files, types = append(files, v[:i]), append(types, v[i+1:])
	}
	registry, err := o.registry.check()
	if err != nil {
		return err
	}
	if err := checkOutput(o.output); err != nil {
		return err
	}
	if fi, err := os.Stat(layout); err != nil || !fi.IsDir() {
		return usageErrorf("LAYOUT %s: not a directory; give an OCI image layout, e.g. the --oci-layout of 'twinforge build'", layout)
	}
	for _, f := range files {
		if fi, err := os.Stat(f); err != nil || fi.IsDir() {
			return usageErrorf("--attachment %s: not a readable file", f)
		}
	}
	img, err := distribute.FromLayout(layout)
	if err != nil {
		return err
	}
	artifacts := make([]distribute.Artifact, len(files))
	for i, f := range files {
		if artifacts[i].Data, err = os.ReadFile(f); err != nil {
			return usageErrorf("--attachment %s: %w", f, err)
		}
		artifacts[i].ArtifactType = types[i]
	}
	res, err := distribute.Push(c.Context, img, ref, artifacts, registry...)
	if err != nil {
		return err
	}
	return writeOutput(c.App.Writer, o.output, res)
}
