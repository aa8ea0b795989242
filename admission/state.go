package admission

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"os"
	"path/filepath"
	"strings"

	"github.com/sigstore/sigstore-go/pkg/root"

	"github.com/twinforge/twinforge/attest/verify"
)

// Source names the files the webhook decides by. They are re-read every
// WithPollInterval; see Webhook.Reload.
type Source struct {
	// ConfigFile is a multi-tenant AdmissionConfig (config.md). Exactly one
	// of ConfigFile and PolicyFile is required.
	ConfigFile string
	// PolicyFile is one attest policy (attest/policy.md) for every image in
	// every namespace.
	PolicyFile string
	// TrustedRootFile is the Sigstore trusted root (trusted_root.json).
	// Required unless every policy trusts public keys only and requires
	// neither signed timestamps nor a transparency log.
	TrustedRootFile string
	// RevocationsFile is the optional revocation list: one digest per line
	// (see ParseRevocations). Its digests are denied whatever their
	// evidence.
	RevocationsFile string
}

func (s Source) validate() error {
	switch {
	case s.ConfigFile == "" && s.PolicyFile == "":
		return errors.New("no policy: give a policy file or a multi-tenant configuration file")
	case s.ConfigFile != "" && s.PolicyFile != "":
		return errors.New("give a policy file or a multi-tenant configuration file, not both")
	}
	return nil
}

// snapshot is everything one decision needs, loaded together and never
// modified: a reload builds a new one.
type snapshot struct {
	tenants     []*tenantState
	trustedRoot root.TrustedMaterial // nil when no file is configured
	revoked     revocations
	// version changes with the configuration, any policy or the trusted
	// root: the cache is emptied when it does.
	version string
	// files is what was read, for the change check of the next poll.
	files fileSet
}

// tenantState is a tenant with its loaded policy.
type tenantState struct {
	Tenant
	policy *verify.Policy
	// version is the policy version: a hash of the policy file, the keys it
	// trusts and the trusted root. Cache keys carry it.
	version string
}

// fileSet maps each file read to the sha256 of its content.
type fileSet map[string]string

// changed reports whether any of the files now differs from what was read
// (or can no longer be read).
func (fs fileSet) changed() bool {
	for path, sum := range fs {
		data, err := os.ReadFile(path)
		if err != nil || sumHex(data) != sum {
			return true
		}
	}
	return false
}

func sumHex(data []byte) string {
	s := sha256.Sum256(data)
	return hex.EncodeToString(s[:])
}

// tenantsFor lists the tenants that decide repo in namespace, in file
// order.
func (s *snapshot) tenantsFor(namespace, repo string) []*tenantState {
	var out []*tenantState
	for _, t := range s.tenants {
		if t.covers(namespace, repo) {
			out = append(out, t)
		}
	}
	return out
}

// loadSnapshot reads and checks every file src names.
func loadSnapshot(src Source) (*snapshot, error) {
	if err := src.validate(); err != nil {
		return nil, err
	}
	files := fileSet{}
	read := func(path string) ([]byte, error) {
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, err
		}
		files[path] = sumHex(data)
		return data, nil
	}
	all := sha256.New()
	var cfg *Config
	if src.ConfigFile != "" {
		data, err := read(src.ConfigFile)
		if err != nil {
			return nil, fmt.Errorf("reading admission configuration: %w", err)
		}
		if cfg, err = ParseConfig(data, filepath.Dir(src.ConfigFile)); err != nil {
			return nil, fmt.Errorf("%s: %w", src.ConfigFile, err)
		}
		writeField(all, "config", data)
	} else {
		cfg = SinglePolicy(src.PolicyFile)
	}

	var rootData []byte
	var tm root.TrustedMaterial
	if src.TrustedRootFile != "" {
		var err error
		if rootData, err = read(src.TrustedRootFile); err != nil {
			return nil, fmt.Errorf("reading trusted root: %w", err)
		}
		tr, err := verify.LoadTrustedRootJSON(rootData)
		if err != nil {
			return nil, fmt.Errorf("%w: trusted root %s: %v", ErrInvalidConfig, src.TrustedRootFile, err)
		}
		tm = tr
	}
	writeField(all, "root", rootData)

	s := &snapshot{trustedRoot: tm, revoked: revocations{}, files: files}
	for _, t := range cfg.Tenants {
		// The policy file and every key file it names are read through
		// read: each is polled for changes, a replaced key included, and
		// goes into the version as the policy parsed it.
		h := sha256.New()
		p, err := verify.LoadPolicy(t.Policy, verify.WithPolicyFileReader(func(path string) ([]byte, error) {
			data, err := read(path)
			if err == nil {
				writeField(h, "file", []byte(path))
				writeField(h, "content", data)
			}
			return data, err
		}))
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("tenant %q: reading policy: %w", t.Name, err)
		}
		if err != nil {
			return nil, fmt.Errorf("%w: tenant %q: %w", ErrInvalidConfig, t.Name, err)
		}
		if p.NeedsTrustedRoot() && tm == nil {
			return nil, fmt.Errorf("%w: tenant %q: its policy trusts certificates, timestamps or a log: a trusted root file is required", ErrInvalidConfig, t.Name)
		}
		writeField(h, "identities", []byte(strings.Join(p.Identities(), "\n")))
		writeField(h, "rebuilders", []byte(fmt.Sprintf("%d\n%s", p.RequiredRebuildVerdicts(), strings.Join(p.RebuilderIdentities(), "\n"))))
		writeField(h, "root", rootData)
		ts := &tenantState{Tenant: t, policy: p, version: hex.EncodeToString(h.Sum(nil))[:16]}
		writeField(all, "tenant", []byte(t.Name+"\x00"+ts.version+"\x00"+strings.Join(t.Namespaces, ",")+"\x00"+strings.Join(t.Images, ",")))
		s.tenants = append(s.tenants, ts)
	}
	s.version = hex.EncodeToString(all.Sum(nil))[:16]

	if src.RevocationsFile != "" {
		data, err := read(src.RevocationsFile)
		if err != nil {
			return nil, fmt.Errorf("reading revocation list: %w", err)
		}
		if s.revoked, err = parseRevocations(data); err != nil {
			return nil, fmt.Errorf("%s: %w", src.RevocationsFile, err)
		}
	}
	return s, nil
}

// writeField hashes a length-prefixed field, so that fields cannot run into
// each other.
func writeField(h hash.Hash, label string, data []byte) {
	fmt.Fprintf(h, "%s:%d:", label, len(data))
	h.Write(data)
}
