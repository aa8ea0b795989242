package verify

import (
	"crypto"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	sgverify "github.com/sigstore/sigstore-go/pkg/verify"
	"go.yaml.in/yaml/v3"

	"github.com/twinforge/twinforge/internal/strictyaml"
)

// Policy file identity.
const (
	PolicyAPIVersion = "twinforge.dev/v2"
	PolicyKind       = "Policy"
	// PolicyAPIVersionV1 is the format before requireReproduced named
	// rebuilders; it is refused with what to change.
	PolicyAPIVersionV1 = "twinforge.dev/v1"
)

// ErrInvalidPolicy is wrapped by every error about a policy file's content.
var ErrInvalidPolicy = errors.New("invalid policy")

// Policy says which evidence Verify accepts: who may sign, and what the
// provenance must say. Make one with LoadPolicy or ParsePolicy; policy.md
// documents the format. A Policy is immutable and safe for concurrent use.
type Policy struct {
	identities             []policyIdentity
	sourceRepositories     []pattern
	builderIDs             []pattern
	requireStrict          bool
	maxAge                 time.Duration
	requireSignedTimestamp bool
	requireTransparencyLog bool
	// rebuildVerdicts, when set, asks for rebuild verdicts from distinct
	// trusted rebuilders (requireReproduced).
	rebuildVerdicts *verdictRequirement
	// requireSBOM asks for a signed SBOM; deniedPackages refuses images
	// whose SBOMs list a matching package (sbompolicy.go).
	requireSBOM    bool
	deniedPackages []packageRule
}

// verdictRequirement is the policy's requireReproduced: at least count
// verified "reproduced" verdicts about the image, each from a distinct
// signer matching one of identities, none of them the builder.
type verdictRequirement struct {
	count      int
	identities []policyIdentity
}

// policyIdentity is one allowed signer: a certificate identity or a key.
type policyIdentity struct {
	line int
	// certificate identities
	issuer, subject             string
	issuerRegExp, subjectRegExp string
	cert                        *sgverify.CertificateIdentity
	// keys
	publicKey crypto.PublicKey
	keyHint   string
}

func (id policyIdentity) String() string {
	if id.cert == nil {
		return "public key " + id.keyHint
	}
	iss, sub := id.issuer, id.subject
	if iss == "" {
		iss = "/" + id.issuerRegExp + "/"
	}
	if sub == "" {
		sub = "/" + id.subjectRegExp + "/"
	}
	return sub + " from " + iss
}

// RequireSignedTimestamp reports whether the policy requires an RFC 3161
// timestamp on every bundle.
func (p *Policy) RequireSignedTimestamp() bool { return p.requireSignedTimestamp }

// RequireTransparencyLog reports whether the policy requires a verified
// transparency log entry for every bundle.
func (p *Policy) RequireTransparencyLog() bool { return p.requireTransparencyLog }

// RequireReproduced reports whether the policy requires the image to be
// reproduced: rebuild verdicts signed by trusted rebuilders other than
// the builder. The builder's own record of its rebuild never satisfies it.
func (p *Policy) RequireReproduced() bool { return p.rebuildVerdicts != nil }

// RequireStrictVariations reports whether the policy requires a build that
// reproduced under the variations BuildKit pins as well.
func (p *Policy) RequireStrictVariations() bool { return p.requireStrict }

// MaxAge is the oldest build the policy accepts; 0 means any age.
func (p *Policy) MaxAge() time.Duration { return p.maxAge }

// NeedsTrustedRoot reports whether verifying against the policy needs a
// trusted root: for certificate identities, timestamps or a log.
func (p *Policy) NeedsTrustedRoot() bool {
	isCert := func(id policyIdentity) bool { return id.cert != nil }
	if p.rebuildVerdicts != nil && slices.ContainsFunc(p.rebuildVerdicts.identities, isCert) {
		return true
	}
	return p.requireSignedTimestamp || p.requireTransparencyLog || slices.ContainsFunc(p.identities, isCert)
}

// Identities describes the allowed signers, one per entry.
func (p *Policy) Identities() []string { return describeIdentities(p.identities) }

// RequiredRebuildVerdicts is how many rebuild verdicts from distinct
// trusted rebuilders the policy requires (requireReproduced.count); 0
// when it requires none.
func (p *Policy) RequiredRebuildVerdicts() int {
	if p.rebuildVerdicts == nil {
		return 0
	}
	return p.rebuildVerdicts.count
}

