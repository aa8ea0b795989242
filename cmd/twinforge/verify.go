package main

import (
	"errors"

	"github.com/urfave/cli/v2"

	"github.com/twinforge/twinforge/attest/evidence"
)

func verifyCommand() *cli.Command {
	return &cli.Command{
		Name:        "verify",
		Usage:       "verify an image's signatures and provenance against a policy",
		ArgsUsage:   "LAYOUT | REGISTRY/REPOSITORY@sha256:... | REGISTRY/REPOSITORY:TAG",
		Description: helpText("verify"),
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "policy", Usage: "policy `FILE` (see attest/policy.md)", Required: true},
			&cli.StringFlag{Name: "trusted-root", Usage: "Sigstore trusted root `FILE` (trusted_root.json)"},
			&cli.StringFlag{Name: "tuf-url", Usage: "fetch the trusted root from the TUF repository at `URL`"},
			&cli.StringFlag{Name: "tuf-root", Usage: "initial TUF root.json `FILE` for --tuf-url"},
			&cli.StringFlag{Name: "tuf-cache", Usage: "TUF cache `DIR` (default: the user cache directory)"},
			&cli.StringFlag{Name: "digest", Usage: "the image to verify when LAYOUT holds several (sha256:...)"},
			outputFlag("result format on stdout: text or json"),
			&cli.BoolFlag{Name: "insecure", Usage: "allow plain HTTP to a loopback registry (127.0.0.0/8, ::1, localhost); refused for any other host"},
			&cli.StringFlag{Name: "ca-cert", Usage: "trust the CA certificates in PEM `FILE` too, for a registry with a private CA"},
		}, releaseReaderFlags(false)...),
		Action: runVerify,
	}
}

func runVerify(c *cli.Context) error {
	if c.NArg() != 1 {
		return usageErrorf("verify takes one LAYOUT (an OCI layout directory written by twinforge build) or image reference (REGISTRY/REPOSITORY@sha256:...), got %d arguments", c.NArg())
	}
	registry, err := registryFrom(c)
	if err != nil {
		return err
	}
	check := evidence.Check{
		Image: c.Args().First(), Digest: c.String("digest"), PolicyFile: c.String("policy"),
		TrustedRootFile: c.String("trusted-root"), TUFURL: c.String("tuf-url"), TUFRootFile: c.String("tuf-root"), TUFCacheDir: c.String("tuf-cache"),
		Registry: registry,
	}
	if check.Release, err = releaseReaderFrom(c, registry); err != nil {
		return err
	}
	output, err := outputFrom(c)
	if err != nil {
		return err
	}
	rep, err := check.Run(c.Context)
	var rf *evidence.Refused
	if errors.As(err, &rf) {
		if output == "json" {
			if werr := writeJSON(c.App.Writer, rf.Refusal); werr != nil {
				return werr
			}
		}
		return refused(err)
	}
	if err != nil {
		return err
	}
	return writeOutput(c.App.Writer, output, rep)
}
