package main

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/urfave/cli/v2"

	"github.com/twinforge/twinforge/attest/evidence"
	"github.com/twinforge/twinforge/attest/verify"
	"github.com/twinforge/twinforge/distribute/release"
)

func verifyCommand() *cli.Command {
	return &cli.Command{
		Name:      "verify",
		Usage:     "verify an image's signatures and provenance against a policy",
		ArgsUsage: "LAYOUT | REGISTRY/REPOSITORY@sha256:... | REGISTRY/REPOSITORY:TAG",
		Description: `Verifies an image with its Sigstore bundles: the image in the OCI layout
LAYOUT with the bundles twinforge build wrote beside it
(LAYOUT/attestations/*.sigstore.json, rebuild verdicts in
LAYOUT/attestations/verdicts/), or an image in a registry with the bundles
attached to it as OCI 1.1 referrers (referrers API or tag schema). A tag is
resolved to a digest first, and the digest is what is verified and printed.

Each signature is checked, that it is about the image's digest, the signing
certificate against the trusted root, the RFC 3161 timestamp and the
transparency log entry; then that the signer is one of the policy's
identities, that the provenance satisfies the policy (source repository,
builder, age) and, with requireReproduced, that enough distinct trusted
rebuilders other than the builder signed verdicts that they reproduced the
image (twinforge rebuild, twinforge build --rebuilder-sign). Nothing is fetched but the registry's image manifest and
referrers, and the trusted root from TUF when --tuf-url is given.

With --release-repo, the image must also be released: the TUF release index
(see 'twinforge release') must list the tag as the digest the registry
resolved it to (an image named by digest: under some tag of its repository),
and the provenance verified must be the statement the release names. A stale,
rolled-back or under-threshold index, or a team role listing a path outside its
delegation, is refused too. The reader's trusted state is kept per region in
--release-state.

Exit status 4 names the check that refused the image.

Examples:
  twinforge verify --policy policy.yaml --trusted-root trusted_root.json out/hello
  twinforge verify --policy policy.yaml --trusted-root trusted_root.json \
      registry.example/team/hello@sha256:aa03...
  twinforge verify --policy policy.yaml --tuf-url https://tuf.example/ \
      --tuf-root root.json --output json out/hello
  twinforge verify --policy policy.yaml --trusted-root trusted_root.json \
      --release-repo oci://eu.registry.example/payments/app --release-root root.json \
      eu.registry.example/payments/app:1.2`,
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "policy", Usage: "policy `FILE` (see attest/policy.md)", Required: true},
			&cli.StringFlag{Name: "trusted-root", Usage: "Sigstore trusted root `FILE` (trusted_root.json)"},
			&cli.StringFlag{Name: "tuf-url", Usage: "fetch the trusted root from the TUF repository at `URL`"},
			&cli.StringFlag{Name: "tuf-root", Usage: "initial TUF root.json `FILE` for --tuf-url"},
			&cli.StringFlag{Name: "tuf-cache", Usage: "TUF cache `DIR` (default: the user cache directory)"},
			&cli.StringFlag{Name: "digest", Usage: "the image to verify when LAYOUT holds several (sha256:...)"},
			&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Value: "text", Usage: "result format on stdout: text or json"},
			&cli.BoolFlag{Name: "insecure", Usage: "allow plain HTTP to a loopback registry (127.0.0.0/8, ::1, localhost); refused for any other host"},
			&cli.StringFlag{Name: "ca-cert", Usage: "trust the CA certificates in PEM `FILE` too, for a registry with a private CA"},
		}, releaseReaderFlags(false)...),
		Action: runVerify,
	}
}

// verifyOptions is what the verify command's flags parse to.
type verifyOptions struct {
	image       string
	policyPath  string
	trustedRoot string
	tufURL      string
	tufRoot     string
	tufCache    string
	digest      string
	output      string
	registry    registryConfig
	release     *release.ClientConfig
}

func verifyOptionsFrom(c *cli.Context) (*verifyOptions, error) {
	if c.NArg() != 1 {
		return nil, usageErrorf("verify takes one LAYOUT (an OCI layout directory written by twinforge build) or image reference (REGISTRY/REPOSITORY@sha256:...), got %d arguments", c.NArg())
	}
	o := &verifyOptions{
		image:       c.Args().First(),
		policyPath:  c.String("policy"),
		trustedRoot: c.String("trusted-root"),
		tufURL:      c.String("tuf-url"),
		tufRoot:     c.String("tuf-root"),
		tufCache:    c.String("tuf-cache"),
		digest:      c.String("digest"),
		output:      c.String("output"),
	}
	var err error
	if o.registry, err = registryConfigFrom(c); err != nil {
		return nil, err
	}
	if o.release, err = releaseReaderFrom(c, o.registry); err != nil {
		return nil, err
	}
	return o, o.validate()
}

