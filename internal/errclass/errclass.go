// Package errclass gives an error a class, a sentinel that errors.Is
// finds, without changing its message: the message is what a person
// reads, the class is what a program (the CLI's exit codes) decides by.
package errclass

import "fmt"

// marked is err in class.
type marked struct{ err, class error }

func (e *marked) Error() string   { return e.err.Error() }
func (e *marked) Unwrap() []error { return []error{e.err, e.class} }

// Mark returns err in class: errors.Is finds both class and what err
// wraps, and the message is err's. nil stays nil.
func Mark(class, err error) error {
	if err == nil {
		return nil
	}
	return &marked{err: err, class: class}
}

// Errorf is Mark(class, fmt.Errorf(format, args...)).
func Errorf(class error, format string, args ...any) error {
	return Mark(class, fmt.Errorf(format, args...))
}
