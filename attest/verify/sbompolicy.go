package verify

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/package-url/packageurl-go"
	"github.com/sigstore/sigstore-go/pkg/bundle"
	"go.yaml.in/yaml/v3"
	"golang.org/x/mod/semver"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/twinforge/twinforge/attest/sbom"
)

// Checks of SBOM policies.
const (
	// CheckSBOM: an SBOM attestation attached to the image does not verify
	// (signature, signer, subject: an SBOM of another digest is refused).
	CheckSBOM = "sbom"
	// CheckRequireSBOM: the policy requires a signed SBOM and there is none.
	CheckRequireSBOM = "policy.requireSBOM"
	// CheckDeniedPackages: an SBOM lists a package the policy denies.
	CheckDeniedPackages = "policy.deniedPackages"
)

// SBOMResult is one SBOM that verified.
type SBOMResult struct {
	PredicateType string         `json:"predicateType"`
	Signer        SignerIdentity `json:"signer"`
	Packages      int            `json:"packages"`
}

// deniedFile is one deniedPackages entry: {purl: PATTERN, versions: RANGE}.
type deniedFile struct {
	line     int
	purl     string
	versions string
	reason   string
}

func (d *deniedFile) UnmarshalYAML(n *yaml.Node) error {
	d.line = n.Line
	if n.Kind != yaml.MappingNode {
		return fmt.Errorf("line %d: a deniedPackages entry is a mapping with purl and versions", n.Line)
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if v.Kind != yaml.ScalarNode {
			return fmt.Errorf("line %d: %s must be a string", v.Line, k.Value)
		}
		switch k.Value {
		case "purl":
			d.purl = v.Value
		case "versions":
			d.versions = v.Value
		case "reason":
			d.reason = v.Value
		default:
			return fmt.Errorf("line %d: field %s not found in deniedPackages (use purl, versions, reason)", k.Line, k.Value)
		}
	}
	return nil
}

// packageRule denies packages whose purl (type/namespace/name, without
// version or qualifiers) matches and whose version is in range.
type packageRule struct {
	raw      string
	pattern  *regexp.Regexp
	versions []versionBound // all must hold; none means any version
	reason   string
}

type versionBound struct {
	op, version string
}

func (d deniedFile) compile() (packageRule, error) {
	r := packageRule{raw: d.purl, reason: d.reason}
	if !strings.HasPrefix(d.purl, "pkg:") || strings.ContainsAny(d.purl, "@?#") {
		return r, fmt.Errorf("purl %q: want a package URL pattern without version, such as pkg:golang/github.com/example/* or pkg:deb/debian/openssl", d.purl)
	}
	re, err := Glob(d.purl)
	if err != nil {
		return r, fmt.Errorf("purl %q: %v", d.purl, err)
	}
	r.pattern = re
	if v := strings.TrimSpace(d.versions); v != "" && v != "*" {
		for _, part := range strings.Split(v, ",") {
			part = strings.TrimSpace(part)
			op := ""
			for _, o := range []string{"<=", ">=", "!=", "<", ">", "="} {
				if strings.HasPrefix(part, o) {
					op = o
					break
				}
			}
			ver := strings.TrimSpace(strings.TrimPrefix(part, op))
			if op == "" {
				op = "="
			}
			if ver == "" {
				return r, fmt.Errorf("versions %q: want comparisons such as \"< 1.2.3\" or \">= 1.0, < 1.4\" or *", d.versions)
			}
			r.versions = append(r.versions, versionBound{op: op, version: ver})
		}
	}
	return r, nil
}

func (r packageRule) String() string {
	var parts []string
	for _, b := range r.versions {
		parts = append(parts, b.op+" "+b.version)
	}
	s := r.raw
	if len(parts) > 0 {
		s += " versions " + strings.Join(parts, ", ")
	} else {
		s += " (any version)"
	}
	if r.reason != "" {
		s += ": " + r.reason
	}
	return s
}

// denies reports whether the rule denies a package.
func (r packageRule) denies(p sbom.Package) bool {
	u, err := packageurl.FromString(p.PURL)
	if err != nil {
		return false
	}
	base := "pkg:" + u.Type + "/"
	if u.Namespace != "" {
		base += u.Namespace + "/"
	}
	base += u.Name
	if !r.pattern.MatchString(base) {
		return false
	}
	version := u.Version
	if version == "" {
		version = p.Version
	}
	for _, b := range r.versions {
		c := compareVersions(u.Type, version, b.version)
		ok := false
		switch b.op {
		case "<":
			ok = c < 0
		case "<=":
			ok = c <= 0
		case ">":
			ok = c > 0
		case ">=":
			ok = c >= 0
		case "=":
			ok = c == 0
		case "!=":
			ok = c != 0
		}
		if !ok {
			return false
		}
	}
	return true
}

// compareVersions orders versions: Go modules as semantic versions, the
// rest as Debian does (epoch, upstream version, revision; "~" sorts
// first), which also orders plain dotted versions.
func compareVersions(typ, a, b string) int {
	if typ == "golang" {
		va, vb := "v"+strings.TrimPrefix(a, "v"), "v"+strings.TrimPrefix(b, "v")
		if semver.IsValid(va) && semver.IsValid(vb) {
			return semver.Compare(va, vb)
		}
	}
	return debCompare(a, b)
}