// RebuilderIdentities describes the rebuilders whose verdicts count, one
// per entry; none when the policy requires no verdicts.
func (p *Policy) RebuilderIdentities() []string {
	if p.rebuildVerdicts == nil {
		return nil
	}
	return describeIdentities(p.rebuildVerdicts.identities)
}

func describeIdentities(ids []policyIdentity) []string {
	var out []string
	for _, id := range ids {
		out = append(out, id.String())
	}
	return out
}

// policyFile is the YAML form.
type policyFile struct {
	APIVersion             string         `yaml:"apiVersion"`
	Kind                   string         `yaml:"kind"`
	Identities             []identityFile `yaml:"identities"`
	SourceRepositories     []patternFile  `yaml:"sourceRepositories"`
	BuilderIDs             []patternFile  `yaml:"builderIDs"`
	RequireReproduced      *verdictsFile  `yaml:"requireReproduced"`
	RequireStrict          bool           `yaml:"requireStrictVariations"`
	MaxAge                 duration       `yaml:"maxAge"`
	RequireSignedTimestamp *bool          `yaml:"requireSignedTimestamp"`
	RequireTransparencyLog *bool          `yaml:"requireTransparencyLog"`
	// RequireRebuildVerdicts is the v1 field that requireReproduced
	// replaced; it is refused with what to write instead.
	RequireRebuildVerdicts *removedField `yaml:"requireRebuildVerdicts"`
	RequireSBOM            bool          `yaml:"requireSBOM"`
	DeniedPackages         []deniedFile  `yaml:"deniedPackages"`
}

// removedField is a field of an earlier format: where it was, to say
// what replaced it.
type removedField struct{ Line int }

func (f *removedField) UnmarshalYAML(n *yaml.Node) error {
	f.Line = n.Line
	return nil
}

// verdictsFile is requireReproduced: {by: [...], count: N}.
type verdictsFile struct {
	line       int
	count      int
	countSet   bool
	identities []identityFile
}

var verdictsFields = []string{"by", "count"}

func (f *verdictsFile) UnmarshalYAML(n *yaml.Node) error {
	f.line = n.Line
	if n.Kind == yaml.ScalarNode {
		return fmt.Errorf("line %d: requireReproduced: %s: the builder's own record that it rebuilt the image proves nothing about a builder that lies; name the rebuilders whose signed verdicts must vouch for it: requireReproduced: {by: [IDENTITY, ...]}", n.Line, n.Value)
	}
	if n.Kind != yaml.MappingNode {
		return fmt.Errorf("line %d: requireReproduced is a mapping with by (the trusted rebuilders) and count", n.Line)
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		switch k.Value {
		case "count":
			if v.Kind != yaml.ScalarNode {
				return fmt.Errorf("line %d: requireReproduced.count must be a number", v.Line)
			}
			c, err := strconv.Atoi(v.Value)
			if err != nil {
				return fmt.Errorf("line %d: requireReproduced.count %q must be a whole number", v.Line, v.Value)
			}
			f.count, f.countSet = c, true
		case "by":
			if v.Kind != yaml.SequenceNode {
				return fmt.Errorf("line %d: requireReproduced.by must be a list of identities", v.Line)
			}
			for _, item := range v.Content {
				var id identityFile
				if err := id.UnmarshalYAML(item); err != nil {
					return err
				}
				f.identities = append(f.identities, id)
			}
		case "identities":
			return fmt.Errorf("line %d: requireReproduced.identities: the rebuilders are requireReproduced.by", k.Line)
		default:
			return fmt.Errorf("line %d: field %s not found in requireReproduced (use %s)", k.Line, k.Value, strings.Join(verdictsFields, ", "))
		}
	}
	return nil
}

type identityFile struct {
	line          int
	Issuer        string
	Subject       string
	IssuerRegExp  string
	SubjectRegExp string
	PublicKey     string
}

var identityFields = []string{"issuer", "subject", "issuerRegExp", "subjectRegExp", "publicKey"}

func (f *identityFile) UnmarshalYAML(n *yaml.Node) error {
	f.line = n.Line
	if n.Kind != yaml.MappingNode {
		return fmt.Errorf("line %d: an identity is a mapping with issuer/subject, issuerRegExp/subjectRegExp or publicKey", n.Line)
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if !slices.Contains(identityFields, k.Value) {
			return fmt.Errorf("line %d: field %s not found in identity (use %s)", k.Line, k.Value, strings.Join(identityFields, ", "))
		}
		if v.Kind != yaml.ScalarNode {
			return fmt.Errorf("line %d: %s must be a string", v.Line, k.Value)
		}
		switch k.Value {
		case "issuer":
			f.Issuer = v.Value
		case "subject":
			f.Subject = v.Value
		case "issuerRegExp":
			f.IssuerRegExp = v.Value
		case "subjectRegExp":
			f.SubjectRegExp = v.Value
		case "publicKey":
			f.PublicKey = v.Value
		}
	}
	return nil
}

