package verify

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestLoadPolicyExample(t *testing.T) {
	p, err := LoadPolicy(filepath.Join("..", "testdata", "policy.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(p.identities) != 3 || p.identities[2].publicKey == nil || p.identities[0].cert == nil {
		t.Fatalf("identities = %v", p.Identities())
	}
	if !p.RequireReproduced() || p.RequiredRebuildVerdicts() != 1 || p.MaxAge() != 30*24*time.Hour || !p.RequireSignedTimestamp() || !p.RequireTransparencyLog() {
		t.Errorf("policy = %+v", p)
	}
	repos := []struct {
		repo string
		want bool
	}{
		{"https://github.com/example/hello", true},
		{"https://github.com/example/hello.git", true},
		{"https://github.com/example/hello/", true},
		{"https://github.com/example/hello-evil", false},
		{"https://github.com/example/libs-net", true},
		{"https://github.com/example/libs-net/sub", false},
		{"https://git.example.com/team/app", true},
		{"https://git.example.com/other/app", false},
		{"https://evil.test/?https://git.example.com/team/app", false},
	}
	for _, r := range repos {
		if got := matchAny(p.sourceRepositories, r.repo); got != r.want {
			t.Errorf("sourceRepositories match %s = %v, want %v", r.repo, got, r.want)
		}
	}
	if !matchAny(p.builderIDs, "https://github.com/example/builds/.github/workflows/twinforge.yml@refs/tags/v1") {
		t.Error("builder glob does not match")
	}
	if matchAny(p.builderIDs, "https://github.com/example/builds/.github/workflows/other.yml@refs/tags/v1") {
		t.Error("builder glob matches another workflow")
	}
}

func TestPolicyDefaults(t *testing.T) {
	p, err := ParsePolicy([]byte("apiVersion: twinforge.dev/v2\nkind: Policy\nidentities: [{issuer: https://i.test, subject: me}]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if !p.RequireSignedTimestamp() || !p.RequireTransparencyLog() || p.RequireReproduced() || p.MaxAge() != 0 {
		t.Errorf("defaults = %+v", p)
	}
	// JSON is YAML.
	if _, err := ParsePolicy([]byte(`{"apiVersion":"twinforge.dev/v2","kind":"Policy","identities":[{"issuer":"https://i.test","subject":"me"}]}`)); err != nil {
		t.Errorf("JSON policy: %v", err)
	}
}

func TestPolicyErrors(t *testing.T) {
	head := "apiVersion: twinforge.dev/v2\nkind: Policy\n"
	id := "identities:\n  - issuer: https://i.test\n    subject: me\n"
	tests := []struct {
		name string
		doc  string
		want []string
	}{
		{"empty", "", []string{"empty policy"}},
		{"unknown top-level field", head + id + "requireReproducible: true\n", []string{"line 6", "requireReproducible"}},
		{"unknown identity field", head + "identities:\n  - issuer: https://i.test\n    subjet: me\n", []string{"line 5", "subjet"}},
		{"wrong type", head + id + "requireSBOM: sometimes\n", []string{"line 6", "bool"}},
		{"bad maxAge", head + id + "maxAge: a month\n", []string{"line 6", "maxAge"}},
		{"negative maxAge", head + id + "maxAge: -1h\n", []string{"line 6", "negative"}},
		{"wrong apiVersion", "apiVersion: v1\nkind: Policy\n" + id, []string{"apiVersion"}},
		{"wrong kind", "apiVersion: twinforge.dev/v2\nkind: ClusterPolicy\n" + id, []string{"kind"}},
		{"no identities", head, []string{"no identities"}},
		{"issuer without subject", head + "identities:\n  - issuer: https://i.test\n", []string{"line 4", "no subject"}},
		{"subject without issuer", head + "identities:\n  - subject: me\n", []string{"line 4", "no issuer"}},
		{"issuer and issuerRegExp", head + "identities:\n  - issuer: a\n    issuerRegExp: b\n    subject: c\n", []string{"issuer or issuerRegExp"}},
		{"key and certificate", head + "identities:\n  - publicKey: k.pem\n    subject: c\n", []string{"not both"}},
		{"missing key file", head + "identities:\n  - publicKey: /nonexistent/key.pem\n", []string{"line 4", "publicKey"}},
		{"bad inline key", head + "identities:\n  - publicKey: \"-----BEGIN PUBLIC KEY-----\\nAAAA\\n-----END PUBLIC KEY-----\\n\"\n", []string{"publicKey"}},
		{"bad regexp", head + "identities:\n  - issuer: a\n    subjectRegExp: '('\n", []string{"line 4"}},
		{"bad pattern regexp", head + id + "sourceRepositories: ['regexp:(']\n", []string{"sourceRepositories", "line 6"}},
		{"bad glob", head + id + "builderIDs: ['https://x/[']\n", []string{"builderIDs", "glob"}},
		{"identity not a mapping", head + "identities:\n  - me\n", []string{"line 4"}},
		{"two documents", head + id + "---\n" + head + id, []string{"one YAML document"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParsePolicy([]byte(tt.doc))
			if err == nil {
				t.Fatalf("accepted:\n%s", tt.doc)
			}
			if !errors.Is(err, ErrInvalidPolicy) {
				t.Errorf("error is not ErrInvalidPolicy: %v", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestLoadPolicyMissing(t *testing.T) {
	_, err := LoadPolicy(filepath.Join(t.TempDir(), "nope.yaml"))
	if err == nil || !strings.Contains(err.Error(), "reading policy") {
		t.Errorf("error = %v", err)
	}
}

func TestPatterns(t *testing.T) {
	tests := []struct {
		pattern string
		repo    bool
		value   string
		want    bool
	}{
		{"https://github.com/o/r", true, "https://github.com/o/r.git", true},
		{"https://github.com/o/r", false, "https://github.com/o/r.git", false},
		{"https://github.com/o/*", true, "https://github.com/o/r", true},
		{"https://github.com/o/*", true, "https://github.com/o/r/x", false},
		{"https://github.com/o/**", true, "https://github.com/o/r/x", true},
		{"https://github.com/o/r?", true, "https://github.com/o/r2", true},
		{"https://github.com/o/r[0-9]", true, "https://github.com/o/r7", true},
		{"https://github.com/o/r[!0-9]", true, "https://github.com/o/r7", false},
		{"https://github.com/o.r/*", true, "https://github.com/oxr/a", false},
		{"regexp:https://github\\.com/o/.*", true, "https://github.com/o/r/x", true},
		{"regexp:github\\.com", true, "https://github.com/o/r", false},
	}
	for _, tt := range tests {
		p, err := compilePattern(tt.pattern, tt.repo)
		if err != nil {
			t.Fatalf("%s: %v", tt.pattern, err)
		}
		if got := p.match(tt.value); got != tt.want {
			t.Errorf("%s matches %s = %v, want %v", tt.pattern, tt.value, got, tt.want)
		}
	}
}

// TestPolicyDocExample keeps the example in policy.md valid.
func TestPolicyDocExample(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "policy.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(doc), "```yaml\n")
	example, _, ok2 := strings.Cut(rest, "```")
	if !ok || !ok2 {
		t.Fatal("no yaml example in policy.md")
	}
	if _, err := parsePolicy([]byte(example), filepath.Join("..", "testdata"), os.ReadFile); err != nil {
		t.Fatalf("policy.md example: %v", err)
	}
}

// TestPolicyAnchorsCannotBeUndone: a policy regular expression is anchored
// to match whole values; one that does not parse on its own, and so could
// close the anchoring group from inside ("a)|(.*"), is refused when the
// policy is read.
func TestPolicyAnchorsCannotBeUndone(t *testing.T) {
	for _, field := range []string{
		"    issuer: https://i.test\n    subjectRegExp: 'builder@example\\.test)|(.*'",
		"    issuerRegExp: 'x)|(.*'\n    subject: builder@example.test",
	} {
		doc := "apiVersion: twinforge.dev/v2\nkind: Policy\nidentities:\n  -" + strings.TrimPrefix(field, "   ") + "\n"
		if _, err := ParsePolicy([]byte(doc)); !errors.Is(err, ErrInvalidPolicy) {
			t.Errorf("policy accepted (%v):\n%s", err, doc)
		}
	}
	for _, pattern := range []string{"regexp:https://git\\.example\\.test/team/app)|(.*", "regexp:a)|(b"} {
		doc := "apiVersion: twinforge.dev/v2\nkind: Policy\nidentities: [{issuer: i, subject: s}]\nsourceRepositories: ['" + pattern + "']\n"
		if _, err := ParsePolicy([]byte(doc)); !errors.Is(err, ErrInvalidPolicy) {
			t.Errorf("pattern %q accepted (%v)", pattern, err)
		}
	}
}

// A policy of the first format is refused with what to change, naming the
// lines whose meaning changed; in the new format the builder's own record
// of its rebuild cannot be asked for.
func TestPolicyMigration(t *testing.T) {
	v1 := "apiVersion: twinforge.dev/v1\nkind: Policy\nidentities:\n  - issuer: https://i.test\n    subject: me\n"
	v2 := "apiVersion: twinforge.dev/v2\nkind: Policy\nidentities:\n  - issuer: https://i.test\n    subject: me\n"
	tests := []struct {
		name string
		doc  string
		want []string
	}{
		{"v1", v1, []string{"apiVersion twinforge.dev/v1 is the old policy format", "change it to twinforge.dev/v2", "nothing else in this file needs to change"}},
		{"v1 requireReproduced", v1 + "requireReproduced: true\n", []string{"line 6: requireReproduced: true was the builder's own record", "requireReproduced: {by: [IDENTITY, ...]}"}},
		{"v1 requireRebuildVerdicts", v1 + "requireRebuildVerdicts:\n  count: 2\n  identities: [{publicKey: k.pem}]\n",
			[]string{"line 6: requireRebuildVerdicts", "becomes requireReproduced: {count: N, by: [...]}"}},
		{"v2 requireReproduced: true", v2 + "requireReproduced: true\n", []string{"line 6", "the builder's own record", "name the rebuilders"}},
		{"v2 requireRebuildVerdicts", v2 + "requireRebuildVerdicts: {count: 1, identities: [{issuer: a, subject: b}]}\n", []string{"line 6", "requireReproduced: {count: N, by:"}},
		{"v2 requireReproduced.identities", v2 + "requireReproduced: {identities: [{issuer: a, subject: b}]}\n", []string{"line 6", "requireReproduced.by"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParsePolicy([]byte(tt.doc))
			if !errors.Is(err, ErrInvalidPolicy) {
				t.Fatalf("err = %v, want ErrInvalidPolicy", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
	p, err := ParsePolicy([]byte(v2 + "requireReproduced:\n  by:\n    - issuer: https://i.test\n      subject: rebuilder\n"))
	if err != nil {
		t.Fatal(err)
	}
	if !p.RequireReproduced() || p.RequiredRebuildVerdicts() != 1 || len(p.RebuilderIdentities()) != 1 {
		t.Errorf("requireReproduced with a default count: %v %d %v", p.RequireReproduced(), p.RequiredRebuildVerdicts(), p.RebuilderIdentities())
	}
}
