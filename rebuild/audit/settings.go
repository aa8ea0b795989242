package audit

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/twinforge/twinforge/attest/evidence"
	"github.com/twinforge/twinforge/attest/verify"
)

// Settings are an audit as a person gives it (`twinforge rebuild`): the
// Request, with the files it is checked with named by path. Check and Load
// turn them into a Request before anything is fetched or started, so that
// a setting that cannot work is reported as such.
type Settings struct {
	Request
	// PolicyFile (policy) is required; TrustedRootFile (trusted-root) is
	// required when the policy trusts certificates, timestamps or a log.
	PolicyFile, TrustedRootFile string
	// ProvenanceFile (provenance) is a provenance bundle to rebuild from
	// instead of the image's own.
	ProvenanceFile string
	// SignMethod is how the verdict is signed: keyless, key or none.
	SignMethod string
}

// Check checks the settings; every error names the flag at fault.
func (s *Settings) Check() error {
	r := &s.Request
	switch {
	case s.PolicyFile == "":
		return errors.New("--policy FILE is required: a provenance is rebuilt only once it verifies against a policy")
	case r.Image == "" && s.ProvenanceFile == "":
		return errors.New("missing IMAGE: give REGISTRY/REPOSITORY@sha256:..., an OCI layout, or --provenance FILE")
	case r.Digest != "" && !strings.HasPrefix(r.Digest, "sha256:"):
		return fmt.Errorf("--digest %q: want sha256:<hex>", r.Digest)
	case r.RebuilderID == "":
		return errors.New("--rebuilder-id must not be empty")
	case s.SignMethod == "none" && (r.VerdictFile != "" || r.PushVerdict):
		return errors.New("--verdict and --push-verdict need a signed verdict: give --sign keyless or --sign key=FILE")
	case r.PushVerdict && (r.Image == "" || !evidence.LooksLikeReference(r.Image)):
		return errors.New("--push-verdict attaches the verdict to an image in a registry: give IMAGE as REGISTRY/REPOSITORY@sha256:...")
	}
	if r.Source != "" {
		if fi, err := os.Stat(r.Source); err != nil || !fi.IsDir() {
			return fmt.Errorf("--source %s: not a directory", r.Source)
		}
	}
	return nil
}

// Load reads the policy, the trusted root and the provenance bundle into
// the Request. Its errors name the flag at fault, except that a provenance
// bundle that does not parse is refused (ErrRefused): it is not rebuilt.
func (s *Settings) Load() error {
	r := &s.Request
	var err error
	if r.Policy, err = verify.LoadPolicy(s.PolicyFile); err != nil {
		return err
	}
	if r.Policy.NeedsTrustedRoot() && s.TrustedRootFile == "" {
		return errors.New("the policy trusts certificates, timestamps or a log: give --trusted-root FILE")
	}
	if s.TrustedRootFile != "" {
		if r.TrustedRoot, err = verify.LoadTrustedRoot(s.TrustedRootFile); err != nil {
			return err
		}
	}
	if s.ProvenanceFile != "" {
		data, err := os.ReadFile(s.ProvenanceFile)
		if err != nil {
			return fmt.Errorf("--provenance: %w", err)
		}
		if r.Provenance, err = verify.ParseBundle(data); err != nil {
			return &refusal{fmt.Errorf("--provenance %s: %w; it is not rebuilt", s.ProvenanceFile, err)}
		}
		r.ProvenanceName = s.ProvenanceFile
	}
	return nil
}
