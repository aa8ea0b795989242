package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	intoto "github.com/in-toto/attestation/go/v1"
	"github.com/urfave/cli/v2"

	"github.com/twinforge/twinforge/attest/evidence"
	"github.com/twinforge/twinforge/attest/verify"
)

func attestCommand() *cli.Command {
	return &cli.Command{
		Name:  "attest",
		Usage: "work with the attestations beside an image",
		Subcommands: []*cli.Command{
			{
				Name:      "inspect",
				Usage:     "show an image's provenance and signatures (without verifying them)",
				ArgsUsage: "LAYOUT",
				Description: `Prints what the bundles beside the OCI layout LAYOUT claim: the image, the
provenance (builder, source, materials, rebuild), the signer, timestamps and log
entries. Nothing is verified: use 'twinforge verify' to trust any of it.
--output json prints the provenance statement itself.

Examples:
  twinforge attest inspect out/hello
  twinforge attest inspect --output json out/hello | jq .predicate.runDetails`,
				Flags: []cli.Flag{
					&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Value: "text", Usage: "text, or json for the provenance statement"},
				},
				Action: runAttestInspect,
			},
		},
	}
}

func runAttestInspect(c *cli.Context) error {
	if c.NArg() != 1 {
		return usageErrorf("attest inspect takes one LAYOUT, got %d arguments", c.NArg())
	}
	output := c.String("output")
	if err := oneOf("output", output, "text", "json"); err != nil {
		return usageError(err)
	}
	src, err := evidence.Open(c.Args().First())
	if err != nil {
		return err
	}
	ev, err := src.Evidence(c.Context, "")
	if err != nil {
		return err
	}
	first := ev.Candidates()[0]
	if first.Provenance == nil {
		if first.Image == nil {
			return fmt.Errorf("%s (%s) is not signed: no %s/%s", ev.Where, ev.Digest, verify.AttestationsDir, verify.ProvenanceFile)
		}
		return fmt.Errorf("%s (%s) has an image signature but no provenance (%s/%s)", ev.Where, ev.Digest, verify.AttestationsDir, verify.ProvenanceFile)
	}
	prov, err := verify.Describe(first.Provenance)
	if err != nil {
		return err
	}
	if output == "json" {
		var buf bytes.Buffer
		if err := json.Indent(&buf, prov.Payload, "", "  "); err != nil {
			return fmt.Errorf("provenance payload is not JSON: %w", err)
		}
		buf.WriteByte('\n')
		_, err := c.App.Writer.Write(buf.Bytes())
		return err
	}
	var img *verify.BundleInfo
	if first.Image != nil {
		if img, err = verify.Describe(first.Image); err != nil {
			return err
		}
	}
	return writeInspection(c.App.Writer, ev, prov, img)
}

