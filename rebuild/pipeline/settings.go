package pipeline

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/twinforge/twinforge/hermetic"
	"github.com/twinforge/twinforge/rebuild"
)

// CheckSettings checks a request as a person gave it (`twinforge build`),
// before anything starts, so that a setting that cannot work is reported
// as such rather than as a failed build. Every error it returns is about a
// setting and names its flag; Run checks less, for programs that fill the
// request themselves.
func (r *Request) CheckSettings() error {
	if s := r.Daemons.RebuildSnapshotter; s != "native" && s != "overlayfs" {
		return fmt.Errorf("--rebuild-snapshotter %q: use one of native, overlayfs", s)
	}
	if r.RebuildOffset < time.Second {
		return fmt.Errorf("--rebuild-offset %v: the rebuild must start at least 1s later", r.RebuildOffset)
	}
	if r.NoRebuild && r.StrictVariations != rebuild.StrictOff {
		return errors.New("--strict-variations needs the rebuild: drop --no-rebuild")
	}
	if w := r.Daemons.Workers; w != nil {
		switch {
		case r.NoRebuild && w.Rebuild != "":
			return errors.New("--rebuilder needs the rebuild: drop --no-rebuild")
		case r.StrictVariations != rebuild.StrictOff && !r.NoRebuild:
			return errors.New("--strict-variations needs a rebuild daemon twinforge starts with its runtime shim; a remote worker varies neither umask nor time zone: drop --strict-variations, or --rebuilder and --workers")
		}
	}
	fi, err := os.Stat(r.ContextDir)
	if err != nil {
		return fmt.Errorf("build context %s: %w", r.ContextDir, errors.Unwrap(err))
	}
	if !fi.IsDir() {
		return fmt.Errorf("build context %s is not a directory: give the directory holding the Dockerfile", r.ContextDir)
	}
	return nil
}

// SetDefaults fills in what a person may leave out: the lock in the
// context directory, and the layout out/<context name>, so that builds of
// two contexts do not overwrite each other.
func (r *Request) SetDefaults() error {
	if r.LockPath == "" {
		r.LockPath = filepath.Join(r.ContextDir, hermetic.DefaultFileName)
	}
	if r.OCILayout == "" {
		abs, err := filepath.Abs(r.ContextDir)
		if err != nil {
			return err
		}
		r.OCILayout = filepath.Join("out", filepath.Base(abs))
	}
	return nil
}
