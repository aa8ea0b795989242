package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/urfave/cli/v2"

	"github.com/twinforge/twinforge/attest"
)

func verifyCommand() *cli.Command {
	return &cli.Command{
		Name:      "verify",
		Usage:     "verify an image's signatures and provenance against a policy",
		ArgsUsage: "LAYOUT",
		Description: `Verifies the image in the OCI layout LAYOUT with the bundles twinforge build
wrote beside it (LAYOUT/attestations/*.sigstore.json): each signature, that it
is about the image's digest, the signing certificate against the trusted root,
the RFC 3161 timestamp and the transparency log entry; then that the signer is
one of the policy's identities and that the provenance satisfies the policy
(source repository, builder, reproduced, age). Nothing is fetched but the
trusted root from TUF when --tuf-url is given.

Exit status 4 names the check that refused the image.

Examples:
  twinforge verify --policy policy.yaml --trusted-root trusted_root.json out/hello
  twinforge verify --policy policy.yaml --tuf-url https://tuf.example/ \
      --tuf-root root.json --output json out/hello`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "policy", Usage: "policy `FILE` (see attest/policy.md)", Required: true},
			&cli.StringFlag{Name: "trusted-root", Usage: "Sigstore trusted root `FILE` (trusted_root.json)"},
			&cli.StringFlag{Name: "tuf-url", Usage: "fetch the trusted root from the TUF repository at `URL`"},
			&cli.StringFlag{Name: "tuf-root", Usage: "initial TUF root.json `FILE` for --tuf-url"},
			&cli.StringFlag{Name: "tuf-cache", Usage: "TUF cache `DIR` (default: the user cache directory)"},
			&cli.StringFlag{Name: "digest", Usage: "the image to verify when LAYOUT holds several (sha256:...)"},
			&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Value: "text", Usage: "result format on stdout: text or json"},
		},
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
}

func verifyOptionsFrom(c *cli.Context) (*verifyOptions, error) {
	if c.NArg() != 1 {
		return nil, usageErrorf("verify takes one LAYOUT (an OCI layout directory written by twinforge build), got %d arguments", c.NArg())
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
		tr, err := attest.LoadTrustedRoot(o.trustedRoot)
		if err != nil {
			return nil, usageError(err)
		}
		return tr, nil
	case o.tufURL != "":
		initial, err := os.ReadFile(o.tufRoot)
		if err != nil {
			return nil, usageErrorf("--tuf-root: %w", err)
		}
		return attest.TrustedRootFromTUF(ctx, attest.TUFConfig{MetadataURL: o.tufURL, CacheDir: o.tufCache, InitialRoot: initial})
	}
	return nil, nil
}

// imageEvidence is what verify needs of an image, wherever it is stored.
type imageEvidence struct {
	where    string // what the user named, for messages
	digest   string
	manifest []byte
	bundles  attest.Bundles
}

// evidenceSource finds an image and its bundles. Only OCI layouts are
// supported for now; a registry source will implement the same.
type evidenceSource interface {
	evidence(ctx context.Context, digest string) (*imageEvidence, error)
}

func evidenceSourceFor(image string) (evidenceSource, error) {
	fi, err := os.Stat(image)
	switch {
	case err == nil && fi.IsDir():
		return layoutSource(image), nil
	case err == nil:
		return nil, usageErrorf("%s is a file: give an OCI layout directory", image)
	case strings.Contains(image, "/") && (strings.Contains(image, "@") || strings.Contains(image, ":")) && !strings.HasPrefix(image, ".") && !strings.HasPrefix(image, "/"):
		return nil, usageErrorf("%s looks like an image reference: verifying images in a registry is not supported yet; give an OCI layout directory", image)
	}
	return nil, usageErrorf("OCI layout %s: %w", image, errors.Unwrap(err))
}

// layoutSource is an OCI layout directory with its attestations beside it.
type layoutSource string

func (l layoutSource) evidence(_ context.Context, digest string) (*imageEvidence, error) {
	dir := string(l)
	if digest == "" {
		d, err := attest.ImageDigest(dir)
		if err != nil {
			return nil, usageError(err)
		}
		digest = d
	}
	manifest, err := attest.ReadManifest(dir, digest)
	if err != nil {
		return nil, err
	}
	bundles, err := attest.ReadBundles(dir)
	if err != nil {
		return nil, err
	}
	return &imageEvidence{where: dir, digest: digest, manifest: manifest, bundles: bundles}, nil
}

