package audit

import (
	"errors"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/twinforge/twinforge/internal/textout"
	"github.com/twinforge/twinforge/rebuild"
)

// WriteText writes the report as the table `twinforge rebuild` prints.
func (out *Report) WriteText(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "image\t%s\n", out.Image)
	if out.ResolvedFrom != "" {
		fmt.Fprintf(tw, "resolved from\t%s\n", out.ResolvedFrom)
	}
	fmt.Fprintf(tw, "provenance\tverified, signed by %s, builder %s\n", out.Provenance.Signer, out.Provenance.BuilderID)
	switch {
	case out.Source.Repository != "":
		fmt.Fprintf(tw, "source\tcommit %s, cloned from %s\n", out.Source.Commit, out.Source.Repository)
	case out.Source.Commit != "":
		fmt.Fprintf(tw, "source\tcommit %s, checkout %s\n", out.Source.Commit, out.Source.Dir)
	default:
		fmt.Fprintf(tw, "source\ttree %s\n", out.Source.Dir)
	}
	fmt.Fprintf(tw, "digest\t%s\n", out.Digest)
	fmt.Fprintf(tw, "rebuilt digest\t%s\n", out.RebuiltDigest)
	fmt.Fprintf(tw, "reproduction\t%s\n", out.Reproduction)
	fmt.Fprintf(tw, "oci-layout\t%s\n", out.OCILayout)
	fmt.Fprintf(tw, "rebuilder\t%s (buildkit %s, %s)\n", out.RebuilderID, out.Rebuilder.BuildKitVersion, out.Rebuilder.Runc)
	for i, v := range out.Variations {
		label := ""
		if i == 0 {
			label = "variations"
		}
		fmt.Fprintf(tw, "%s\t%s\n", label, v)
	}
	fmt.Fprintf(tw, "strict variations\t%s\n", out.StrictVariations)
	if len(out.Warnings) > 0 {
		fmt.Fprintf(tw, "warnings\t%d (on stderr)\n", len(out.Warnings))
	}
	if v := out.Verdict; v != nil {
		if v.Method == "none" {
			fmt.Fprintf(tw, "verdict\tnot signed (use --sign keyless or --sign key=FILE)\n")
		} else {
			fmt.Fprintf(tw, "verdict\tsigned %s as %s\n", v.Method, v.Identity)
		}
		for _, f := range v.Files {
			fmt.Fprintf(tw, "\t%s\n", f)
		}
		if v.Push != nil {
			for _, r := range v.Push.Referrers {
				fmt.Fprintf(tw, "pushed\t%s@%s as referrer %s (%s)\n", v.Push.Repository, v.Push.Digest, r.Digest, v.Push.ReferrersMode)
			}
		}
	} else if !out.Reproducible {
		fmt.Fprintf(tw, "verdict\tnone: not reproduced\n")
	}
	fmt.Fprintf(tw, "duration\t%.1fs\n", out.DurationSeconds)
	return tw.Flush()
}

// Show writes what Run returned as `twinforge rebuild` shows it, and
// returns runErr unless writing failed: the warnings on stderr, the Report
// on stdout in format (text or json, package internal/textout) — for an
// image that did not reproduce too — and in text, what differs on stderr.
func Show(stdout, stderr io.Writer, format string, rep *Report, runErr error) error {
	if rep != nil {
		rebuild.WriteWarnings(stderr, rep.Warnings)
	}
	var mm *MismatchError
	if rep != nil && (errors.As(runErr, new(*rebuild.StrictFailure)) || errors.As(runErr, &mm)) {
		if err := textout.Write(stdout, format, rep); err != nil {
			return err
		}
	}
	if mm != nil && format == "text" && mm.Report != nil {
		fmt.Fprintln(stderr, "\nwhat differs between the published image (a) and the rebuild (b):")
		_ = mm.Report.WriteText(stderr)
	}
	if runErr != nil {
		return runErr
	}
	return textout.Write(stdout, format, rep)
}