type patternFile struct {
	line  int
	value string
}

func (p *patternFile) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: a pattern is a string", n.Line)
	}
	p.line, p.value = n.Line, n.Value
	return nil
}

type duration struct {
	line int
	d    time.Duration
	set  bool
}

func (d *duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: maxAge is a duration such as 720h or 30d", n.Line)
	}
	v, err := parseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: maxAge %q: %v", n.Line, n.Value, err)
	}
	d.line, d.d, d.set = n.Line, v, true
	return nil
}

// parseDuration accepts Go durations and a whole number of days ("30d").
func parseDuration(s string) (time.Duration, error) {
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.ParseUint(days, 10, 32)
		if err != nil {
			return 0, errors.New("want a duration such as 720h, 90m or 30d")
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, errors.New("want a duration such as 720h, 90m or 30d")
	}
	if d < 0 {
		return 0, errors.New("must not be negative")
	}
	return d, nil
}

// PolicyOption configures LoadPolicy.
type PolicyOption func(*policyOptions) error

type policyOptions struct {
	readFile func(path string) ([]byte, error)
}

// WithPolicyFileReader makes LoadPolicy read the policy file and every key
// file it names through read. A caller that reloads policies when their
// files change (the admission webhook) learns so every file a policy
// depends on, and the bytes it parsed. The default is os.ReadFile.
func WithPolicyFileReader(read func(path string) ([]byte, error)) PolicyOption {
	return func(o *policyOptions) error {
		if read == nil {
			return errors.New("WithPolicyFileReader: nil reader")
		}
		o.readFile = read
		return nil
	}
}

// LoadPolicy reads and parses a policy file. Relative publicKey paths are
// relative to the file's directory.
func LoadPolicy(path string, opts ...PolicyOption) (*Policy, error) {
	o := &policyOptions{readFile: os.ReadFile}
	for _, opt := range opts {
		if err := opt(o); err != nil {
			return nil, err
		}
	}
	data, err := o.readFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading policy: %w", err)
	}
	p, err := parsePolicy(data, filepath.Dir(path), o.readFile)
	if err != nil {
		return nil, fmt.Errorf("policy %s: %w", path, err)
	}
	return p, nil
}

// ParsePolicy parses a policy (YAML, or JSON, which is YAML). Unknown
// fields are errors naming their line. Relative publicKey paths are
// relative to the working directory.
func ParsePolicy(data []byte) (*Policy, error) {
	return parsePolicy(data, ".", os.ReadFile)
}

func parsePolicy(data []byte, baseDir string, readFile func(string) ([]byte, error)) (*Policy, error) {
	if err := refuseV1(data); err != nil {
		return nil, err
	}
	var f policyFile
	if err := strictyaml.Decode(data, &f); err != nil {
		if errors.Is(err, strictyaml.ErrEmpty) {
			return nil, fmt.Errorf("%w: empty policy", ErrInvalidPolicy)
		}
		return nil, fmt.Errorf("%w: %v", ErrInvalidPolicy, err)
	}
	return f.compile(baseDir, readFile)
}

// refuseV1 refuses a policy of the first format, before the strict
// parse would stop at its first v1 field, saying what to change.
func refuseV1(data []byte) error {
	var doc yaml.Node
	if yaml.Unmarshal(data, &doc) != nil || len(doc.Content) != 1 || doc.Content[0].Kind != yaml.MappingNode {
		return nil
	}
	m := doc.Content[0].Content
	var v1 bool
	var fixes []string
	for i := 0; i+1 < len(m); i += 2 {
		k, v := m[i], m[i+1]
		switch k.Value {
		case "apiVersion":
			v1 = v.Value == PolicyAPIVersionV1
		case "requireReproduced":
			if v.Kind == yaml.ScalarNode && v.Value == "true" {
				fixes = append(fixes, fmt.Sprintf("line %d: requireReproduced: true was the builder's own record of its rebuild; name the rebuilders whose signed verdicts must vouch for the image instead, requireReproduced: {by: [IDENTITY, ...]}, or drop it", k.Line))
			}
		case "requireRebuildVerdicts":
			fixes = append(fixes, fmt.Sprintf("line %d: requireRebuildVerdicts: {count: N, identities: [...]} becomes requireReproduced: {count: N, by: [...]}", k.Line))
		}
	}
	if !v1 {
		return nil
	}
	msg := fmt.Sprintf("apiVersion %s is the old policy format: change it to %s. In %s, requireReproduced is satisfied only by rebuild verdicts signed by trusted rebuilders other than the builder; the builder's own record that it rebuilt the image is information, never proof (attest/policy.md)", PolicyAPIVersionV1, PolicyAPIVersion, PolicyAPIVersion)
	if len(fixes) > 0 {
		msg += "; " + strings.Join(fixes, "; ")
	} else {
		msg += "; nothing else in this file needs to change"
	}
	return fmt.Errorf("%w: %s", ErrInvalidPolicy, msg)
}

