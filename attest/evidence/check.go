package evidence

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/sigstore/sigstore-go/pkg/root"

	"github.com/twinforge/twinforge/attest/verify"
	"github.com/twinforge/twinforge/distribute"
	"github.com/twinforge/twinforge/distribute/release"
)

// Check is what `twinforge verify` asks: an image verified against the
// policy and trusted root in files, and, when Release is set, against the
// release index.
type Check struct {
	// Image is an OCI layout or a registry reference (see Open); Digest
	// picks the image of a layout holding several.
	Image, Digest string
	// PolicyFile is the policy (attest/policy.md). Required.
	PolicyFile string
	// TrustedRootFile is the Sigstore trusted root; or TUFURL names a TUF
	// repository to fetch it from, trusting TUFRootFile first and caching
	// in TUFCacheDir. The setting names (trusted-root, tuf-url, tuf-root,
	// tuf-cache) are the flags of `twinforge verify`.
	TrustedRootFile, TUFURL, TUFRootFile, TUFCacheDir string
	// Registry configures how registries are reached.
	Registry []distribute.Option
	// Release, when set, is the release index the image must be released
	// in; only the provenance it names counts.
	Release *release.ClientConfig
}

// settingError is an error about the settings of a Check, a usage error to
// the CLI: it wraps ErrInvalidRequest without changing the message.
type settingError struct{ err error }

func (e *settingError) Error() string   { return e.err.Error() }
func (e *settingError) Unwrap() []error { return []error{e.err, ErrInvalidRequest} }

func settingErrorf(format string, args ...any) error {
	return &settingError{fmt.Errorf(format, args...)}
}

// Refused is a refusal of the image by verification (a
// *verify.VerificationError) or by the release index (a *release.Error),
// with what `twinforge verify --output json` prints of it.
type Refused struct {
	Refusal Refusal
	Err     error
}

func (e *Refused) Error() string { return e.Err.Error() }
func (e *Refused) Unwrap() error { return e.Err }

// Run verifies the image c names. Settings that cannot work wrap
// ErrInvalidRequest; a refusal is a *Refused.
func (c Check) Run(ctx context.Context) (*Report, error) {
	switch {
	case c.TrustedRootFile != "" && c.TUFURL != "":
		return nil, settingErrorf("give --trusted-root or --tuf-url, not both")
	case c.TUFURL != "" && c.TUFRootFile == "":
		return nil, settingErrorf("--tuf-url needs --tuf-root: the initial root.json to trust")
	case c.TUFURL == "" && (c.TUFRootFile != "" || c.TUFCacheDir != ""):
		return nil, settingErrorf("--tuf-root and --tuf-cache go with --tuf-url")
	}
	policy, err := verify.LoadPolicy(c.PolicyFile)
	if err != nil {
		return nil, &settingError{err}
	}
	if policy.NeedsTrustedRoot() && c.TrustedRootFile == "" && c.TUFURL == "" {
		return nil, settingErrorf("the policy trusts certificates, timestamps or a log: give --trusted-root FILE or --tuf-url URL --tuf-root FILE")
	}
	src, err := Open(c.Image, c.Registry...)
	if err != nil {
		return nil, err
	}
	ev, err := src.Evidence(ctx, c.Digest)
	if err != nil {
		return nil, err
	}
	tm, err := c.trustedMaterial(ctx)
	if err != nil {
		return nil, err
	}
	var released *release.Target
	if c.Release != nil {
		if ev.Repository == "" {
			return nil, settingErrorf("--release-repo checks an image in a registry against the index; %s is an OCI layout", ev.Where)
		}
		if released, err = release.Check(ctx, *c.Release, ev.Repository, ev.Tag, ev.Digest.String()); err != nil {
			return nil, releaseRefusal(ev, err)
		}
		if ev.Provenance, err = release.ReleasedProvenance(ev.Provenance, released); err != nil {
			return nil, releaseRefusal(ev, err)
		}
	}
	res, err := ev.Verify(ctx, tm, policy)
	var ve *verify.VerificationError
	if errors.As(err, &ve) {
		return nil, &Refused{Refusal: NewRefusal(ev, ve.Check, ve.Err), Err: fmt.Errorf("%s refused: %w", ev.Name(), err)}
	}
	if err != nil {
		return nil, err
	}
	return &Report{Verified: true, Image: ev.Where, ResolvedFrom: ev.ResolvedFrom, Policy: c.PolicyFile,
		RequiredVerdicts: policy.RequiredRebuildVerdicts(), Release: released, Result: res.Result}, nil
}

// releaseRefusal is a *Refused for a refusal of the release index; a
// failure to read the index is returned as it is.
func releaseRefusal(ev *Evidence, err error) error {
	var re *release.Error
	if !errors.As(err, &re) {
		return err
	}
	return &Refused{Refusal: NewRefusal(ev, re.Check, err), Err: fmt.Errorf("%s refused: %w", ev.Name(), err)}
}

// trustedMaterial loads the trusted root c names; nil when none is named.
func (c Check) trustedMaterial(ctx context.Context) (root.TrustedMaterial, error) {
	switch {
	case c.TrustedRootFile != "":
		tr, err := verify.LoadTrustedRoot(c.TrustedRootFile)
		if err != nil {
			return nil, &settingError{err}
		}
		return tr, nil
	case c.TUFURL != "":
		initial, err := os.ReadFile(c.TUFRootFile)
		if err != nil {
			return nil, settingErrorf("--tuf-root: %w", err)
		}
		return verify.TrustedRootFromTUF(ctx, verify.TUFConfig{MetadataURL: c.TUFURL, CacheDir: c.TUFCacheDir, InitialRoot: initial})
	}
	return nil, nil
}
