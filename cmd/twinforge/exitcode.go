package main

import (
	"errors"
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/twinforge/twinforge/builder"
	"github.com/twinforge/twinforge/rebuild"
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
	switch {
	case errorsIs(err, builder.ErrInvalidRequest):
		return exitUsage
	case errorsIs(err, rebuild.ErrNotReproducible):
		return exitNotReproducible
	}
	return exitFailure
}
