package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/urfave/cli/v2"

	"github.com/twinforge/twinforge/distribute"
)

func pushCommand() *cli.Command {
	return &cli.Command{
		Name:        "push",
		Usage:       "push an OCI layout's image by digest, with attestations as OCI 1.1 referrers",
		ArgsUsage:   "LAYOUT REF",
		Description: helpText("push"),
		Flags: append([]cli.Flag{
			&cli.StringSliceFlag{Name: "attachment", Aliases: []string{"a"}, Usage: "attach `FILE=ARTIFACT_TYPE` as a referrer, e.g. bundle.json=application/vnd.dev.sigstore.bundle.v0.3+json (repeatable)"},
			&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Value: "text", Usage: "result format on stdout: text or json"},
		}, registryFlags()...),
		Action: runPush,
	}
}

// registryFlags are the connection flags push and replicate share.
func registryFlags() []cli.Flag {
	return []cli.Flag{
		&cli.BoolFlag{Name: "insecure", Usage: "allow plain HTTP to loopback registries (127.0.0.0/8, ::1, localhost); refused for any other host"},
		&cli.StringFlag{Name: "ca-cert", Usage: "trust the CA certificates in PEM `FILE` too, for registries with a private CA"},
	}
}

// registryConfig is what the shared connection flags parse to.
type registryConfig struct {
	insecure bool
	caCert   string
}

func registryConfigFrom(c *cli.Context) (registryConfig, error) {
	rc := registryConfig{insecure: c.Bool("insecure"), caCert: c.String("ca-cert")}
	if rc.caCert != "" {
		if fi, err := os.Stat(rc.caCert); err != nil || fi.IsDir() {
			return rc, usageErrorf("--ca-cert %s: not a readable PEM file", rc.caCert)
		}
	}
	return rc, nil
}

func (rc registryConfig) options() []distribute.Option {
	var opts []distribute.Option
	if rc.insecure {
		opts = append(opts, distribute.WithInsecureLoopbackUnsafe())
	}
	if rc.caCert != "" {
		opts = append(opts, distribute.WithCACert(rc.caCert))
	}
	return opts
}

// attachment is one --attachment flag.
type attachment struct {
	file, artifactType string
}

// parseAttachments parses repeated --attachment FILE=ARTIFACT_TYPE flags.
// The type is after the last "=", so file names may contain one.
func parseAttachments(values []string) ([]attachment, error) {
	var out []attachment
	for _, v := range values {
		i := strings.LastIndex(v, "=")
		if i <= 0 || i == len(v)-1 {
			return nil, fmt.Errorf("--attachment %q: use FILE=ARTIFACT_TYPE, e.g. bundle.json=%s", v, distribute.SigstoreBundleType)
		}
		out = append(out, attachment{file: v[:i], artifactType: v[i+1:]})
	}
	return out, nil
}

// pushOptions is what the push command's flags parse to.
type pushOptions struct {
	layout      string
	ref         name.Reference
	attachments []attachment
	output      string
	registry    registryConfig
}

func pushOptionsFrom(c *cli.Context) (*pushOptions, error) {
	if c.NArg() != 2 {
		return nil, usageErrorf("push takes LAYOUT and REF, got %d arguments: e.g. `twinforge push out/hello registry.example/team/hello:1.0`", c.NArg())
	}
	o := &pushOptions{layout: c.Args().Get(0), output: c.String("output")}
	ref, err := name.ParseReference(c.Args().Get(1), name.StrictValidation)
	if err != nil {
		return nil, usageErrorf("REF %q: %v; give NAME:TAG or NAME@sha256:...", c.Args().Get(1), err)
	}
	o.ref = ref
	if o.attachments, err = parseAttachments(c.StringSlice("attachment")); err != nil {
		return nil, usageError(err)
	}
	if o.registry, err = registryConfigFrom(c); err != nil {
		return nil, err
	}
	return o, o.validate()
}

func (o *pushOptions) validate() error {
	if err := oneOf("output", o.output, "text", "json"); err != nil {
		return usageError(err)
	}
	if fi, err := os.Stat(o.layout); err != nil || !fi.IsDir() {
		return usageErrorf("LAYOUT %s: not a directory; give an OCI image layout, e.g. the --oci-layout of 'twinforge build'", o.layout)
	}
	for _, a := range o.attachments {
		if fi, err := os.Stat(a.file); err != nil || fi.IsDir() {
			return usageErrorf("--attachment %s: not a readable file", a.file)
		}
	}
	return nil
}

func runPush(c *cli.Context) error {
	o, err := pushOptionsFrom(c)
	if err != nil {
		return err
	}
	img, err := distribute.FromLayout(o.layout)
	if err != nil {
		return err
	}
	artifacts := make([]distribute.Artifact, 0, len(o.attachments))
	for _, a := range o.attachments {
		data, err := os.ReadFile(a.file)
		if err != nil {
			return usageErrorf("--attachment %s: %w", a.file, err)
		}
		artifacts = append(artifacts, distribute.Artifact{ArtifactType: a.artifactType, Data: data})
	}
	res, err := distribute.Push(c.Context, img, o.ref, artifacts, o.registry.options()...)
	if err != nil {
		return err
	}
	return writeOutput(c.App.Writer, o.output, res)
}