func (f *policyFile) compile(baseDir string, readFile func(string) ([]byte, error)) (*Policy, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrInvalidPolicy}, args...)...)
	}
	if f.APIVersion != PolicyAPIVersion {
		return nil, bad("apiVersion %q: want %s", f.APIVersion, PolicyAPIVersion)
	}
	if n := f.RequireRebuildVerdicts; n != nil {
		return nil, bad("line %d: requireRebuildVerdicts: in %s it is requireReproduced: {count: N, by: [IDENTITY, ...]}", n.Line, PolicyAPIVersion)
	}
	if f.Kind != PolicyKind {
		return nil, bad("kind %q: want %s", f.Kind, PolicyKind)
	}
	if len(f.Identities) == 0 {
		return nil, bad("no identities: a policy must say who may sign (issuer and subject, or publicKey)")
	}
	p := &Policy{
		requireStrict:          f.RequireStrict,
		maxAge:                 f.MaxAge.d,
		requireSignedTimestamp: f.RequireSignedTimestamp == nil || *f.RequireSignedTimestamp,
		requireTransparencyLog: f.RequireTransparencyLog == nil || *f.RequireTransparencyLog,
	}
	for _, idf := range f.Identities {
		id, err := idf.compile(baseDir, readFile)
		if err != nil {
			return nil, bad("line %d: identity: %v", idf.line, err)
		}
		p.identities = append(p.identities, id)
	}
	var err error
	if p.sourceRepositories, err = compilePatterns(f.SourceRepositories, true); err != nil {
		return nil, bad("sourceRepositories: %v", err)
	}
	if p.builderIDs, err = compilePatterns(f.BuilderIDs, false); err != nil {
		return nil, bad("builderIDs: %v", err)
	}
	if rv := f.RequireReproduced; rv != nil {
		if !rv.countSet {
			rv.count = 1
		}
		switch {
		case rv.count < 1:
			return nil, bad("line %d: requireReproduced.count %d: must be at least 1", rv.line, rv.count)
		case len(rv.identities) == 0:
			return nil, bad("line %d: requireReproduced: no rebuilders: say in by whose signed rebuild verdicts count", rv.line)
		}
		req := &verdictRequirement{count: rv.count}
		for _, idf := range rv.identities {
			id, err := idf.compile(baseDir, readFile)
			if err != nil {
				return nil, bad("line %d: requireReproduced.by identity: %v", idf.line, err)
			}
			req.identities = append(req.identities, id)
		}
		p.rebuildVerdicts = req
	}
	p.requireSBOM = f.RequireSBOM
	for _, d := range f.DeniedPackages {
		r, err := d.compile()
		if err != nil {
			return nil, bad("line %d: deniedPackages: %v", d.line, err)
		}
		p.deniedPackages = append(p.deniedPackages, r)
	}
	return p, nil
}

