package main

import (
	"errors"

	"github.com/urfave/cli/v2"

	"github.com/twinforge/twinforge/attest/evidence"
	"github.com/twinforge/twinforge/distribute"
	"github.com/twinforge/twinforge/distribute/release"
	"github.com/twinforge/twinforge/internal/textout"
)

type verifyOptions struct {
	evidence.Check
	output   string
	registry distribute.RegistrySettings
	reader   release.ReaderSettings
}

func verifyCommand() *cli.Command {
	o := &verifyOptions{}
	return &cli.Command{
		Name:        "verify",
		Usage:       "verify an image's signatures and provenance against a policy",
		ArgsUsage:   "LAYOUT | REGISTRY/REPOSITORY@sha256:... | REGISTRY/REPOSITORY:TAG",
		Description: helpText("verify"),
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "policy", Usage: "policy `FILE` (see attest/policy.md)", Required: true, Destination: &o.PolicyFile},
			&cli.StringFlag{Name: "trusted-root", Usage: "Sigstore trusted root `FILE` (trusted_root.json)", Destination: &o.TrustedRootFile},
			&cli.StringFlag{Name: "tuf-url", Usage: "fetch the trusted root from the TUF repository at `URL`", Destination: &o.TUFURL},
			&cli.StringFlag{Name: "tuf-root", Usage: "initial TUF root.json `FILE` for --tuf-url", Destination: &o.TUFRootFile},
			&cli.StringFlag{Name: "tuf-cache", Usage: "TUF cache `DIR` (default: the user cache directory)", Destination: &o.TUFCacheDir},
			&cli.StringFlag{Name: "digest", Usage: "the image to verify when LAYOUT holds several (sha256:...)", Destination: &o.Digest},
			outputFlag(&o.output, "result format on stdout: text or json"),
			&cli.BoolFlag{Name: "insecure", Usage: "allow plain HTTP to a loopback registry (127.0.0.0/8, ::1, localhost); refused for any other host", Destination: &o.registry.InsecureLoopbackUnsafe},
			&cli.StringFlag{Name: "ca-cert", Usage: "trust the CA certificates in PEM `FILE` too, for a registry with a private CA", Destination: &o.registry.CACertFile},
		}, readerFlags(&o.reader, false)...),
		Action: o.run,
	}
}

func (o *verifyOptions) run(c *cli.Context) error {
	if err := nArgs(c, 1, "verify takes one LAYOUT (an OCI layout directory written by twinforge build) or image reference (REGISTRY/REPOSITORY@sha256:...), got %d arguments", c.NArg()); err != nil {
		return err
	}
	var err error
	if o.Registry, o.Release, err = openReader(o.reader, o.registry); err != nil {
		return err
	}
	if err := checkOutput(o.output); err != nil {
		return err
	}
	o.Image = c.Args().First()
	rep, err := o.Check.Run(c.Context)
	var rf *evidence.Refused
	if errors.As(err, &rf) {
		if o.output == "json" {
			if werr := textout.JSON(c.App.Writer, rf.Refusal); werr != nil {
				return werr
			}
		}
		return refused(err)
	}
	if err != nil {
		return err
	}
	return writeOutput(c.App.Writer, o.output, rep)
}
