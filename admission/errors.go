package admission

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"

	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/twinforge/twinforge/attest/verify"
	"github.com/twinforge/twinforge/distribute/release"
)

var (
	// ErrNoPolicy means no tenant of the configuration covers the image in
	// the request's namespace: the image is outside every policy scope.
	ErrNoPolicy = errors.New("no policy covers this image in this namespace")

	// ErrRevoked means the image's digest is on the revocation list.
	ErrRevoked = errors.New("image digest is revoked")

	// ErrImageNotFound means the registry has no such repository or
	// manifest.
	ErrImageNotFound = errors.New("image not found in the registry")

	// ErrInsecure means plain HTTP to a registry was refused: for every host
	// without WithInsecureLoopbackUnsafe, and for hosts that are not loopback
	// with it.
	ErrInsecure = errors.New("insecure registry refused")

	// ErrInvalidConfig is wrapped by every error about the content of a
	// configuration, revocation list or policy file.
	ErrInvalidConfig = errors.New("invalid admission configuration")

	// ErrUnsupportedKind means the AdmissionReview is about a resource or
	// operation the webhook does not decide (anything but the CREATE or
	// UPDATE of pods and workload pod templates).
	ErrUnsupportedKind = errors.New("unsupported resource")

	// ErrTagNotPinned means an image named by tag reached a webhook that
	// does not pin tags to digests (WithValidationOnly) for a tenant that
	// does not allow tags.
	ErrTagNotPinned = errors.New("image named by tag without mutation")
)

// Results label decisions in metrics and logs; every denial has exactly one.
const (
	ResultAdmitted     = "admitted"
	ResultVerification = "denied_verification" // a VerificationError
	ResultRevoked      = "denied_revoked"
	ResultRelease      = "denied_release" // the release index refused the image, or none verified
	ResultNoPolicy     = "denied_no_policy"
	ResultNotFound     = "denied_not_found"
	ResultRegistry     = "denied_registry" // registry unreachable or failing
	ResultTimeout      = "denied_timeout"
	ResultInvalid      = "denied_invalid" // bad image reference, unsupported kind, bad object
	ResultTag          = "denied_tag"     // named by tag, and nothing pins it (WithValidationOnly)
	ResultError        = "denied_error"   // anything else
)

// classify turns why an image was not admitted into a metric result and the
// human reason the API server shows the user. It never looks at error
// strings: only at sentinel errors and types.
func classify(err error) (result, reason string) {
	result, reason = classifyCause(err)
	var te *tenantError
	if err != nil && errors.As(err, &te) {
		reason = fmt.Sprintf("tenant %q: %s", te.tenant, reason)
	}
	return result, reason
}

func classifyCause(err error) (result, reason string) {
	var ve *verify.VerificationError
	var re *release.Error
	var terr *transport.Error
	var nerr net.Error
	switch {
	case err == nil:
		return ResultAdmitted, ""
	case errors.As(err, &re):
		return ResultRelease, fmt.Sprintf("release index: check %q: %v", re.Check, err)
	case errors.Is(err, ErrNoReleaseIndex):
		return ResultRelease, fmt.Sprintf("%v (fail closed)", err)
	case errors.As(err, &ve):
		return ResultVerification, fmt.Sprintf("verification failed: check %q: %v", ve.Check, ve.Err)
	case errors.Is(err, ErrRevoked):
		return ResultRevoked, err.Error()
	case errors.Is(err, ErrNoPolicy):
		return ResultNoPolicy, err.Error()
	case errors.Is(err, ErrTagNotPinned):
		return ResultTag, err.Error()
	case errors.Is(err, context.DeadlineExceeded):
		return ResultTimeout, fmt.Sprintf("verification did not finish in time (fail closed): %v", err)
	case errors.Is(err, ErrImageNotFound):
		return ResultNotFound, err.Error()
	case notFound(err):
		return ResultNotFound, fmt.Sprintf("%v: %v", ErrImageNotFound, err)
	case errors.As(err, &terr):
		return ResultRegistry, fmt.Sprintf("registry error (fail closed): %v", err)
	case errors.Is(err, ErrInsecure):
		return ResultRegistry, err.Error()
	case errors.As(err, &nerr):
		return ResultRegistry, fmt.Sprintf("registry unreachable (fail closed): %v", err)
	case errors.Is(err, ErrUnsupportedKind), errors.Is(err, errInvalidImage), errors.Is(err, errInvalidObject):
		return ResultInvalid, err.Error()
	}
	return ResultError, fmt.Sprintf("verification error (fail closed): %v", err)
}

// notFound reports whether a registry error says the repository or manifest
// does not exist.
func notFound(err error) bool {
	var terr *transport.Error
	return errors.As(err, &terr) && (terr.StatusCode == http.StatusNotFound || hasCode(terr, transport.NameUnknownErrorCode, transport.ManifestUnknownErrorCode))
}

func hasCode(terr *transport.Error, codes ...transport.ErrorCode) bool {
	for _, d := range terr.Errors {
		for _, c := range codes {
			if d.Code == c {
				return true
			}
		}
	}
	return false
}

// cacheableRefusal says whether a failed decision is about the evidence
// itself, and so may be cached for the negative TTL: a refused verification
// or a missing image. Transient failures (registry errors, timeouts) are
// never cached.
func cacheableRefusal(err error) bool {
	var ve *verify.VerificationError
	result, _ := classify(err)
	return errors.As(err, &ve) || result == ResultNotFound
}

var (
	errInvalidImage  = errors.New("invalid image reference")
	errInvalidObject = errors.New("invalid object")
)

// tenantError says which tenant's policy refused an image.
type tenantError struct {
	tenant string
	err    error
}

func (e *tenantError) Error() string { return fmt.Sprintf("tenant %q: %v", e.tenant, e.err) }
func (e *tenantError) Unwrap() error { return e.err }