func (f identityFile) compile(baseDir string, readFile func(string) ([]byte, error)) (policyIdentity, error) {
	id := policyIdentity{line: f.line}
	certFields := f.Issuer != "" || f.Subject != "" || f.IssuerRegExp != "" || f.SubjectRegExp != ""
	switch {
	case f.PublicKey != "" && certFields:
		return id, errors.New("give either publicKey or issuer/subject, not both")
	case f.PublicKey != "":
		pemData := []byte(f.PublicKey)
		if !strings.Contains(f.PublicKey, "-----BEGIN") {
			p := f.PublicKey
			if !filepath.IsAbs(p) {
				p = filepath.Join(baseDir, p)
			}
			data, err := readFile(p)
			if err != nil {
				return id, fmt.Errorf("publicKey: %w", err)
			}
			pemData = data
		}
		pub, err := ParsePublicKey(pemData)
		if err != nil {
			return id, fmt.Errorf("publicKey: %w", err)
		}
		if _, err := publicKeyVerifier(pub); err != nil {
			return id, fmt.Errorf("publicKey: %w", err)
		}
		id.publicKey = pub
		if id.keyHint, err = KeyHint(pub); err != nil {
			return id, fmt.Errorf("publicKey: %w", err)
		}
		return id, nil
	}
	switch {
	case f.Issuer != "" && f.IssuerRegExp != "":
		return id, errors.New("give issuer or issuerRegExp, not both")
	case f.Subject != "" && f.SubjectRegExp != "":
		return id, errors.New("give subject or subjectRegExp, not both")
	case f.Issuer == "" && f.IssuerRegExp == "":
		return id, errors.New("no issuer: give issuer (or issuerRegExp) with subject (or subjectRegExp), or publicKey")
	case f.Subject == "" && f.SubjectRegExp == "":
		return id, errors.New("no subject: give subject (or subjectRegExp) with issuer (or issuerRegExp)")
	}
	issuerRE, err := anchor(f.IssuerRegExp)
	if err != nil {
		return id, fmt.Errorf("issuerRegExp: %v", err)
	}
	subjectRE, err := anchor(f.SubjectRegExp)
	if err != nil {
		return id, fmt.Errorf("subjectRegExp: %v", err)
	}
	ci, err := sgverify.NewShortCertificateIdentity(f.Issuer, issuerRE, f.Subject, subjectRE)
	if err != nil {
		return id, err
	}
	id.issuer, id.subject, id.issuerRegExp, id.subjectRegExp = f.Issuer, f.Subject, f.IssuerRegExp, f.SubjectRegExp
	id.cert = &ci
	return id, nil
}

// anchor makes a regular expression match whole values only. The
// expression must be one on its own: "a)|(b" would otherwise close the
// group anchor puts around it, and "^(?:a)|(b)$" matches anything that
// starts with a or ends with b.
func anchor(re string) (string, error) {
	if re == "" {
		return "", nil
	}
	if _, err := regexp.Compile(re); err != nil {
		return "", err
	}
	return "^(?:" + re + ")$", nil
}

// pattern matches a source repository or builder id: exactly, as a glob
// (see Glob) or as an RE2 regular expression
// written "regexp:<re>" that must match the whole value. Repository
// patterns ignore a trailing ".git" or "/" on both sides.
type pattern struct {
	raw   string
	exact string
	re    *regexp.Regexp
	repo  bool
}

func compilePatterns(in []patternFile, repo bool) ([]pattern, error) {
	var out []pattern
	for _, pf := range in {
		p, err := compilePattern(pf.value, repo)
		if err != nil {
			return nil, fmt.Errorf("line %d: %q: %v", pf.line, pf.value, err)
		}
		out = append(out, p)
	}
	return out, nil
}

func compilePattern(s string, repo bool) (pattern, error) {
	p := pattern{raw: s, repo: repo}
	switch {
	case s == "":
		return p, errors.New("empty pattern")
	case strings.HasPrefix(s, "regexp:"):
		anchored, err := anchor(strings.TrimPrefix(s, "regexp:"))
		if err != nil {
			return p, err
		}
		re, err := regexp.Compile(anchored)
		if err != nil {
			return p, err
		}
		p.re = re
	case strings.ContainsAny(s, "*?["):
		re, err := Glob(p.normalize(s))
		if err != nil {
			return p, fmt.Errorf("bad glob: %v", err)
		}
		p.re = re
	default:
		p.exact = p.normalize(s)
	}
	return p, nil
}

// normalize makes https://host/org/repo, .../repo.git and .../repo/ the
// same repository.
func (p pattern) normalize(s string) string {
	if !p.repo {
		return s
	}
	s = strings.TrimSuffix(s, "/")
	return strings.TrimSuffix(s, ".git")
}

func (p pattern) match(v string) bool {
	switch {
	case p.re != nil && strings.HasPrefix(p.raw, "regexp:"):
		return p.re.MatchString(v)
	case p.re != nil:
		return p.re.MatchString(p.normalize(v))
	default:
		return p.exact == p.normalize(v)
	}
}

func matchAny(ps []pattern, v string) bool {
	return slices.ContainsFunc(ps, func(p pattern) bool { return p.match(v) })
}

func patternList(ps []pattern) string {
	var s []string
	for _, p := range ps {
		s = append(s, p.raw)
	}
	return strings.Join(s, ", ")
}
