package release

import (
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/twinforge/twinforge/distribute"
)

// ReplicationReport is what `twinforge replicate` copied: the image to
// each destination and, when one was replicated with it, the release
// index.
type ReplicationReport struct {
	Images []distribute.DestResult
	// Index is nil when no release index was replicated.
	Index []ReplicaResult
}

// MarshalJSON is the --output json form: the images' reports, or with an
// index {"images": ..., "releaseIndex": ...}.
func (r ReplicationReport) MarshalJSON() ([]byte, error) {
	images := make([]distribute.DestReport, 0, len(r.Images))
	for _, d := range r.Images {
		images = append(images, d.Report())
	}
	if r.Index == nil {
		return json.Marshal(images)
	}
	return json.Marshal(struct {
		Images       []distribute.DestReport `json:"images"`
		ReleaseIndex []ReplicaResult         `json:"releaseIndex"`
	}{images, r.Index})
}

// WriteText writes one line per destination, then per index copy.
func (r ReplicationReport) WriteText(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "DESTINATION\tDIGEST\tREFERRERS\tSTATUS")
	for _, d := range r.Images {
		digest, refs := d.Digest.String(), fmt.Sprint(len(d.Referrers))
		if d.Err != nil {
			digest, refs = "-", "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", d.Repository, digest, refs, d.Status())
	}
	for _, x := range r.Index {
		st, digest := "copied", x.Digest
		if x.Error != "" {
			st, digest = "failed", "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", x.Ref, digest, "release index", st)
	}
	return tw.Flush()
}
