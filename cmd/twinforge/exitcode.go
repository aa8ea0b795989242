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

func usageError(err error) error { return &codedError{code: exitUsage, err: err} }

func usageErrorf(format string, args ...any) error {
	return usageError(fmt.Errorf(format, args...))
}

func refused(err error) error { return &codedError{code: exitRefused, err: err} }

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
	case errors.Is(err, builder.ErrInvalidRequest), errors.Is(err, evidence.ErrInvalidRequest), errors.Is(err, distribute.ErrDigestRequired),
		errors.As(err, new(*admission.ConfigError)):
		// Settings the libraries check name the flag at fault.
		return exitUsage
	case errors.Is(err, rebuild.ErrNotReproducible):
		return exitNotReproducible
	case errors.As(err, &ve), errors.Is(err, pipeline.ErrRefused), errors.Is(err, audit.ErrRefused),
		errors.Is(err, distribute.ErrVerification), errors.Is(err, distribute.ErrInsecure):
		// Libraries refuse what policy or verification does not allow.
		return exitRefused
	}
	return exitFailure
}
