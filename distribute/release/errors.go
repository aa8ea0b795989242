package release

import (
	"errors"
	"fmt"

	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// Checks named by Error.Check: which property of the release index failed.
const (
	// CheckExpired: a role's metadata is past its expiry (a frozen index:
	// the repository, or a region serving it, stopped updating it).
	CheckExpired = "release.expired"
	// CheckRollback: the index is older than one this reader has already
	// trusted (a lower timestamp, snapshot or role version), or its
	// versions do not agree with each other.
	CheckRollback = "release.rollback"
	// CheckThreshold: a role's metadata carries fewer valid signatures than
	// its threshold.
	CheckThreshold = "release.threshold"
	// CheckDelegation: a team's role lists a target outside the paths it
	// was delegated, or a release was asked for a path the team does not
	// own.
	CheckDelegation = "release.delegation"
	// CheckNotListed: the index lists no release for the image's tag, or
	// lists another digest for it.
	CheckNotListed = "release.notListed"
	// CheckProvenance: the provenance the image carries is not the one the
	// index lists for its release.
	CheckProvenance = "release.provenance"
	// CheckIntegrity: metadata does not match the length or hashes its
	// parent role lists for it, or is malformed.
	CheckIntegrity = "release.integrity"
)

// ErrUnavailable is wrapped by errors that mean the release repository
// could not be read at all (connection refused, a missing file): a
// failure, not a verdict about the index.
var ErrUnavailable = errors.New("release repository unavailable")

// Error is a refusal: the index, or what it says about an image, does not
// hold. Check names the property that failed (one of the Check*
// constants); Role names the TUF role concerned when there is one.
type Error struct {
	Check string
	Role  string
	Err   error
}

func (e *Error) Error() string {
	if e.Role != "" {
		return fmt.Sprintf("release index refused: %s: role %s: %v", e.Check, e.Role, e.Err)
	}
	return fmt.Sprintf("release index refused: %s: %v", e.Check, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

func refusef(check, role, format string, args ...any) *Error {
	return &Error{Check: check, Role: role, Err: fmt.Errorf(format, args...)}
}

// classify turns go-tuf's errors into refusals naming the failed check;
// errors that are not about the metadata (network, I/O) wrap
// ErrUnavailable.
func classify(role string, err error) error {
	if err == nil {
		return nil
	}
	var (
		expired   *metadata.ErrExpiredMetadata
		version   *metadata.ErrBadVersionNumber
		unsigned  *metadata.ErrUnsignedMetadata
		mismatch  *metadata.ErrLengthOrHashMismatch
		lengthErr *metadata.ErrDownloadLengthMismatch
		httpErr   *metadata.ErrDownloadHTTP
		repoErr   *metadata.ErrRepository
		valueErr  *metadata.ErrValue
		typeErr   *metadata.ErrType
		already   *Error
	)
	switch {
	case errors.As(err, &already):
		return err
	case errors.As(err, &expired):
		return &Error{Check: CheckExpired, Role: role, Err: err}
	case errors.As(err, &version):
		return &Error{Check: CheckRollback, Role: role, Err: err}
	case errors.As(err, &unsigned):
		return &Error{Check: CheckThreshold, Role: role, Err: err}
	case errors.As(err, &mismatch), errors.As(err, &lengthErr):
		return &Error{Check: CheckIntegrity, Role: role, Err: err}
	case errors.As(err, &httpErr):
		return fmt.Errorf("%w: %v", ErrUnavailable, err)
	case errors.As(err, &repoErr), errors.As(err, &valueErr), errors.As(err, &typeErr):
		return &Error{Check: CheckIntegrity, Role: role, Err: err}
	}
	return fmt.Errorf("%w: %v", ErrUnavailable, err)
}
