package admission

import (
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/twinforge/twinforge/attest/verify"
	"github.com/twinforge/twinforge/internal/strictyaml"
)

// Configuration file identity; config.md documents the format.
const (
	ConfigAPIVersion = "twinforge.dev/v1"
	ConfigKind       = "AdmissionConfig"
)

// Config is a parsed multi-tenant configuration: which policy governs which
// images in which namespaces. Make one with ParseConfig or LoadConfig, or
// SinglePolicy for one policy everywhere.
type Config struct {
	// Tenants, in file order.
	Tenants []Tenant
}

// Tenant is one policy scope: the policy file that decides the images
// matching Images in the namespaces matching Namespaces.
type Tenant struct {
	// Name identifies the tenant in denials, logs and metrics.
	Name string
	// Namespaces are glob patterns of namespace names ("team-a",
	// "team-a-*", "*").
	Namespaces []string
	// Images are glob patterns of image repositories, registry host
	// included ("registry.example/team-a/**"); see config.md.
	Images []string
	// Policy is the path of the attest policy file (attest/policy.md).
	// A relative path in a configuration file is relative to that file.
	Policy string
	// AllowTags lets a webhook without mutation (WithValidationOnly) admit
	// the tenant's images named by tag, verified at admission only. By
	// default they are denied there.
	AllowTags bool

	namespaces []*regexp.Regexp
	images     []*regexp.Regexp
}

// SinglePolicy is the configuration of one tenant, "default", whose policy
// governs every image in every namespace: `twinforge admission serve
// --policy FILE`.
func SinglePolicy(policyPath string) *Config {
	t := Tenant{Name: "default", Namespaces: []string{"*"}, Images: []string{"**"}, Policy: policyPath}
	if err := t.compile(); err != nil {
		panic(err) // constant patterns
	}
	return &Config{Tenants: []Tenant{t}}
}

type configFile struct {
	APIVersion string       `yaml:"apiVersion"`
	Kind       string       `yaml:"kind"`
	Tenants    []tenantFile `yaml:"tenants"`
}

type tenantFile struct {
	Name       string   `yaml:"name"`
	Namespaces []string `yaml:"namespaces"`
	Images     []string `yaml:"images"`
	Policy     string   `yaml:"policy"`
	AllowTags  bool     `yaml:"allowTags"`
}

// ParseConfig parses an AdmissionConfig (YAML or JSON). Unknown fields are
// errors naming their line. Relative policy paths are resolved against
// baseDir.
func ParseConfig(data []byte, baseDir string) (*Config, error) {
	var f configFile
	if err := strictyaml.Decode(data, &f); err != nil {
		if errors.Is(err, strictyaml.ErrEmpty) {
			return nil, fmt.Errorf("%w: empty configuration", ErrInvalidConfig)
		}
		return nil, fmt.Errorf("%w: %v", ErrInvalidConfig, err)
	}
	if f.APIVersion != ConfigAPIVersion || f.Kind != ConfigKind {
		return nil, fmt.Errorf("%w: apiVersion %q kind %q: want %s %s", ErrInvalidConfig, f.APIVersion, f.Kind, ConfigAPIVersion, ConfigKind)
	}
	if len(f.Tenants) == 0 {
		return nil, fmt.Errorf("%w: no tenants: every image would be denied", ErrInvalidConfig)
	}
	cfg := &Config{}
	seen := map[string]bool{}
	for i, tf := range f.Tenants {
		t := Tenant{Name: tf.Name, Namespaces: tf.Namespaces, Images: tf.Images, Policy: tf.Policy, AllowTags: tf.AllowTags}
		switch {
		case t.Name == "":
			return nil, fmt.Errorf("%w: tenant %d has no name", ErrInvalidConfig, i+1)
		case seen[t.Name]:
			return nil, fmt.Errorf("%w: tenant %q appears twice", ErrInvalidConfig, t.Name)
		case len(t.Namespaces) == 0:
			return nil, fmt.Errorf("%w: tenant %q lists no namespaces", ErrInvalidConfig, t.Name)
		case len(t.Images) == 0:
			return nil, fmt.Errorf("%w: tenant %q lists no image patterns", ErrInvalidConfig, t.Name)
		case t.Policy == "":
			return nil, fmt.Errorf("%w: tenant %q names no policy file", ErrInvalidConfig, t.Name)
		}
		seen[t.Name] = true
		if !filepath.IsAbs(t.Policy) {
			t.Policy = filepath.Join(baseDir, t.Policy)
		}
		if err := t.compile(); err != nil {
			return nil, fmt.Errorf("%w: tenant %q: %v", ErrInvalidConfig, t.Name, err)
		}
		cfg.Tenants = append(cfg.Tenants, t)
	}
	return cfg, nil
}

func (t *Tenant) compile() error {
	t.namespaces, t.images = nil, nil
	for _, p := range t.Namespaces {
		re, err := verify.Glob(p)
		if err != nil {
			return fmt.Errorf("namespace pattern %q: %w", p, err)
		}
		t.namespaces = append(t.namespaces, re)
	}
	for _, p := range t.Images {
		_, path, _ := strings.Cut(p, "/")
		if strings.Contains(p, "@") || strings.Contains(path, ":") {
			return fmt.Errorf("image pattern %q: patterns match repositories, without tag or digest", p)
		}
		re, err := verify.Glob(p)
		if err != nil {
			return fmt.Errorf("image pattern %q: %w", p, err)
		}
		t.images = append(t.images, re)
	}
	return nil
}

// covers reports whether the tenant decides repo (canonical, see
// canonicalRepository) in namespace.
func (t *Tenant) covers(namespace, repo string) bool {
	return matchAny(t.namespaces, namespace) && matchAny(t.images, repo)
}

func matchAny(res []*regexp.Regexp, s string) bool {
	for _, re := range res {
		if re.MatchString(s) {
			return true
		}
	}
	return false
}

// canonicalRepository is the name image patterns are matched against: the
// registry host and repository path, with Docker Hub spelled docker.io
// ("nginx" is docker.io/library/nginx).
func canonicalRepository(repo name.Repository) string {
	reg := repo.RegistryStr()
	if reg == name.DefaultRegistry {
		reg = "docker.io"
	}
	return reg + "/" + repo.RepositoryStr()
}
