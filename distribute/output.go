package distribute

import (
	"fmt"
	"io"
)

// WriteText writes the push as `twinforge push` prints it.
func (r *PushResult) WriteText(w io.Writer) error {
	fmt.Fprintf(w, "pushed     %s\n", r.Reference())
	if r.Tag != "" {
		fmt.Fprintf(w, "tag        %s (moved after verification)\n", r.Tag)
	}
	for _, ref := range r.Referrers {
		fmt.Fprintf(w, "referrer   %s %s\n", ref.Digest, ref.ArtifactType)
	}
	if r.ReferrersMode != "" {
		_, err := fmt.Fprintf(w, "referrers  listed by %s\n", r.ReferrersMode)
		return err
	}
	return nil
}

// DestReport is one destination of Replicate as `twinforge replicate
// --output json` prints it.
type DestReport struct {
	Destination   string   `json:"destination"`
	Digest        string   `json:"digest,omitempty"`
	Referrers     []string `json:"referrers"`
	ReferrersMode string   `json:"referrersMode,omitempty"`
	Status        string   `json:"status"`
	Error         string   `json:"error,omitempty"`
	DurationMs    int64    `json:"durationMs"`
}

// Status is "copied", "present" (nothing needed writing) or "failed".
func (r DestResult) Status() string {
	switch {
	case r.Err != nil:
		return "failed"
	case r.Skipped:
		return "present"
	}
	return "copied"
}

// Report describes r.
func (r DestResult) Report() DestReport {
	o := DestReport{
		Destination:   r.Repository.String(),
		Digest:        r.Digest.String(),
		Referrers:     make([]string, 0, len(r.Referrers)),
		ReferrersMode: string(r.ReferrersMode),
		Status:        r.Status(),
		DurationMs:    r.Duration.Milliseconds(),
	}
	for _, h := range r.Referrers {
		o.Referrers = append(o.Referrers, h.String())
	}
	if r.Err != nil {
		o.Error = r.Err.Error()
	}
	return o
}
