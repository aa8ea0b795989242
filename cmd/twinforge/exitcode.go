package main

import (
	"errors"
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/twinforge/twinforge/admission"
	"github.com/twinforge/twinforge/attest/evidence"
	"github.com/twinforge/twinforge/attest/verify"
	"github.com/twinforge/twinforge/builder"
	"github.com/twinforge/twinforge/distribute"
	"github.com/twinforge/twinforge/distribute/release"
	"github.com/twinforge/twinforge/hermetic"
	"github.com/twinforge/twinforge/isolation/kube"
	"github.com/twinforge/twinforge/isolation/workercert"
	"github.com/twinforge/twinforge/rebuild"
	"github.com/twinforge/twinforge/rebuild/audit"
	"github.com/twinforge/twinforge/rebuild/pipeline"
)

// Exit codes, the same for every command.
const (
	exitOK              = 0
	exitFailure         = 1
	exitUsage           = 2
	exitNotReproducible = 3
	exitRefused         = 4
)

// codedError carries the exit code an error should end the program with.
type codedError struct {
	code int
	err  error
}

func (e *codedError) Error() string { return e.err.Error() }
func (e *codedError) Unwrap() error { return e.err }

// usageError makes err, if any, a usage error: exit code 2.
func usageError(err error) error { return coded(exitUsage, err) }

func usageErrorf(format string, args ...any) error {
	return usageError(fmt.Errorf(format, args...))
}

// refused makes err, if any, a refusal: exit code 4.
func refused(err error) error { return coded(exitRefused, err) }

// coded gives err, if any, the exit code code. nil stays nil, so that a
// library call's error can be mapped where it is returned.
func coded(code int, err error) error {
	if err == nil {
		return nil
	}
	return &codedError{code: code, err: err}
}

// exitCode maps an error to the program's exit code.
func exitCode(err error) int {
	if err == nil {
		return exitOK
	}
	var coded *codedError
	if errors.As(err, &coded) {
		return coded.code
	}
	// twinforge's own code never returns cli.ExitCoder; the CLI library
	// does, for an unknown command or help topic, with codes of its own
	// that would clash with ours.
	var exit cli.ExitCoder
	if errors.As(err, &exit) {
		return exitUsage
	}
	var ve *verify.VerificationError
	switch {
	case errors.Is(err, builder.ErrInvalidRequest), errors.Is(err, evidence.ErrInvalidRequest), errors.Is(err, distribute.ErrDigestRequired), errors.Is(err, distribute.ErrInvalidSetting), errors.Is(err, release.ErrInvalidSetting),
		errors.Is(err, hermetic.ErrInvalidSettings), errors.Is(err, kube.ErrInvalidSettings), errors.Is(err, workercert.ErrInvalidRequest), errors.As(err, new(*distribute.InvalidPushError)),
		errors.As(err, new(*admission.ConfigError)), errors.Is(err, admission.ErrMonitoringExposed):
		// Settings the libraries check name the flag at fault.
		return exitUsage
	case errors.Is(err, rebuild.ErrNotReproducible):
		return exitNotReproducible
	case errors.As(err, &ve), errors.Is(err, pipeline.ErrRefused), errors.Is(err, hermetic.ErrRefused), errors.Is(err, audit.ErrRefused),
		errors.Is(err, distribute.ErrVerification), errors.Is(err, distribute.ErrInsecure), errors.Is(err, admission.ErrViolations):
		// Libraries refuse what policy or verification does not allow.
		return exitRefused
	}
	return exitFailure
}
