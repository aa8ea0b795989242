package pipeline

import (
	"errors"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/twinforge/twinforge/attest/verify"
	"github.com/twinforge/twinforge/distribute"
	"github.com/twinforge/twinforge/internal/textout"
	"github.com/twinforge/twinforge/isolation"
	"github.com/twinforge/twinforge/rebuild"
	"github.com/twinforge/twinforge/rebuild/imagediff"
)

// Output is the result of a build as `twinforge build` prints it; its JSON
// form is `--output json`.
type Output struct {
	Digest          string         `json:"digest"`
	MediaType       string         `json:"mediaType"`
	Platform        string         `json:"platform"`
	OCILayout       string         `json:"ociLayout"`
	DurationSeconds float64        `json:"durationSeconds"`
	Builder         isolation.Info `json:"builder"`
	Rebuild         *RebuildOutput `json:"rebuild"`
	Reproducible    bool           `json:"reproducible"`
	// Reproduction says how the digest was proven: "reproduced",
	// "not reproducible" or "not reproduced" (NoRebuild).
	Reproduction string           `json:"reproduction"`
	Signature    *SignatureOutput `json:"signature,omitempty"`
	// Verdict is the rebuild verdict the rebuilder signed itself (Vouch).
	Verdict *SignatureOutput       `json:"verdict,omitempty"`
	Push    *distribute.PushResult `json:"push,omitempty"`
}

// RebuildOutput is the rebuild that proved the build.
type RebuildOutput struct {
	Digest          string              `json:"digest"`
	OCILayout       string              `json:"ociLayout"`
	DurationSeconds float64             `json:"durationSeconds"`
	Builder         isolation.Info      `json:"builder"`
	Variations      []rebuild.Variation `json:"variations"`
	Diff            *imagediff.Report   `json:"diff,omitempty"`
	// StrictVariations is off, warn or fail; Strict the strict rebuild,
	// Warnings what only the pinned variations changed.
	StrictVariations rebuild.Strictness `json:"strictVariations"`
	Strict           *StrictOutput      `json:"strict,omitempty"`
	Warnings         []rebuild.Warning  `json:"warnings,omitempty"`
}

// StrictOutput is the strict rebuild, which also varied what BuildKit pins.
type StrictOutput struct {
	Digest    string            `json:"digest"`
	OCILayout string            `json:"ociLayout"`
	Builder   isolation.Info    `json:"builder"`
	Diff      *imagediff.Report `json:"diff,omitempty"`
}

// SignatureOutput is what the attestation step signed.
type SignatureOutput struct {
	Method   string   `json:"method"`
	Identity string   `json:"identity,omitempty"`
	Bundles  []string `json:"bundles,omitempty"`
	// SBOMs are the signed SBOM attestations.
	SBOMs []string `json:"sboms,omitempty"`
}

// String names a signer identity for output.
func (s *SignatureOutput) String() string {
	if s.Method == "none" {
		return "none (unsigned: use --sign keyless or --sign key=FILE)"
	}
	return s.Method + " as " + s.Identity
}

// NewOutput describes res, built and signed with method (keyless, key or
// none), after Run returned runErr. A build that did not reproduce
// (*rebuild.DiffError) carries the diff and no signature; one refused by
// --strict-variations=fail (*rebuild.StrictFailure) is reported not
// reproducible and unsigned.
func NewOutput(res *Result, method string, runErr error) Output {
	var diff *rebuild.DiffError
	errors.As(runErr, &diff)
	b := res.Build
	out := Output{
		Digest:          b.Digest,
		MediaType:       b.MediaType,
		Platform:        b.Platform,
		OCILayout:       b.OCILayout,
		DurationSeconds: b.Duration.Seconds(),
		Builder:         b.Builder,
		Reproduction:    res.Reproduction(),
		Reproducible:    diff == nil && res.Reproduction() == "reproduced",
		Push:            res.Push,
	}
	if p := res.Proof; p != nil {
		out.Rebuild = &RebuildOutput{
			Digest:           p.Rebuild.Digest,
			OCILayout:        p.Rebuild.OCILayout,
			DurationSeconds:  p.Rebuild.Duration.Seconds(),
			Builder:          p.Rebuild.Builder,
			Variations:       p.Variations,
			StrictVariations: p.Strictness,
			Warnings:         p.Warnings,
		}
		if s := p.Strict; s != nil {
			out.Rebuild.Strict = &StrictOutput{Digest: s.Digest, OCILayout: s.OCILayout, Builder: s.Builder, Diff: p.StrictReport}
		}
		if diff != nil {
			out.Rebuild.Diff = diff.Report
			out.Reproduction = "not reproducible"
		}
	}
	if diff == nil {
		out.Signature = &SignatureOutput{Method: method, Bundles: res.BundleFiles, SBOMs: res.SBOMFiles}
		if res.Bundles.Provenance != nil {
			out.Signature.Identity = IdentityString(res.Signer)
		}
	}
	if res.Verdict != nil {
		m := "keyless"
		if res.RebuilderSigner.PublicKey != "" {
			m = "key"
		}
		out.Verdict = &SignatureOutput{Method: m, Identity: IdentityString(res.RebuilderSigner), Bundles: res.VerdictFiles}
	}
	if diff == nil && errors.As(runErr, new(*rebuild.StrictFailure)) {
		out.Reproducible, out.Reproduction, out.Signature = false, "not reproducible", nil
	}
	return out
}