func writeInspection(w io.Writer, ev *evidence.Evidence, prov, img *verify.BundleInfo) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "image\t%s (%s)\n", ev.Digest, ev.Where)
	fmt.Fprintf(tw, "verified\tno: this shows what the bundles claim; run 'twinforge verify'\n")
	st := prov.Statement
	if st == nil {
		fmt.Fprintf(tw, "provenance\tnot an in-toto statement (%d bytes)\n", len(prov.Payload))
	} else {
		for _, s := range st.GetSubject() {
			fmt.Fprintf(tw, "subject\t%s %s\n", s.GetName(), inspectDigestSet(s.GetDigest()))
		}
		fmt.Fprintf(tw, "predicate\t%s\n", st.GetPredicateType())
		if p, err := verify.ProvenancePredicate(st); err == nil {
			bd, rd := p.GetBuildDefinition(), p.GetRunDetails()
			ext := bd.GetExternalParameters().GetFields()
			fmt.Fprintf(tw, "build type\t%s\n", bd.GetBuildType())
			fmt.Fprintf(tw, "builder\t%s\n", rd.GetBuilder().GetId())
			if src := ext["source"].GetStructValue().GetFields(); src != nil {
				fmt.Fprintf(tw, "source\t%s\n", attestJoin(" @ ", src["repository"].GetStringValue(), src["ref"].GetStringValue()))
			}
			fmt.Fprintf(tw, "context\t%s\n", attestJoin(", ",
				ext["context"].GetStringValue(),
				"dockerfile "+ext["dockerfile"].GetStringValue(),
				inspectPrefixed("target ", ext["target"].GetStringValue()),
				inspectPrefixed("platform ", ext["platform"].GetStringValue())))
			if args := ext["buildArgs"].GetStructValue().GetFields(); len(args) > 0 {
				keys := make([]string, 0, len(args))
				for k := range args {
					keys = append(keys, k)
				}
				sort.Strings(keys)
				for i, k := range keys {
					fmt.Fprintf(tw, "%s\t%s=%s\n", inspectLabel(i, "build args"), k, args[k].GetStringValue())
				}
			}
			for i, m := range bd.GetResolvedDependencies() {
				fmt.Fprintf(tw, "%s\t%s\n", inspectLabel(i, "materials"), strings.TrimSpace(m.GetName()+" "+m.GetUri()+" "+inspectDigestSet(m.GetDigest())))
			}
			for i, d := range rd.GetBuilder().GetBuilderDependencies() {
				fmt.Fprintf(tw, "%s\t%s %s\n", inspectLabel(i, "builder deps"), d.GetName(), d.GetUri())
			}
			fmt.Fprintf(tw, "reproduced\t%s\n", inspectReproduction(ev.Digest.String(), rd.GetByproducts()))
			md := rd.GetMetadata()
			if md.GetInvocationId() != "" {
				fmt.Fprintf(tw, "invocation\t%s\n", md.GetInvocationId())
			}
			if md.GetStartedOn() != nil {
				fmt.Fprintf(tw, "started\t%s\n", md.GetStartedOn().AsTime().Format(time.RFC3339))
			}
			if md.GetFinishedOn() != nil {
				fmt.Fprintf(tw, "finished\t%s\n", md.GetFinishedOn().AsTime().Format(time.RFC3339))
			}
		}
	}
	inspectSignature(tw, "provenance", prov)
	if img == nil {
		fmt.Fprintf(tw, "image signature\tnone\n")
	} else {
		inspectSignature(tw, "image", img)
	}
	return tw.Flush()
}

func inspectSignature(tw io.Writer, what string, b *verify.BundleInfo) {
	fmt.Fprintf(tw, "%s signer\t%s\n", what, b.Signer)
	if !b.CertificateNotBefore.IsZero() {
		fmt.Fprintf(tw, "%s certificate\tvalid %s to %s\n", what, b.CertificateNotBefore.UTC().Format(time.RFC3339), b.CertificateNotAfter.UTC().Format(time.RFC3339))
	}
	if b.MessageDigest != "" {
		fmt.Fprintf(tw, "%s signs\t%s\n", what, b.MessageDigest)
	}
	for _, t := range b.Timestamps {
		fmt.Fprintf(tw, "%s timestamp\t%s (RFC 3161)\n", what, t.UTC().Format(time.RFC3339))
	}
	for _, e := range b.LogEntries {
		line := fmt.Sprintf("%s entry %d in log %s", e.Kind, e.LogIndex, e.LogID)
		if !e.IntegratedTime.IsZero() {
			line += ", integrated " + e.IntegratedTime.UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%s log entry\t%s\n", what, line)
	}
}

// reproduction summarises the rebuild byproduct.
func inspectReproduction(digest string, byproducts []*intoto.ResourceDescriptor) string {
	for _, bp := range byproducts {
		if bp.GetName() != verify.RebuildByproduct {
			continue
		}
		ann := bp.GetAnnotations().GetFields()
		d := bp.GetDigest()["sha256"]
		switch {
		case d == "":
			return "no (not rebuilt)"
		case ann["reproduced"].GetBoolValue() && "sha256:"+d == digest:
			return fmt.Sprintf("yes: rebuilt to sha256:%s by %s", d, ann["rebuilderId"].GetStringValue())
		default:
			return fmt.Sprintf("no: the rebuild gave sha256:%s", d)
		}
	}
	return "unknown (no rebuild recorded)"
}

func inspectDigestSet(d map[string]string) string {
	keys := make([]string, 0, len(d))
	for k := range d {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, k+":"+d[k])
	}
	return strings.Join(parts, " ")
}

func inspectLabel(i int, name string) string {
	if i == 0 {
		return name
	}
	return ""
}

func inspectPrefixed(prefix, v string) string {
	if v == "" {
		return ""
	}
	return prefix + v
}
