package main

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/twinforge/twinforge/attest"
	"github.com/twinforge/twinforge/attest/evidence"
	"github.com/twinforge/twinforge/attest/verify"
	"github.com/twinforge/twinforge/hermetic"
	"github.com/twinforge/twinforge/rebuild"
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
			&cli.StringFlag{Name: "progress", Value: "auto", Usage: "progress display on stderr: auto, plain, tty, rawjson or quiet"},
			&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Value: "text", Usage: "result format on stdout: text or json"},
			strictVariationsFlag(),
			&cli.StringFlag{Name: "runc-shim", Usage: "runtime shim that varies umask and time zone in the strict rebuild", Value: defaultBinary("twinforge-runc-shim"), EnvVars: []string{"TWINFORGE_RUNC_SHIM"}},
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

// rebuildOptions is what the rebuild command's flags parse to.
type rebuildOptions struct {
	req                                 audit.Request
	provenance, policyPath, trustedRoot string
	progress, output                    string
	sign                                *signOptions
}

func rebuildOptionsFrom(c *cli.Context) (*rebuildOptions, error) {
	if c.NArg() > 1 {
		return nil, usageErrorf("rebuild takes at most one IMAGE, got %d arguments: %s", c.NArg(), strings.Join(c.Args().Slice(), " "))
	}
	o := &rebuildOptions{
		provenance: c.String("provenance"), policyPath: c.String("policy"), trustedRoot: c.String("trusted-root"),
		progress: c.String("progress"), output: c.String("output"),
		req: audit.Request{
			Image: c.Args().First(), Digest: c.String("digest"), Source: c.String("source"), OCILayout: c.String("oci-layout"),
			RebuilderID: c.String("rebuilder-id"), VerdictFile: c.String("verdict"), PushVerdict: c.Bool("push-verdict"),
			StrictVariations: strictVariationsFrom(c), KeepWork: c.Bool("keep-state"), Logger: logger(),
		},
	}
	var err error
	if o.req.Images, err = hermetic.ParseImageMappings(c.StringSlice("image")); err != nil {
		return nil, usageError(err)
	}
	if o.req.Daemons, err = daemonsFrom(c, ""); err != nil {
		return nil, err
	}
	if o.sign, err = signOptionsFrom(c); err != nil {
		return nil, err
	}
	o.req.RegistryOptions = o.sign.registry.options()
	return o, o.validate()
}

func (o *rebuildOptions) validate() error {
	r := &o.req
	if err := oneOf("progress", o.progress, progressModes...); err != nil {
		return usageError(err)
	}
	if err := oneOf("output", o.output, "text", "json"); err != nil {
		return usageError(err)
	}
	switch {
	case o.policyPath == "":
		return usageErrorf("--policy FILE is required: a provenance is rebuilt only once it verifies against a policy")
	case r.Image == "" && o.provenance == "":
		return usageErrorf("missing IMAGE: give REGISTRY/REPOSITORY@sha256:..., an OCI layout, or --provenance FILE")
	case r.Digest != "" && !strings.HasPrefix(r.Digest, "sha256:"):
		return usageErrorf("--digest %q: want sha256:<hex>", r.Digest)
	case r.RebuilderID == "":
		return usageErrorf("--rebuilder-id must not be empty")
	case o.sign.method == "none" && (r.VerdictFile != "" || r.PushVerdict):
		return usageErrorf("--verdict and --push-verdict need a signed verdict: give --sign keyless or --sign key=FILE")
	case r.PushVerdict && (r.Image == "" || !evidence.LooksLikeReference(r.Image)):
		return usageErrorf("--push-verdict attaches the verdict to an image in a registry: give IMAGE as REGISTRY/REPOSITORY@sha256:...")
	}
	if r.Source != "" {
		if fi, err := os.Stat(r.Source); err != nil || !fi.IsDir() {
			return usageErrorf("--source %s: not a directory", r.Source)
		}
	}
	return nil
}

func runRebuild(c *cli.Context) error {
	o, err := rebuildOptionsFrom(c)
	if err != nil {
		return err
	}
	req := &o.req
	if req.Policy, err = verify.LoadPolicy(o.policyPath); err != nil {
		return usageError(err)
	}
	if req.Policy.NeedsTrustedRoot() && o.trustedRoot == "" {
		return usageErrorf("the policy trusts certificates, timestamps or a log: give --trusted-root FILE")
	}
	if o.trustedRoot != "" {
		if req.TrustedRoot, err = verify.LoadTrustedRoot(o.trustedRoot); err != nil {
			return usageError(err)
		}
	}
	if o.provenance != "" {
		data, err := os.ReadFile(o.provenance)
		if err != nil {
			return usageErrorf("--provenance: %w", err)
		}
		if req.Provenance, err = verify.ParseBundle(data); err != nil {
			return refused(fmt.Errorf("--provenance %s: %w; it is not rebuilt", o.provenance, err))
		}
		req.ProvenanceName = o.provenance
	}
	if req.Signer, err = o.sign.NewSigner(c.Context); err != nil {
		return err
	}
	ch, wait, err := progressDisplay(c.Context, c.App.ErrWriter, o.progress)
	if err != nil {
		return err
	}
	req.Progress = ch
	rep, err := audit.Run(c.Context, *req)
	if werr := wait(); werr != nil && err == nil {
		err = werr
	}
	if rep != nil {
		rebuild.WriteWarnings(c.App.ErrWriter, rep.Warnings)
	}
	var mm *audit.MismatchError
	if rep != nil && (errors.As(err, new(*rebuild.StrictFailure)) || errors.As(err, &mm)) {
		if werr := writeOutput(c.App.Writer, o.output, rep); werr != nil {
			return werr
		}
	}
	if mm != nil && o.output == "text" && mm.Report != nil {
		fmt.Fprintln(c.App.ErrWriter, "\nwhat differs between the published image (a) and the rebuild (b):")
		_ = mm.Report.WriteText(c.App.ErrWriter)
	}
	if err != nil {
		return err
	}
	return writeOutput(c.App.Writer, o.output, rep)
}
