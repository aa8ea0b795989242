package hermetic

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"path/filepath"

	"github.com/twinforge/twinforge/hermetic/gomod"
	"github.com/twinforge/twinforge/internal/errclass"
)

var (
	// ErrInvalidSettings is wrapped by every error of LockRun.Run about its
	// settings: a context that is not a directory, or --check with what
	// only a new lock takes. Such errors name the flag at fault and keep
	// their message; to the CLI they are usage errors.
	ErrInvalidSettings = errors.New("invalid lock settings")

	// ErrRefused is wrapped by every error of LockRun.Run that refuses the
	// tree: an input Create cannot pin, or, with Check, a lock the tree or
	// the Dockerfile no longer matches. The message is the cause's; to the
	// CLI it is a refusal (exit 4). A Go checksum database that cannot be
	// reached (gomod.ErrUnreachable) is a failure, not a refusal: trying
	// again may work.
	ErrRefused = errors.New("lock refused")
)

func settingErrorf(format string, args ...any) error {
	return errclass.Errorf(ErrInvalidSettings, format, args...)
}

func refusal(err error) error { return errclass.Mark(ErrRefused, err) }

// LockRun is one run of `twinforge lock`: it creates or updates the lock of
// Request.ContextDir, keeping what the lock it replaces recorded (Relock),
// or, with Check, only checks the tree against the lock.
type LockRun struct {
	// Request is what to lock. Its LockDir is LockPath's directory, and
	// the settings Given does not report are taken from the existing lock.
	Request
	// LockPath is the lock file. The default is
	// ContextDir/DefaultFileName.
	LockPath string
	// Check only checks that the lock still matches the tree and the
	// Dockerfile (Lock.CheckTree), and takes nothing a new lock would:
	// neither Update nor Request.Images or Request.BuildArgs.
	Check bool
	// Update re-resolves base images instead of keeping the pins of the
	// existing lock (Relock.Update).
	Update bool
	// Given reports whether a flag of `twinforge lock` was given: "file",
	// "build-arg", "target" or "platform". A setting whose flag was not
	// given is kept from the existing lock, so that running the command
	// again with fewer flags does not change what is locked. nil: none
	// was given.
	Given func(flag string) bool
}

// relockFlags are the flags of the Request settings Relock keeps when not
// given, by Relock.Given's setting name.
var relockFlags = map[string]string{"dockerfile": "file", "buildArgs": "build-arg", "target": "target", "platform": "platform"}

// Run creates the lock and writes it to LockPath, or with Check checks the
// tree against it, and writes one line saying what it did to w: as
// `twinforge lock` prints it. An existing lock that cannot be read is
// replaced, with a warning on log. Errors about the settings wrap
// ErrInvalidSettings, refusals ErrRefused.
func (r LockRun) Run(ctx context.Context, w io.Writer, log *slog.Logger) error {
	req := r.Request
	if r.Check && (r.Update || len(req.Images) > 0 || len(req.BuildArgs) > 0) {
		return settingErrorf("--check only checks: it takes no --update, --image or --build-arg")
	}
	ctxDir := req.ContextDir
	fi, err := os.Stat(ctxDir)
	if err != nil {
		// The path is in the message already; the PathError would say it
		// twice.
		return settingErrorf("build context %s: %w", ctxDir, errors.Unwrap(err))
	}
	if !fi.IsDir() {
		return settingErrorf("build context %s is not a directory", ctxDir)
	}
	lockPath := r.LockPath
	if lockPath == "" {
		lockPath = filepath.Join(ctxDir, DefaultFileName)
	}
	if r.Check {
		return checkLock(ctx, w, ctxDir, lockPath)
	}
	req.LockDir = filepath.Dir(lockPath)
	// Inherit adds the layouts the old lock pinned to Images: to a copy,
	// so that the caller's map stays what it gave.
	req.Images = maps.Clone(req.Images)
	if old, err := Load(lockPath); err == nil {
		given := r.Given
		if given == nil {
			given = func(string) bool { return false }
		}
		req.Inherit(Relock{Old: old, LockPath: lockPath, Update: r.Update, Given: func(s string) bool { return given(relockFlags[s]) }})
	} else if !errors.Is(err, os.ErrNotExist) {
		if log == nil {
			log = slog.Default()
		}
		log.Warn("ignoring the existing lock, it cannot be read", "lock", lockPath, "err", err)
	}
	l, err := Create(ctx, req)
	if errors.Is(err, gomod.ErrUnreachable) {
		return err
	}
	if err != nil {
		return refusal(err)
	}
	changed, err := l.Write(lockPath)
	if err != nil {
		return err
	}
	if !changed {
		_, err = fmt.Fprintf(w, "%s is up to date\n", lockPath)
		return err
	}
	_, err = fmt.Fprintln(w, l.Summary(lockPath))
	return err
}

// checkLock verifies the tree and the Dockerfile against the lock.
func checkLock(ctx context.Context, w io.Writer, contextDir, lockPath string) error {
	l, err := Load(lockPath)
	if err != nil {
		return refusal(err)
	}
	if err := l.CheckTree(ctx, contextDir); err != nil {
		return refusal(err)
	}
	_, err = fmt.Fprintf(w, "%s matches %s\n", lockPath, contextDir)
	return err
}
