package admission

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
)

func TestParseConfig(t *testing.T) {
	cfg, err := ParseConfig([]byte(`apiVersion: twinforge.dev/v1
kind: AdmissionConfig
tenants:
  - name: team-a
    namespaces: [team-a, "team-a-*"]
    images: ["registry.example/team-a/**", "docker.io/library/busybox"]
    policy: policies/team-a.yaml
  - name: platform
    namespaces: ["*"]
    images: ["127.0.0.1:5000/platform/*"]
    policy: /etc/platform.yaml
`), "/etc/twinforge")
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Tenants) != 2 || cfg.Tenants[0].Policy != "/etc/twinforge/policies/team-a.yaml" || cfg.Tenants[1].Policy != "/etc/platform.yaml" {
		t.Fatalf("tenants: %+v", cfg.Tenants)
	}
	for _, tc := range []struct {
		tenant    int
		namespace string
		image     string
		covers    bool
	}{
		{0, "team-a", "registry.example/team-a/app:v1", true},
		{0, "team-a-prod", "registry.example/team-a/sub/dir/app@sha256:" + strings.Repeat("a", 64), true},
		{0, "team-ab", "registry.example/team-a/app", false},
		{0, "team-a", "registry.example/team-b/app", false},
		{0, "team-a", "registry.example/team-a", false},
		{0, "team-a", "busybox", true}, // docker.io/library/busybox
		{0, "team-a", "docker.io/busybox:1", true},
		{0, "team-a", "index.docker.io/library/busybox", true},
		{0, "team-a", "busybox2", false},
		{1, "anything", "127.0.0.1:5000/platform/db:1", true},
		{1, "anything", "127.0.0.1:5000/platform/db/sub:1", false},
		{1, "anything", "127.0.0.1:5001/platform/db:1", false},
	} {
		ref, err := name.ParseReference(tc.image)
		if err != nil {
			t.Fatal(err)
		}
		if got := cfg.Tenants[tc.tenant].covers(tc.namespace, canonicalRepository(ref.Context())); got != tc.covers {
			t.Errorf("tenant %s covers %s in %s = %v, want %v", cfg.Tenants[tc.tenant].Name, tc.image, tc.namespace, got, tc.covers)
		}
	}
}

func TestParseConfigErrors(t *testing.T) {
	const head = "apiVersion: twinforge.dev/v1\nkind: AdmissionConfig\n"
	for _, tc := range []struct{ name, doc, want string }{
		{"empty", "", "empty configuration"},
		{"kind", "apiVersion: twinforge.dev/v1\nkind: Policy\ntenants: []\n", "kind \"Policy\""},
		{"no tenants", head + "tenants: []\n", "no tenants"},
		{"unknown field", head + "tenants:\n  - name: a\n    namespaces: [a]\n    images: ['**']\n    policy: p.yaml\n    admitAll: true\n", "line 8"},
		{"no name", head + "tenants:\n  - namespaces: [a]\n    images: ['**']\n    policy: p.yaml\n", "no name"},
		{"duplicate", head + "tenants:\n  - {name: a, namespaces: [a], images: ['**'], policy: p}\n  - {name: a, namespaces: [b], images: ['**'], policy: p}\n", "twice"},
		{"no namespaces", head + "tenants:\n  - {name: a, images: ['**'], policy: p}\n", "no namespaces"},
		{"no images", head + "tenants:\n  - {name: a, namespaces: [a], policy: p}\n", "no image patterns"},
		{"no policy", head + "tenants:\n  - {name: a, namespaces: [a], images: ['**']}\n", "no policy"},
		{"tag in pattern", head + "tenants:\n  - {name: a, namespaces: [a], images: ['reg.example/app:v1'], policy: p}\n", "without tag or digest"},
		{"digest in pattern", head + "tenants:\n  - {name: a, namespaces: [a], images: ['reg.example/app@sha256:1'], policy: p}\n", "without tag or digest"},
		{"bad class", head + "tenants:\n  - {name: a, namespaces: ['[a'], images: ['**'], policy: p}\n", "unterminated"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseConfig([]byte(tc.doc), ".")
			if !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want ErrInvalidConfig containing %q", err, tc.want)
			}
		})
	}
}

func TestParseRevocations(t *testing.T) {
	d := "sha256:" + strings.Repeat("ab", 32)
	n, err := ParseRevocations([]byte("# comment\n\n" + d + "  # incident 7\n" + d + "\n"))
	if err != nil || n != 1 {
		t.Fatalf("%d, %v", n, err)
	}
	for _, bad := range []string{"sha256:abc", "sha512:" + strings.Repeat("a", 128), strings.ToUpper(d), "app@" + d} {
		if _, err := ParseRevocations([]byte(bad)); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("%q: %v, want ErrInvalidConfig", bad, err)
		}
	}
}

// TestNewErrors: New refuses what it cannot decide by.
func TestNewErrors(t *testing.T) {
	dir := t.TempDir()
	key := newTestKey(t)
	policy := keyPolicy(t, dir, key)
	keyless := filepath.Join(dir, "keyless.yaml")
	writeTestFile(t, keyless, "apiVersion: twinforge.dev/v2\nkind: Policy\nidentities:\n  - issuer: https://issuer.test\n    subject: ci@example.test\n")
	for _, tc := range []struct {
		name string
		src  Source
		opts []Option
		want string
	}{
		{"no policy", Source{}, nil, "no policy"},
		{"both", Source{PolicyFile: policy, ConfigFile: policy}, nil, "not both"},
		{"missing policy", Source{PolicyFile: filepath.Join(dir, "nope.yaml")}, nil, "no such file"},
		{"keyless policy without a trusted root", Source{PolicyFile: keyless}, nil, "trusted root file is required"},
		{"broken trusted root", Source{PolicyFile: policy, TrustedRootFile: policy}, nil, "trusted root"},
		{"negative ttl over ttl", Source{PolicyFile: policy}, []Option{WithCacheTTL(time.Second), WithNegativeCacheTTL(time.Minute)}, "exceeds"},
		{"deadline", Source{PolicyFile: policy}, []Option{WithDeadline(time.Minute)}, "WithDeadline"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wh, err := New(tc.src, append([]Option{WithPollInterval(0)}, tc.opts...)...)
			if err == nil {
				wh.Close()
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
	if _, err := os.Stat(policy); err != nil {
		t.Fatal(err)
	}
}
