package kube

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"sigs.k8s.io/yaml"
)

// DeployReport is a deployment as `twinforge workers deploy` reports it;
// its JSON form is `--output json`.
type DeployReport struct {
	Pool     string   `json:"pool"`
	Workers  []string `json:"workers"`
	Removed  []string `json:"removed"`
	CertsDir string   `json:"certsDir"`
	NewCA    bool     `json:"newCA"`
	DryRun   bool     `json:"dryRun"`
}

// Report describes d, of the pool of c; dryRun says nothing was applied.
func (d *Deployment) Report(c Cluster, dryRun bool) DeployReport {
	removed := d.Removed
	if removed == nil {
		removed = []string{}
	}
	return DeployReport{Pool: c.String(), Workers: d.Workers, Removed: removed, CertsDir: d.CertsDir, NewCA: d.NewCA, DryRun: dryRun}
}

// WriteText writes what was (or would be) deployed and where the CA is.
func (r DeployReport) WriteText(w io.Writer) error {
	verb := "deployed"
	if r.DryRun {
		verb = "would deploy"
	}
	fmt.Fprintf(w, "%s %d workers of %s: %s\n", verb, len(r.Workers), r.Pool, strings.Join(r.Workers, ", "))
	if len(r.Removed) > 0 {
		fmt.Fprintf(w, "removed: %s\n", strings.Join(r.Removed, ", "))
	}
	ca := "CA kept in"
	if r.NewCA {
		ca = "new CA in"
	}
	_, err := fmt.Fprintf(w, "%s %s\n", ca, r.CertsDir)
	return err
}

// WriteYAML writes the objects applied (Secrets included) as a YAML
// stream.
func (d *Deployment) WriteYAML(w io.Writer) error {
	for _, obj := range d.Objects {
		b, err := yaml.Marshal(obj)
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "---\n%s", b)
	}
	return nil
}

// WriteText writes the pool as the table `twinforge workers list` prints,
// then the builds waiting.
func (st *PoolStatus) WriteText(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "WORKER\tNODE\tREADY\tBUILDING")
	for _, ws := range st.Workers {
		ready := "yes"
		if !ws.Ready {
			ready = "no: " + ws.Reason
		}
		building := "-"
		if ws.Holder != "" {
			building = ws.Purpose + " (" + ws.Holder + ")"
		}
		node := ws.Node
		if node == "" {
			node = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", ws.Name, node, ready, building)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for i, p := range st.Waiting {
		fmt.Fprintf(w, "waiting %d: %s\n", i+1, p)
	}
	return nil
}
