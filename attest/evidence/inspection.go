package evidence

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"
)

// Inspection is what Inspect found, as `twinforge attest inspect` prints
// it: the claims as a table, or the provenance statement itself.
type Inspection struct {
	Claims []Claim
	// Statement is the provenance bundle's payload.
	Statement []byte
}

// Inspection is Inspect's result as an Inspection.
func (e *Evidence) Inspection() (*Inspection, error) {
	claims, prov, err := e.Inspect()
	if err != nil {
		return nil, err
	}
	return &Inspection{Claims: claims, Statement: prov.Payload}, nil
}

// WriteText writes the claims, one label and value a line.
func (in *Inspection) WriteText(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, l := range in.Claims {
		fmt.Fprintf(tw, "%s\t%s\n", l.Label, l.Value)
	}
	return tw.Flush()
}

// WriteStatement writes the provenance statement as indented JSON, as it
// was signed but for white space, for jq and the like.
func (in *Inspection) WriteStatement(w io.Writer) error {
	var buf bytes.Buffer
	if err := json.Indent(&buf, in.Statement, "", "  "); err != nil {
		return fmt.Errorf("provenance payload is not JSON: %w", err)
	}
	buf.WriteByte('\n')
	_, err := w.Write(buf.Bytes())
	return err
}
