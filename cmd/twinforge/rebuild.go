package main

import (
	"errors"
	"slices"
	"strings"

	"github.com/moby/buildkit/client"
	"github.com/urfave/cli/v2"

	"github.com/twinforge/twinforge/attest"
	"github.com/twinforge/twinforge/hermetic"
	"github.com/twinforge/twinforge/rebuild/audit"
)

func rebuildCommand() *cli.Command {
	return &cli.Command{
		Name:        "rebuild",
		Usage:       "rebuild a published image from its provenance alone and sign a verdict when the digest matches",
		ArgsUsage:   "[REGISTRY/REPOSITORY@sha256:... | REGISTRY/REPOSITORY:TAG | LAYOUT]",
		Description: helpText("rebuild"),
		Flags: append(append([]cli.Flag{
			&cli.StringFlag{Name: "policy", Usage: "policy `FILE` the provenance must satisfy (required; see attest/policy.md)"},
			&cli.StringFlag{Name: "provenance", Usage: "provenance bundle `FILE` (instead of the image's own)"},
			&cli.StringFlag{Name: "digest", Usage: "the image the provenance is about (sha256:...): with --provenance when its statement names several, or a LAYOUT holding several"},
			&cli.StringFlag{Name: "source", Usage: "build from the git checkout `DIR` (clean, at the provenance's commit) instead of cloning the provenance's repository"},
			&cli.StringSliceFlag{Name: "image", Usage: "take base image `NAME=oci-layout:PATH[:TAG]` from an OCI layout, which must hold the provenance's digest for it (repeatable)"},
			&cli.StringFlag{Name: "oci-layout", Usage: "write the rebuilt image to `DIR` (default: out/rebuild-<digest>)"},
			&cli.StringFlag{Name: "rebuilder-id", Value: attest.DefaultRebuilderID, Usage: "the rebuilder's identity recorded in the verdict, a URI"},
			&cli.StringFlag{Name: "verdict", Usage: "write the signed verdict bundle to `FILE`"},
			&cli.BoolFlag{Name: "push-verdict", Usage: "attach the signed verdict to the registry image as an OCI 1.1 referrer"},
			progressFlag(), outputFlag("result format on stdout: text or json"),
			strictVariationsFlag(),
			runcShimFlag(),
		}, rebuildDaemonFlags()...), rebuildSignFlags()...),
		Action: runRebuild,
	}
}

// rebuildDaemonFlags are the daemon flags that apply: a rebuild always gets
// a private daemon of its own, never a remote one.
func rebuildDaemonFlags() []cli.Flag {
	keep := []string{"state-dir", "keep-state", "buildkitd", "runc"}
	return slices.DeleteFunc(daemonFlags(), func(f cli.Flag) bool { return !slices.Contains(keep, f.Names()[0]) })
}

// rebuildSignFlags are build's signing flags for the verdict, without
// --push and --builder-id, which are about a build.
func rebuildSignFlags() []cli.Flag {
	var out []cli.Flag
	for _, f := range signFlags() {
		switch f.Names()[0] {
		case "push", "builder-id":
			continue
		case "trusted-root":
			f = &cli.StringFlag{Name: "trusted-root", Usage: "Sigstore trusted root `FILE`: verifies the provenance (required when the policy trusts certificates, timestamps or a log) and the signed verdict", EnvVars: []string{"TWINFORGE_TRUSTED_ROOT"}}
		case "insecure":
			f = &cli.BoolFlag{Name: "insecure", Usage: "allow plain HTTP to a loopback registry (127.0.0.0/8, ::1, localhost) only"}
		case "ca-cert":
			f = &cli.StringFlag{Name: "ca-cert", Usage: "trust the CA certificates in PEM `FILE` for the registry"}
		}
		out = append(out, f)
	}
	return out
}

func runRebuild(c *cli.Context) error {
	if c.NArg() > 1 {
		return usageErrorf("rebuild takes at most one IMAGE, got %d arguments: %s", c.NArg(), strings.Join(c.Args().Slice(), " "))
	}
	s := audit.Settings{
		PolicyFile: c.String("policy"), TrustedRootFile: c.String("trusted-root"), ProvenanceFile: c.String("provenance"),
		Request: audit.Request{
			Image: c.Args().First(), Digest: c.String("digest"), Source: c.String("source"), OCILayout: c.String("oci-layout"),
			RebuilderID: c.String("rebuilder-id"), VerdictFile: c.String("verdict"), PushVerdict: c.Bool("push-verdict"),
			StrictVariations: strictVariationsFrom(c), KeepWork: c.Bool("keep-state"), Logger: logger(),
		},
	}
	var err error
	if s.Images, err = hermetic.ParseImageMappings(c.StringSlice("image")); err != nil {
		return usageError(err)
	}
	if s.Daemons, err = daemonsFrom(c, ""); err != nil {
		return err
	}
	sign, err := signOptionsFrom(c)
	if err != nil {
		return err
	}
	s.RegistryOptions, s.SignMethod = sign.registry, sign.method
	progress, output, err := progressAndOutput(c)
	if err != nil {
		return err
	}
	if err := usageError(s.Check()); err != nil {
		return err
	}
	if err := s.Load(); err != nil {
		if errors.Is(err, audit.ErrRefused) {
			return err
		}
		return usageError(err)
	}
	if s.Signer, err = sign.NewSigner(c.Context); err != nil {
		return err
	}
	rep, err := withProgress(c, progress, func(ch chan<- *client.SolveStatus) (*audit.Report, error) {
		s.Progress = ch
		return audit.Run(c.Context, s.Request)
	})
	return audit.Show(c.App.Writer, c.App.ErrWriter, output, rep, err)
}
