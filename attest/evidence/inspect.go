package evidence

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	intoto "github.com/in-toto/attestation/go/v1"

	"github.com/twinforge/twinforge/attest/verify"
)

// Claim is one line of what evidence claims: a label (empty for a
// continuation of the line before) and its value.
type Claim struct {
	Label, Value string
}

// Inspect describes what the first provenance/signature pair claims about
// the image, WITHOUT verifying any of it (`twinforge attest inspect`): the
// subjects, the build (type, builder, source, context, build arguments,
// materials, builder dependencies, rebuild, times) and, for each bundle,
// the signer, certificate, timestamps and log entries. It also returns the
// provenance bundle's description, whose Payload is the statement itself.
// An image without provenance is an error saying what it has.
func (e *Evidence) Inspect() ([]Claim, *verify.BundleInfo, error) {
	first := e.Candidates()[0]
	if first.Provenance == nil {
		if first.Image == nil {
			return nil, nil, fmt.Errorf("%s is not signed: no %s/%s", e.Name(), verify.AttestationsDir, verify.ProvenanceFile)
		}
		return nil, nil, fmt.Errorf("%s has an image signature but no provenance (%s/%s)", e.Name(), verify.AttestationsDir, verify.ProvenanceFile)
	}
	prov, err := verify.Describe(first.Provenance)
	if err != nil {
		return nil, nil, err
	}
	var img *verify.BundleInfo
	if first.Image != nil {
		if img, err = verify.Describe(first.Image); err != nil {
			return nil, nil, err
		}
	}
	var out claims
	out.add("image", "%s (%s)", e.Digest, e.Where)
	out.add("verified", "no: this shows what the bundles claim; run 'twinforge verify'")
	if st := prov.Statement; st == nil {
		out.add("provenance", "not an in-toto statement (%d bytes)", len(prov.Payload))
	} else {
		out.statement(st, e.Digest.String())
	}
	out.signature("provenance", prov)
	if img == nil {
		out.add("image signature", "none")
	} else {
		out.signature("image", img)
	}
	return out, prov, nil
}

type claims []Claim

func (c *claims) add(label, format string, args ...any) {
	*c = append(*c, Claim{Label: label, Value: fmt.Sprintf(format, args...)})
}

// list adds values under one label.
func (c *claims) list(label string, values []string) {
	for i, v := range values {
		if i > 0 {
			label = ""
		}
		c.add(label, "%s", v)
	}
}

func (c *claims) statement(st *intoto.Statement, digest string) {
	for _, s := range st.GetSubject() {
		c.add("subject", "%s %s", s.GetName(), digestSet(s.GetDigest()))
	}
	c.add("predicate", "%s", st.GetPredicateType())
	p, err := verify.ProvenancePredicate(st)
	if err != nil {
		return
	}
	bd, rd := p.GetBuildDefinition(), p.GetRunDetails()
	ext := bd.GetExternalParameters().GetFields()
	c.add("build type", "%s", bd.GetBuildType())
	c.add("builder", "%s", rd.GetBuilder().GetId())
	if src := ext["source"].GetStructValue().GetFields(); src != nil {
		c.add("source", "%s", join(" @ ", src["repository"].GetStringValue(), src["ref"].GetStringValue()))
	}
	c.add("context", "%s", join(", ", ext["context"].GetStringValue(), "dockerfile "+ext["dockerfile"].GetStringValue(),
		prefixed("target ", ext["target"].GetStringValue()), prefixed("platform ", ext["platform"].GetStringValue())))
	args := ext["buildArgs"].GetStructValue().GetFields()
	var kv []string
	for _, k := range slices.Sorted(maps.Keys(args)) {
		kv = append(kv, k+"="+args[k].GetStringValue())
	}
	c.list("build args", kv)
	var materials, deps []string
	for _, m := range bd.GetResolvedDependencies() {
		materials = append(materials, strings.TrimSpace(m.GetName()+" "+m.GetUri()+" "+digestSet(m.GetDigest())))
	}
	for _, d := range rd.GetBuilder().GetBuilderDependencies() {
		deps = append(deps, d.GetName()+" "+d.GetUri())
	}
	c.list("materials", materials)
	c.list("builder deps", deps)
	c.add("reproduced", "%s", reproduction(digest, rd.GetByproducts()))
	md := rd.GetMetadata()
	if md.GetInvocationId() != "" {
		c.add("invocation", "%s", md.GetInvocationId())
	}
	if md.GetStartedOn() != nil {
		c.add("started", "%s", md.GetStartedOn().AsTime().Format(time.RFC3339))
	}
	if md.GetFinishedOn() != nil {
		c.add("finished", "%s", md.GetFinishedOn().AsTime().Format(time.RFC3339))
	}
}

func (c *claims) signature(what string, b *verify.BundleInfo) {
	c.add(what+" signer", "%s", b.Signer)
	if !b.CertificateNotBefore.IsZero() {
		c.add(what+" certificate", "valid %s to %s", b.CertificateNotBefore.UTC().Format(time.RFC3339), b.CertificateNotAfter.UTC().Format(time.RFC3339))
	}
	if b.MessageDigest != "" {
		c.add(what+" signs", "%s", b.MessageDigest)
	}
	for _, t := range b.Timestamps {
		c.add(what+" timestamp", "%s (RFC 3161)", t.UTC().Format(time.RFC3339))
	}
	for _, e := range b.LogEntries {
		line := fmt.Sprintf("%s entry %d in log %s", e.Kind, e.LogIndex, e.LogID)
		if !e.IntegratedTime.IsZero() {
			line += ", integrated " + e.IntegratedTime.UTC().Format(time.RFC3339)
		}
		c.add(what+" log entry", "%s", line)
	}
}

// reproduction summarises the rebuild byproduct.
func reproduction(digest string, byproducts []*intoto.ResourceDescriptor) string {
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

func digestSet(d map[string]string) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(d)) {
		parts = append(parts, k+":"+d[k])
	}
	return strings.Join(parts, " ")
}

func join(sep string, parts ...string) string {
	return strings.Join(slices.DeleteFunc(slices.Clone(parts), func(s string) bool { return s == "" }), sep)
}

func prefixed(prefix, v string) string {
	if v == "" {
		return ""
	}
	return prefix + v
}
