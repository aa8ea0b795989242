package main

import (
	"errors"
	"slices"
	"strings"

	"github.com/moby/buildkit/client"
	"github.com/urfave/cli/v2"

	"github.com/twinforge/twinforge/attest"
	"github.com/twinforge/twinforge/hermetic"
	"github.com/twinforge/twinforge/rebuild"
	"github.com/twinforge/twinforge/rebuild/audit"
)

type rebuildOptions struct {
	audit.Settings
	images           cli.StringSlice
	daemons          rebuild.DaemonSettings
	sign             signOptions
	strict           strictVariations
	progress, output string
}

func rebuildCommand() *cli.Command {
	o := &rebuildOptions{}
	return &cli.Command{
		Name:        "rebuild",
		Usage:       "rebuild a published image from its provenance alone and sign a verdict when the digest matches",
		ArgsUsage:   "[REGISTRY/REPOSITORY@sha256:... | REGISTRY/REPOSITORY:TAG | LAYOUT]",
		Description: helpText("rebuild"),
		Flags:       o.flags(),
		Action:      o.run,
	}
}

func (o *rebuildOptions) flags() []cli.Flag {
	return slices.Concat([]cli.Flag{
		&cli.StringFlag{Name: "policy", Usage: "policy `FILE` the provenance must satisfy (required; see attest/policy.md)", Destination: &o.PolicyFile},
		&cli.StringFlag{Name: "provenance", Usage: "provenance bundle `FILE` (instead of the image's own)", Destination: &o.ProvenanceFile},
		&cli.StringFlag{Name: "digest", Usage: "the image the provenance is about (sha256:...): with --provenance when its statement names several, or a LAYOUT holding several", Destination: &o.Digest},
		&cli.StringFlag{Name: "source", Usage: "build from the git checkout `DIR` (clean, at the provenance's commit) instead of cloning the provenance's repository", Destination: &o.Source},
		&cli.StringSliceFlag{Name: "image", Usage: "take base image `NAME=oci-layout:PATH[:TAG]` from an OCI layout, which must hold the provenance's digest for it (repeatable)", Destination: &o.images},
		&cli.StringFlag{Name: "oci-layout", Usage: "write the rebuilt image to `DIR` (default: out/rebuild-<digest>)", Destination: &o.OCILayout},
		&cli.StringFlag{Name: "rebuilder-id", Value: attest.DefaultRebuilderID, Usage: "the rebuilder's identity recorded in the verdict, a URI", Destination: &o.RebuilderID},
		&cli.StringFlag{Name: "verdict", Usage: "write the signed verdict bundle to `FILE`", Destination: &o.VerdictFile},
		&cli.BoolFlag{Name: "push-verdict", Usage: "attach the signed verdict to the registry image as an OCI 1.1 referrer", Destination: &o.PushVerdict},
		progressFlag(&o.progress), outputFlag(&o.output, "result format on stdout: text or json"),
		o.strict.flag(),
		runcShimFlag(&o.daemons),
	}, o.daemonFlags(), o.signFlags())
}

// daemonFlags are the daemon flags that apply: a rebuild always gets a
// private daemon of its own, never a remote one.
func (o *rebuildOptions) daemonFlags() []cli.Flag {
	keep := []string{"state-dir", "keep-state", "buildkitd", "runc"}
	return slices.DeleteFunc(daemonFlags(&o.daemons), func(f cli.Flag) bool { return !slices.Contains(keep, f.Names()[0]) })
}

// signFlags are build's signing flags for the verdict, without --push and
// --builder-id, which are about a build.
func (o *rebuildOptions) signFlags() []cli.Flag {
	usage := map[string]string{
		"trusted-root": "Sigstore trusted root `FILE`: verifies the provenance (required when the policy trusts certificates, timestamps or a log) and the signed verdict",
		"insecure":     "allow plain HTTP to a loopback registry (127.0.0.0/8, ::1, localhost) only",
		"ca-cert":      "trust the CA certificates in PEM `FILE` for the registry",
	}
	var out []cli.Flag
	for _, f := range o.sign.flags() {
		switch f := f.(type) {
		case *cli.StringFlag:
			f.Usage = or(usage[f.Name], f.Usage)
		case *cli.BoolFlag:
			f.Usage = or(usage[f.Name], f.Usage)
		}
		if n := f.Names()[0]; n != "push" && n != "builder-id" {
			out = append(out, f)
		}
	}
	return out
}

func (o *rebuildOptions) run(c *cli.Context) error {
	if c.NArg() > 1 {
		return usageErrorf("rebuild takes at most one IMAGE, got %d arguments: %s", c.NArg(), strings.Join(c.Args().Slice(), " "))
	}
	s, sign, err := &o.Settings, &o.sign, error(nil)
	s.Image, s.StrictVariations, s.KeepWork, s.Logger = c.Args().First(), o.strict.mode, o.daemons.KeepState, logger()
	s.TrustedRootFile = sign.TrustedRootFile
	if s.Images, err = hermetic.ParseImageMappings(o.images.Value()); err != nil {
		return usageError(err)
	}
	if s.Daemons, err = newDaemons(c, o.daemons); err != nil {
		return err
	}
	if err := sign.check(c); err != nil {
		return err
	}
	s.RegistryOptions, s.SignMethod = sign.pub.Registry, sign.pub.Method
	if err := checkProgressAndOutput(o.progress, o.output); err != nil {
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
	rep, err := withProgress(c, o.progress, func(ch chan<- *client.SolveStatus) (*audit.Report, error) {
		s.Progress = ch
		return audit.Run(c.Context, s.Request)
	})
	return audit.Show(c.App.Writer, c.App.ErrWriter, o.output, rep, err)
}
