package builder

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/twinforge/twinforge/internal/fsatomic"
)

// destination writes a layout to a temporary sibling of its final path and
// renames it into place, so readers never see half a layout.
type destination struct {
	final     string
	tmp       string
	temporary bool // final was not asked for; the caller owns a temp dir
}

func newDestination(final string) (*destination, error) {
	if final == "" {
		dir, err := os.MkdirTemp("", "twinforge-layout-")
		if err != nil {
			return nil, fmt.Errorf("creating layout directory: %w", err)
		}
		return &destination{final: dir, tmp: dir, temporary: true}, nil
	}
	abs, err := filepath.Abs(final)
	if err != nil {
		return nil, fmt.Errorf("OCI layout path %q: %w", final, err)
	}
	if err := checkReplaceable(abs); err != nil {
		return nil, err
	}
	parent := filepath.Dir(abs)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return nil, fmt.Errorf("creating %s: %w", parent, err)
	}
	tmp, err := os.MkdirTemp(parent, "."+filepath.Base(abs)+".tmp-")
	if err != nil {
		return nil, fmt.Errorf("creating temporary layout beside %s: %w", abs, err)
	}
	return &destination{final: abs, tmp: tmp}, nil
}

// checkReplaceable refuses to replace anything but an earlier OCI layout or
// an empty directory: a build never deletes a user's files.
func checkReplaceable(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("OCI layout path %s: %w", path, err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("%w: OCI layout path %s exists and is not a directory; choose another --oci-layout", ErrInvalidRequest, path)
	}
	entries, err := os.ReadDir(path)
	if err != nil {
		return fmt.Errorf("OCI layout path %s: %w", path, err)
	}
	if len(entries) == 0 {
		return nil
	}
	if _, err := os.Stat(filepath.Join(path, "oci-layout")); err != nil {
		return fmt.Errorf("%w: %s exists and is not an OCI layout; twinforge will not replace it, choose another --oci-layout", ErrInvalidRequest, path)
	}
	return nil
}

// commit moves the finished layout into place, replacing an earlier layout.
func (d *destination) commit() error {
	if d.temporary {
		return nil
	}
	if err := fsatomic.ReplaceDir(d.tmp, d.final); err != nil {
		return fmt.Errorf("moving the layout into place: %w", err)
	}
	return nil
}

func (d *destination) abort() {
	_ = os.RemoveAll(d.tmp)
}