func debCompare(a, b string) int {
	// dpkg ignores the white space around a version; no version at all
	// sorts before every version ("0" and "" differ).
	a, b = strings.Trim(a, dpkgSpace), strings.Trim(b, dpkgSpace)
	switch {
	case a == "" && b == "":
		return 0
	case a == "":
		return -1
	case b == "":
		return 1
	}
	ea, ra := splitEpoch(a)
	eb, rb := splitEpoch(b)
	if ea != eb {
		if ea < eb {
			return -1
		}
		return 1
	}
	ua, va := splitRevision(ra)
	ub, vb := splitRevision(rb)
	if c := debPart(ua, ub); c != 0 {
		return c
	}
	return debPart(va, vb)
}

// dpkgSpace is what C's isspace calls white space.
const dpkgSpace = " \t\n\v\f\r"

func splitEpoch(v string) (int, string) {
	if i := strings.IndexByte(v, ':'); i > 0 {
		n := 0
		for _, c := range v[:i] {
			if c < '0' || c > '9' {
				return 0, v
			}
			n = n*10 + int(c-'0')
		}
		return n, v[i+1:]
	}
	return 0, v
}

func splitRevision(v string) (string, string) {
	if i := strings.LastIndexByte(v, '-'); i >= 0 {
		return v[:i], v[i+1:]
	}
	return v, ""
}

// debPart is dpkg's verrevcmp.
func debPart(a, b string) int {
	order := func(c byte) int {
		switch {
		case c >= '0' && c <= '9':
			return 0
		case (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'):
			return int(c)
		case c == '~':
			return -1
		case c == 0:
			return 0
		}
		return int(c) + 256
	}
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		first := 0
		for (i < len(a) && (a[i] < '0' || a[i] > '9')) || (j < len(b) && (b[j] < '0' || b[j] > '9')) {
			var ac, bc byte
			if i < len(a) {
				ac = a[i]
			}
			if j < len(b) {
				bc = b[j]
			}
			if ac >= '0' && ac <= '9' {
				ac = 0
			}
			if bc >= '0' && bc <= '9' {
				bc = 0
			}
			if d := order(ac) - order(bc); d != 0 {
				return sign(d)
			}
			if i < len(a) && !(a[i] >= '0' && a[i] <= '9') {
				i++
			}
			if j < len(b) && !(b[j] >= '0' && b[j] <= '9') {
				j++
			}
		}
		for i < len(a) && a[i] == '0' {
			i++
		}
		for j < len(b) && b[j] == '0' {
			j++
		}
		for i < len(a) && a[i] >= '0' && a[i] <= '9' && j < len(b) && b[j] >= '0' && b[j] <= '9' {
			if first == 0 {
				first = int(a[i]) - int(b[j])
			}
			i++
			j++
		}
		if i < len(a) && a[i] >= '0' && a[i] <= '9' {
			return 1
		}
		if j < len(b) && b[j] >= '0' && b[j] <= '9' {
			return -1
		}
		if first != 0 {
			return sign(first)
		}
	}
	return 0
}

func sign(d int) int {
	switch {
	case d < 0:
		return -1
	case d > 0:
		return 1
	}
	return 0
}

// RequireSBOM reports whether the policy requires a signed SBOM.
func (p *Policy) RequireSBOM() bool { return p.requireSBOM }

// checkSBOMs verifies every SBOM attached (signed by one of the policy's
// identities, about the image), then applies the policy's SBOM rules.
func checkSBOMs(res *Result, v *bundleVerifier, sboms []*bundle.Bundle, p *Policy) error {
	for i, b := range sboms {
		br, err := v.verify(b, "sbom", nil)
		if err != nil {
			var ve *VerificationError
			if errors.As(err, &ve) {
				return refusef(CheckSBOM, "SBOM attestation %d of %d does not verify (%s): %v", i+1, len(sboms), ve.Check, ve.Err)
			}
			return err
		}
		pt := br.statement.GetPredicateType()
		raw, err := protojson.Marshal(br.statement.GetPredicate())
		if err != nil {
			return refusef(CheckSBOM, "SBOM attestation %d: %v", i+1, err)
		}
		var doc json.RawMessage = raw
		pkgs, err := sbom.Packages(pt, doc)
		if err != nil {
			return refusef(CheckSBOM, "SBOM attestation %d (%s): %v", i+1, pt, err)
		}
		res.SBOMs = append(res.SBOMs, SBOMResult{PredicateType: pt, Signer: br.identity, Packages: len(pkgs)})
		for _, pkg := range pkgs {
			for _, rule := range p.deniedPackages {
				if rule.denies(pkg) {
					return refusef(CheckDeniedPackages, "the image contains %s (SBOM %s), which the policy denies: %s", pkg.PURL, pt, rule)
				}
			}
		}
	}
	if p.requireSBOM && len(res.SBOMs) == 0 {
		return refusef(CheckRequireSBOM, "the policy requires a signed SBOM (SPDX or CycloneDX attestation) and the image has none")
	}
	if len(p.deniedPackages) > 0 && len(res.SBOMs) == 0 {
		return refusef(CheckRequireSBOM, "the policy denies packages, and the image has no signed SBOM to check them against")
	}
	return nil
}

// IsSBOMPredicate reports whether an in-toto predicate type is an SBOM's.
func IsSBOMPredicate(pt string) bool {
	return pt == sbom.PredicateSPDX || pt == sbom.PredicateCycloneDX
}
