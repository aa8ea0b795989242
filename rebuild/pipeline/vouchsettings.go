package pipeline

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/twinforge/twinforge/attest"
	"github.com/twinforge/twinforge/rebuild"
	"github.com/twinforge/twinforge/rebuild/vouch"
)

// VouchSettings are how the rebuilder signs its own verdict, each field
// named after the flag of `twinforge build` that gives it; NewVouch checks
// them. Every error of NewVouch is about them, naming the flag.
type VouchSettings struct {
	// Method (rebuilder-sign) is key=FILE, keyless or "" (no vouching).
	Method string
	// KeyPasswordFile and IDTokenFile (rebuilder-key-password-file,
	// rebuilder-identity-token-file) are nil when not given.
	KeyPasswordFile, IDTokenFile *string
	// RebuilderID (rebuilder-id) is the rebuilder's identity in its verdict.
	RebuilderID string
	// Stderr receives the rebuild process's log.
	Stderr io.Writer
}

// NewVouch checks s against the daemons w the build runs on and the
// build's signing b, whose services and trusted root the rebuilder shares
// (public, unlike the credentials) and whose key it must not sign with;
// nil without s.Method.
func NewVouch(s VouchSettings, w *rebuild.Workers, b attest.SignSettings) (*Vouch, error) {
	if s.Method == "" {
		for _, f := range []struct {
			name string
			v    *string
		}{{"rebuilder-key-password-file", s.KeyPasswordFile}, {"rebuilder-identity-token-file", s.IDTokenFile}} {
			if f.v != nil {
				return nil, fmt.Errorf("--%s applies to --rebuilder-sign only", f.name)
			}
		}
		return nil, nil
	}
	if w == nil || (w.Rebuild == "" && w.Pool == nil && w.RebuildPool == nil) {
		return nil, errors.New("--rebuilder-sign: the rebuilder vouches only for a rebuild on a worker of its own, another machine than the build's: give --rebuilder ADDR or --workers k8s://NAMESPACE")
	}
	method, keyPath, err := b.Method()
	if err != nil {
		return nil, err
	}
	if method == "none" {
		return nil, errors.New("--rebuilder-sign vouches for a signed provenance: give --sign keyless or --sign key=FILE")
	}
	v := &Vouch{RebuilderID: s.RebuilderID, TrustedRoot: b.TrustedRootFile, Stderr: s.Stderr}
	deref := func(p *string) string {
		if p == nil {
			return ""
		}
		return *p
	}
	switch {
	case s.Method == "keyless":
		v.Signer = vouch.SignerFiles{IDTokenFile: deref(s.IDTokenFile), FulcioURL: b.FulcioURL, TSAURL: b.TSAURL, RekorURL: b.RekorURL}
		if v.Signer.IDTokenFile == "" {
			return nil, errors.New("--rebuilder-sign keyless needs the rebuilder's own token: --rebuilder-identity-token-file FILE (the builder's is never passed on)")
		}
		if s.KeyPasswordFile != nil {
			return nil, errors.New("--rebuilder-key-password-file applies to --rebuilder-sign key=FILE only")
		}
	case strings.HasPrefix(s.Method, "key="):
		v.Signer = vouch.SignerFiles{KeyPath: strings.TrimPrefix(s.Method, "key="), KeyPasswordFile: deref(s.KeyPasswordFile), RekorURL: b.RekorURL}
		if b.TSAURLGiven {
			v.Signer.TSAURL = b.TSAURL
		}
		if s.IDTokenFile != nil {
			return nil, errors.New("--rebuilder-identity-token-file applies to --rebuilder-sign keyless only")
		}
		if keyPath != "" && sameFile(keyPath, v.Signer.KeyPath) {
			return nil, fmt.Errorf("--rebuilder-sign key=%s is the builder's own key (--sign): a builder does not vouch for itself", v.Signer.KeyPath)
		}
	default:
		return nil, fmt.Errorf("--rebuilder-sign %q: use key=FILE or keyless", s.Method)
	}
	for _, f := range []string{v.Signer.KeyPath, v.Signer.KeyPasswordFile, v.Signer.IDTokenFile} {
		if f == "" {
			continue
		}
		if _, err := os.Stat(f); err != nil {
			return nil, fmt.Errorf("--rebuilder-sign: %v", err)
		}
	}
	return v, nil
}

func sameFile(a, b string) bool {
	fa, err1 := os.Stat(a)
	fb, err2 := os.Stat(b)
	return err1 == nil && err2 == nil && os.SameFile(fa, fb)
}
