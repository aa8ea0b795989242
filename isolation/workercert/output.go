package workercert

import (
	"fmt"
	"io"
	"sort"
	"text/tabwriter"
)

// WriteText writes what IssueFiles made: a new CA, then one line per name
// with its identity, certificate and key.
func (f *Files) WriteText(w io.Writer) error {
	if f.NewCA {
		fmt.Fprintf(w, "new CA %s (keep %s on this machine)\n", f.CA, CAKeyFile)
	}
	names := make([]string, 0, len(f.Certs))
	for n := range f.Certs {
		names = append(names, n)
	}
	sort.Strings(names)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, n := range names {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", n, f.Identities[n], f.Certs[n], f.Keys[n])
	}
	return tw.Flush()
}
