package pipeline

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/twinforge/twinforge/attest"
	"github.com/twinforge/twinforge/attest/sbom"
	"github.com/twinforge/twinforge/distribute"
)

// PublishSettings are how a build is attested and where it is published,
// as the signing flags of `twinforge build` set them (`twinforge rebuild`
// signs its verdict with the same, without Push).
type PublishSettings struct {
	attest.SignSettings
	// SignGiven says --sign was given rather than defaulted: a push
	// publishes only what was signed, or unsigned on purpose.
	SignGiven bool
	// BuilderID (builder-id) is Request.BuilderID.
	BuilderID string
	// Push (push) is the reference the image is pushed to by digest, with
	// its bundles as referrers; empty pushes nothing.
	Push string
	// SBOM (sbom) are Request.SBOMFormats; they need a signature.
	SBOM []string
	// Registry (insecure, ca-cert) says how the Push registry is reached.
	Registry distribute.RegistrySettings
}

// Publishing is what PublishSettings name, checked.
type Publishing struct {
	// Method is the signing method: keyless, key or none.
	Method string
	// Push is where the image goes, nil for nowhere.
	Push name.Reference
	// Registry are the options that reach Push's registry.
	Registry []distribute.Option
	settings PublishSettings
}

// Check checks s as a person gave it, before anything is built; every
// error names the flag at fault.
func (s PublishSettings) Check() (*Publishing, error) {
	p := &Publishing{settings: s}
	var err error
	if p.Method, err = s.SignSettings.Check(); err != nil {
		return nil, err
	}
	if s.Push != "" {
		if p.Push, err = name.ParseReference(s.Push, name.StrictValidation); err != nil {
			return nil, fmt.Errorf("--push %q: %v; give REGISTRY/REPOSITORY:TAG or @sha256:...", s.Push, err)
		}
		if !s.SignGiven {
			return nil, errors.New("--push publishes only what was signed: give --sign keyless, --sign key=FILE, or --sign none to push unsigned on purpose")
		}
	}
	for _, f := range s.SBOM {
		if _, err := sbom.PredicateType(f); err != nil {
			return nil, fmt.Errorf("--sbom: %v", err)
		}
	}
	if len(s.SBOM) > 0 && p.Method == "none" {
		return nil, errors.New("--sbom attests the SBOM: give --sign keyless or --sign key=FILE")
	}
	if p.Registry, err = s.Registry.Options(); err != nil {
		return nil, err
	}
	return p, nil
}

// Apply makes r sign and publish as p says: its builder identity and SBOM
// formats, its Signer (which may reach an OIDC issuer for a token) and,
// with Push, its Pusher.
func (p *Publishing) Apply(ctx context.Context, r *Request) error {
	r.BuilderID, r.SBOMFormats = p.settings.BuilderID, p.settings.SBOM
	var err error
	if r.Signer, err = p.settings.NewSigner(ctx); err != nil {
		return err
	}
	if p.Push != nil {
		if r.Pusher, err = distribute.NewPusher(p.Push, p.Registry...); err != nil {
			return err
		}
	}
	return nil
}
