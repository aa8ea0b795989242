// Package gitexec runs the git program for twinforge: without prompts,
// optional index writes or locale-dependent messages, and with only the
// transports in AllowedProtocols, so that a URL from a lock file or a
// provenance never makes git run a command (ext::, fd::).
package gitexec

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
)

// AllowedProtocols are the transports git may use (GIT_ALLOW_PROTOCOL):
// never ext:: or fd::, which run commands.
const AllowedProtocols = "file:git:http:https:ssh"

// ErrNoGit is wrapped by the error of a call when git is not installed.
var ErrNoGit = errors.New("git is not installed")

// Available reports whether the git program can be found.
func Available() bool {
	_, err := exec.LookPath("git")
	return err == nil
}

// Run runs git with args in dir ("" for the working directory) and returns
// its standard output with surrounding white space trimmed.
func Run(ctx context.Context, dir string, args ...string) (string, error) {
	out, err := Output(ctx, dir, args...)
	return strings.TrimSpace(out), err
}

// Output runs git with args in dir and returns its standard output as it
// is. A failure is an error naming the command, with git's message.
func Output(ctx context.Context, dir string, args ...string) (string, error) {
	if !Available() {
		return "", fmt.Errorf("git %s: %w", strings.Join(args, " "), ErrNoGit)
	}
	full := args
	if dir != "" {
		full = append([]string{"-C", dir}, args...)
	}
	cmd := exec.CommandContext(ctx, "git", full...)
	cmd.Env = append(os.Environ(), "LC_ALL=C", "GIT_TERMINAL_PROMPT=0", "GIT_OPTIONAL_LOCKS=0", "GIT_ALLOW_PROTOCOL="+AllowedProtocols)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		if msg := strings.TrimSpace(stderr.String()); msg != "" {
			return stdout.String(), fmt.Errorf("git %s: %w: %s", strings.Join(args, " "), err, msg)
		}
		return stdout.String(), fmt.Errorf("git %s: %w", strings.Join(args, " "), err)
	}
	return stdout.String(), nil
}

// ExitCode returns the exit status of a git command that failed, or -1 when
// it did not run or did not exit.
func ExitCode(err error) int {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	return -1
}

// Changed lists the paths, relative to the repository's root, that git
// status reports under pathspec in the work tree at dir: modified, added,
// deleted, renamed and untracked files (ignored ones aside).
func Changed(ctx context.Context, dir, pathspec string) ([]string, error) {
	out, err := Output(ctx, dir, "status", "--porcelain=v1", "-z", "--untracked-files=all", "--", pathspec)
	if err != nil {
		return nil, err
	}
	var paths []string
	entries := strings.Split(out, "\x00")
	for i := 0; i < len(entries); i++ {
		e := entries[i]
		if len(e) < 4 {
			continue
		}
		xy, p := e[:2], e[3:]
		if xy[0] == 'R' || xy[0] == 'C' {
			i++ // the next entry is the rename or copy source
		}
		paths = append(paths, p)
	}
	return paths, nil
}