func runVerify(c *cli.Context) error {
	o, err := verifyOptionsFrom(c)
	if err != nil {
		return err
	}
	policy, err := attest.LoadPolicy(o.policyPath)
	if err != nil {
		return usageError(err)
	}
	if policy.NeedsTrustedRoot() && o.trustedRoot == "" && o.tufURL == "" {
		return usageErrorf("the policy trusts certificates, timestamps or a log: give --trusted-root FILE or --tuf-url URL --tuf-root FILE")
	}
	src, err := evidenceSourceFor(o.image)
	if err != nil {
		return err
	}
	ev, err := src.evidence(c.Context, o.digest)
	if err != nil {
		return err
	}
	tm, err := o.trustedMaterial(c.Context)
	if err != nil {
		return err
	}
	res, err := attest.Verify(c.Context, attest.VerifyRequest{
		Digest:        ev.digest,
		ImageManifest: ev.manifest,
		Provenance:    ev.bundles.Provenance,
		Image:         ev.bundles.Image,
		TrustedRoot:   tm,
		Policy:        policy,
	})
	var ve *attest.VerificationError
	if errors.As(err, &ve) {
		if o.output == "json" {
			if werr := writeAttestJSON(c.App.Writer, verifyRefusal{Verified: false, Image: ev.where, Digest: ev.digest, Check: ve.Check, Error: ve.Err.Error()}); werr != nil {
				return werr
			}
		}
		return refused(fmt.Errorf("%s (%s) refused: %w", ev.where, ev.digest, err))
	}
	if err != nil {
		return err
	}
	return writeVerifyResult(c.App.Writer, o.output, verifyOutput{Verified: true, Image: ev.where, Policy: o.policyPath, Result: res})
}

type verifyOutput struct {
	Verified bool   `json:"verified"`
	Image    string `json:"image"`
	Policy   string `json:"policy"`
	*attest.Result
}

type verifyRefusal struct {
	Verified bool   `json:"verified"`
	Image    string `json:"image"`
	Digest   string `json:"digest"`
	Check    string `json:"check"`
	Error    string `json:"error"`
}

func writeAttestJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func writeVerifyResult(w io.Writer, format string, out verifyOutput) error {
	if format == "json" {
		return writeAttestJSON(w, out)
	}
	r := out.Result
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "verified\t%s\n", r.Digest)
	fmt.Fprintf(tw, "image\t%s\n", out.Image)
	fmt.Fprintf(tw, "signer\t%s\n", r.Identity)
	if r.ImageSigned {
		fmt.Fprintf(tw, "image signature\tverified, %s\n", r.ImageIdentity)
	} else {
		fmt.Fprintf(tw, "image signature\tnone (the provenance signature binds the digest)\n")
	}
	for _, ts := range r.Timestamps {
		fmt.Fprintf(tw, "signed at\t%s (%s %s)\n", ts.Time.UTC().Format(time.RFC3339), ts.Kind, ts.URI)
	}
	fmt.Fprintf(tw, "transparency log\t%d entr%s verified\n", r.TransparencyLogEntries, attestPlural(r.TransparencyLogEntries, "y", "ies"))
	fmt.Fprintf(tw, "build type\t%s\n", r.BuildType)
	fmt.Fprintf(tw, "builder\t%s\n", r.BuilderID)
	if r.SourceRepository != "" {
		fmt.Fprintf(tw, "source\t%s\n", attestJoin(" @ ", r.SourceRepository, r.SourceRef))
	}
	switch {
	case r.Reproduced:
		fmt.Fprintf(tw, "reproduced\tyes (rebuild %s)\n", r.RebuildDigest)
	case r.RebuildDigest != "":
		fmt.Fprintf(tw, "reproduced\tno (rebuild %s)\n", r.RebuildDigest)
	default:
		fmt.Fprintf(tw, "reproduced\tno (not rebuilt)\n")
	}
	if !r.FinishedOn.IsZero() {
		fmt.Fprintf(tw, "built\t%s\n", r.FinishedOn.UTC().Format(time.RFC3339))
	}
	fmt.Fprintf(tw, "policy\t%s\n", out.Policy)
	return tw.Flush()
}

func attestPlural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

func attestJoin(sep string, parts ...string) string {
	var keep []string
	for _, p := range parts {
		if p != "" {
			keep = append(keep, p)
		}
	}
	return strings.Join(keep, sep)
}