func (o *verifyOptions) validate() error {
	if err := oneOf("output", o.output, "text", "json"); err != nil {
		return usageError(err)
	}
	switch {
	case o.trustedRoot != "" && o.tufURL != "":
		return usageErrorf("give --trusted-root or --tuf-url, not both")
	case o.tufURL != "" && o.tufRoot == "":
		return usageErrorf("--tuf-url needs --tuf-root: the initial root.json to trust")
	case o.tufURL == "" && (o.tufRoot != "" || o.tufCache != ""):
		return usageErrorf("--tuf-root and --tuf-cache go with --tuf-url")
	}
	return nil
}

// trustedMaterial loads the trusted root the flags name; nil when none is
// named.
func (o *verifyOptions) trustedMaterial(ctx context.Context) (root.TrustedMaterial, error) {
	switch {
	case o.trustedRoot != "":
		tr, err := verify.LoadTrustedRoot(o.trustedRoot)
		if err != nil {
			return nil, usageError(err)
		}
		return tr, nil
	case o.tufURL != "":
		initial, err := os.ReadFile(o.tufRoot)
		if err != nil {
			return nil, usageErrorf("--tuf-root: %w", err)
		}
		return verify.TrustedRootFromTUF(ctx, verify.TUFConfig{MetadataURL: o.tufURL, CacheDir: o.tufCache, InitialRoot: initial})
	}
	return nil, nil
}

func runVerify(c *cli.Context) error {
	o, err := verifyOptionsFrom(c)
	if err != nil {
		return err
	}
	policy, err := verify.LoadPolicy(o.policyPath)
	if err != nil {
		return usageError(err)
	}
	if policy.NeedsTrustedRoot() && o.trustedRoot == "" && o.tufURL == "" {
		return usageErrorf("the policy trusts certificates, timestamps or a log: give --trusted-root FILE or --tuf-url URL --tuf-root FILE")
	}
	src, err := evidence.Open(o.image, o.registry.options()...)
	if err != nil {
		return err
	}
	ev, err := src.Evidence(c.Context, o.digest)
	if err != nil {
		return err
	}
	tm, err := o.trustedMaterial(c.Context)
	if err != nil {
		return err
	}
	var released *release.Target
	if o.release != nil {
		if ev.Repository == "" {
			return usageErrorf("--release-repo checks an image in a registry against the index; %s is an OCI layout", ev.Where)
		}
		if released, err = release.Check(c.Context, *o.release, ev.Repository, ev.Tag, ev.Digest.String()); err != nil {
			return releaseRefusal(c, o, ev, err)
		}
		// Only the provenance the release names counts.
		if ev.Provenance, err = release.ReleasedProvenance(ev.Provenance, released); err != nil {
			return releaseRefusal(c, o, ev, err)
		}
	}
	res, err := ev.Verify(c.Context, tm, policy)
	var ve *verify.VerificationError
	if errors.As(err, &ve) {
		if o.output == "json" {
			if werr := writeJSON(c.App.Writer, evidence.NewRefusal(ev, ve.Check, ve.Err)); werr != nil {
				return werr
			}
		}
		return fmt.Errorf("%s refused: %w", ev.Name(), err)
	}
	if err != nil {
		return err
	}
	return writeOutput(c.App.Writer, o.output, evidence.Report{Verified: true, Image: ev.Where, ResolvedFrom: ev.ResolvedFrom, Policy: o.policyPath, RequiredVerdicts: policy.RequiredRebuildVerdicts(), Release: released, Result: res.Result})
}

// releaseRefusal reports a refusal of the release index (exit 4) or a
// failure to read it (exit 1).
func releaseRefusal(c *cli.Context, o *verifyOptions, ev *evidence.Evidence, err error) error {
	var re *release.Error
	if !errors.As(err, &re) {
		return err
	}
	if o.output == "json" {
		if werr := writeJSON(c.App.Writer, evidence.NewRefusal(ev, re.Check, err)); werr != nil {
			return werr
		}
	}
	return refused(fmt.Errorf("%s refused: %w", ev.Name(), err))
}
