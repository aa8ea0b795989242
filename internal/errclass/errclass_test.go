package errclass

import (
	"errors"
	"io/fs"
	"testing"
)

func TestMark(t *testing.T) {
	class := errors.New("invalid setting")
	err := Errorf(class, "--key %s: %w", "k", fs.ErrNotExist)
	if err.Error() != "--key k: file does not exist" {
		t.Errorf("message = %q; want the cause's alone", err)
	}
	if !errors.Is(err, class) || !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("errors.Is finds class %v, cause %v; want both", errors.Is(err, class), errors.Is(err, fs.ErrNotExist))
	}
	if Mark(class, nil) != nil {
		t.Error("Mark(class, nil) != nil")
	}
}
