package verify

import (
	"errors"
	"fmt"
)

// Checks named by VerificationError.Check.
const (
	// CheckBundle: a bundle is missing, unreadable or malformed.
	CheckBundle = "bundle"
	// CheckSignature: the image is unsigned, or a signature does not verify
	// over the content it claims to sign.
	CheckSignature = "signature"
	// CheckSubject: the signed statement or message is about another digest.
	CheckSubject = "subject"
	// CheckCertificate: the signing certificate does not chain to a trusted
	// certificate authority.
	CheckCertificate = "certificate"
	// CheckTransparencyLog: a required transparency log entry is missing or
	// does not verify against a trusted log.
	CheckTransparencyLog = "tlog"
	// CheckTimestamp: a required signed timestamp is missing or untrusted,
	// or no trusted time falls within the certificate's validity.
	CheckTimestamp = "timestamp"
	// CheckIdentity: the signer is none of the identities the policy allows.
	CheckIdentity = "identity"
	// CheckProvenance: the provenance statement is not SLSA v1 provenance
	// of a kind this package understands.
	CheckProvenance = "provenance"
	// CheckSourceRepositories: the provenance's source repository is not
	// allowed by the policy.
	CheckSourceRepositories = "policy.sourceRepositories"
	// CheckBuilderIDs: the provenance's builder is not allowed by the policy.
	CheckBuilderIDs = "policy.builderIDs"
	// CheckReproduced: the policy requires the image reproduced by
	// trusted rebuilders and fewer of them than it asks for have signed a
	// verdict that counts (the builder's own record never does).
	CheckReproduced = "policy.requireReproduced"
	// CheckStrictVariations: the policy requires strict variations and the
	// provenance records no rebuild under them, or one they changed.
	CheckStrictVariations = "policy.requireStrictVariations"
	// CheckMaxAge: the build is older than the policy allows.
	CheckMaxAge = "policy.maxAge"
)

// VerificationError is returned by Verify when the evidence does not hold:
// Check names the check that failed (one of the Check* constants) and Err
// says why. Callers branch on Check; errors.As finds it through wrapping.
type VerificationError struct {
	Check string
	Err   error
}

func (e *VerificationError) Error() string {
	return fmt.Sprintf("verification failed: %s: %v", e.Check, e.Err)
}

func (e *VerificationError) Unwrap() error { return e.Err }

func refuse(check string, err error) *VerificationError {
	return &VerificationError{Check: check, Err: err}
}

func refusef(check, format string, args ...any) *VerificationError {
	return &VerificationError{Check: check, Err: fmt.Errorf(format, args...)}
}

// ErrNotSigned is wrapped by the VerificationError Verify returns when there
// is no bundle at all.
var ErrNotSigned = errors.New("image is not signed")