// IdentityString names a signer for output: its key, or its subject and
// issuer.
func IdentityString(id verify.SignerIdentity) string {
	if id.PublicKey != "" {
		return "key " + id.PublicKey
	}
	return id.Subject + " (issuer " + id.Issuer + ")"
}

// WriteText writes the output as the table `twinforge build` prints.
func (out Output) WriteText(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "digest\t%s\n", out.Digest)
	if out.Rebuild != nil {
		fmt.Fprintf(tw, "rebuild digest\t%s\n", out.Rebuild.Digest)
	}
	fmt.Fprintf(tw, "reproduction\t%s\n", out.Reproduction)
	fmt.Fprintf(tw, "platform\t%s\n", out.Platform)
	fmt.Fprintf(tw, "oci-layout\t%s\n", out.OCILayout)
	if out.Rebuild != nil {
		for i, v := range out.Rebuild.Variations {
			label := ""
			if i == 0 {
				label = "variations"
			}
			fmt.Fprintf(tw, "%s\t%s (%s)\n", label, v, v.Class)
		}
		fmt.Fprintf(tw, "strict variations\t%s\n", out.Rebuild.StrictVariations)
		if s := out.Rebuild.Strict; s != nil && s.Digest != out.Rebuild.Digest {
			fmt.Fprintf(tw, "strict rebuild\t%s (%d warnings)\n", s.Digest, len(out.Rebuild.Warnings))
		}
	}
	if out.Signature != nil {
		fmt.Fprintf(tw, "signature\t%s\n", out.Signature)
		for _, b := range append(append([]string{}, out.Signature.Bundles...), out.Signature.SBOMs...) {
			fmt.Fprintf(tw, "\t%s\n", b)
		}
	}
	if out.Verdict != nil {
		fmt.Fprintf(tw, "rebuild verdict\tsigned by the rebuilder, %s\n", out.Verdict)
		for _, b := range out.Verdict.Bundles {
			fmt.Fprintf(tw, "\t%s\n", b)
		}
	}
	if out.Push != nil {
		fmt.Fprintf(tw, "pushed\t%s@%s (%d referrers, %s)\n", out.Push.Repository, out.Push.Digest, len(out.Push.Referrers), out.Push.ReferrersMode)
		if out.Push.Tag != "" {
			fmt.Fprintf(tw, "tag\t%s\n", out.Push.Tag)
		}
	}
	fmt.Fprintf(tw, "duration\t%.1fs\n", out.DurationSeconds)
	return tw.Flush()
}

// Show writes what Run returned as `twinforge build` shows it, and returns
// runErr unless writing failed. The rebuild's warnings and, unless quiet,
// each side's time and cache go to stderr; the Output goes to stdout in
// format (text or json, package internal/textout) — for a build that did
// not reproduce too, so that scripts see both digests — and in text, what
// differs follows on stderr. method is the signing method (keyless, key or
// none).
func Show(stdout, stderr io.Writer, format string, quiet bool, method string, res *Result, runErr error) error {
	if res != nil && res.Proof != nil {
		rebuild.WriteWarnings(stderr, res.Proof.Warnings)
		if !quiet {
			res.Proof.WriteSides(stderr)
		}
	}
	var diff *rebuild.DiffError
	if res != nil && (errors.As(runErr, &diff) || errors.As(runErr, new(*rebuild.StrictFailure))) {
		if err := textout.Write(stdout, format, NewOutput(res, method, runErr)); err != nil {
			return err
		}
	}
	if diff != nil && format == "text" && diff.Report != nil {
		against := "rebuild"
		if diff.Class == rebuild.Pinned {
			against = "strict rebuild"
		}
		fmt.Fprintf(stderr, "\nwhat differs between the build and the %s:\n", against)
		_ = diff.Report.WriteText(stderr)
	}
	if runErr != nil {
		return runErr
	}
	return textout.Write(stdout, format, NewOutput(res, method, nil))
}
