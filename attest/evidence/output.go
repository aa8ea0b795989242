package evidence

import (
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/twinforge/twinforge/attest/verify"
	"github.com/twinforge/twinforge/distribute/release"
)

// Report is an image that verified as `twinforge verify` prints it; its
// JSON form is `--output json`.
type Report struct {
	Verified bool   `json:"verified"`
	Image    string `json:"image"`
	// ResolvedFrom is the tag a registry image was named by.
	ResolvedFrom string `json:"resolvedFrom,omitempty"`
	Policy       string `json:"policy"`
	// RequiredVerdicts is the policy's requireReproduced.count.
	RequiredVerdicts int `json:"requiredRebuildVerdicts,omitempty"`
	// Release is what the release index says, when one was consulted.
	Release *release.Target `json:"release,omitempty"`
	*verify.Result
}

// Refusal is an image that was refused, with the check that refused it,
// as `twinforge verify --output json` prints it.
type Refusal struct {
	Verified     bool   `json:"verified"`
	Image        string `json:"image"`
	Digest       string `json:"digest"`
	ResolvedFrom string `json:"resolvedFrom,omitempty"`
	Check        string `json:"check"`
	Error        string `json:"error"`
}

// NewRefusal is the refusal of e by check, for err.
func NewRefusal(e *Evidence, check string, err error) Refusal {
	return Refusal{Image: e.Where, Digest: e.Digest.String(), ResolvedFrom: e.ResolvedFrom, Check: check, Error: err.Error()}
}

// WriteText writes the report as the table `twinforge verify` prints.
func (out Report) WriteText(w io.Writer) error {
	r := out.Result
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "verified\t%s\n", r.Digest)
	fmt.Fprintf(tw, "image\t%s\n", out.Image)
	if out.ResolvedFrom != "" {
		fmt.Fprintf(tw, "resolved from\t%s\n", out.ResolvedFrom)
	}
	fmt.Fprintf(tw, "signer\t%s\n", r.Identity)
	if r.ImageSigned {
		fmt.Fprintf(tw, "image signature\tverified, %s\n", r.ImageIdentity)
	} else {
		fmt.Fprintf(tw, "image signature\tnone (the provenance signature binds the digest)\n")
	}
	for _, ts := range r.Timestamps {
		fmt.Fprintf(tw, "signed at\t%s (%s %s)\n", ts.Time.UTC().Format(time.RFC3339), ts.Kind, ts.URI)
	}
	fmt.Fprintf(tw, "transparency log\t%d entr%s verified\n", r.TransparencyLogEntries, plural(r.TransparencyLogEntries, "y", "ies"))
	fmt.Fprintf(tw, "build type\t%s\n", r.BuildType)
	fmt.Fprintf(tw, "builder\t%s\n", r.BuilderID)
	if r.SourceRepository != "" {
		fmt.Fprintf(tw, "source\t%s\n", join(" @ ", r.SourceRepository, r.SourceRef))
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
	if out.RequiredVerdicts > 0 {
		fmt.Fprintf(tw, "rebuild verdicts\t%d distinct trusted rebuilder%s reproduced it (policy requires %d)\n", len(r.ReproducedBy), plural(len(r.ReproducedBy), "", "s"), out.RequiredVerdicts)
		for _, v := range r.RebuildVerdicts {
			if v.Counted {
				fmt.Fprintf(tw, "reproduced by\t%s, %s at %s\n", v.Signer, v.RebuilderID, v.RebuiltOn.UTC().Format(time.RFC3339))
			}
		}
	}
	for _, sb := range r.SBOMs {
		fmt.Fprintf(tw, "sbom\t%s, %d packages, signed by %s\n", sb.PredicateType, sb.Packages, sb.Signer)
	}
	if out.Release != nil {
		fmt.Fprintf(tw, "released\t%s by %s (provenance %s)\n", out.Release.Path(), out.Release.Role, out.Release.ProvenanceName())
	}
	fmt.Fprintf(tw, "policy\t%s\n", out.Policy)
	return tw.Flush()
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
