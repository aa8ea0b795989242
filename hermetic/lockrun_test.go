package hermetic

import (
	"bytes"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The settings LockRun refuses are usage errors to the CLI: each wraps
// ErrInvalidSettings and says, in the words `twinforge lock` prints, what
// is wrong.
func TestLockRunSettings(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing")
	for _, tc := range []struct {
		name string
		run  LockRun
		want string
	}{
		{"check with update", LockRun{Request: Request{ContextDir: dir}, Check: true, Update: true},
			"--check only checks: it takes no --update, --image or --build-arg"},
		{"check with image", LockRun{Request: Request{ContextDir: dir, Images: map[string]string{"a": "oci-layout:x"}}, Check: true},
			"--check only checks: it takes no --update, --image or --build-arg"},
		{"check with build arg", LockRun{Request: Request{ContextDir: dir, BuildArgs: map[string]string{"A": "1"}}, Check: true},
			"--check only checks: it takes no --update, --image or --build-arg"},
		// The exclusivity is checked before the context.
		{"check with update, no context", LockRun{Request: Request{ContextDir: missing}, Check: true, Update: true},
			"--check only checks: it takes no --update, --image or --build-arg"},
		{"no context", LockRun{Request: Request{ContextDir: missing}},
			"build context " + missing + ": no such file or directory"},
		{"no context, check", LockRun{Request: Request{ContextDir: missing}, Check: true},
			"build context " + missing + ": no such file or directory"},
		{"context is a file", LockRun{Request: Request{ContextDir: file}},
			"build context " + file + " is not a directory"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			err := tc.run.Run(t.Context(), &out, nil)
			if !errors.Is(err, ErrInvalidSettings) || errors.Is(err, ErrRefused) {
				t.Fatalf("err = %v, want only ErrInvalidSettings", err)
			}
			if err.Error() != tc.want {
				t.Errorf("err = %q, want %q", err, tc.want)
			}
			if out.Len() != 0 {
				t.Errorf("wrote %q", out.String())
			}
		})
	}
}

// What the tree or the lock does not allow is a refusal: it wraps
// ErrRefused, keeps the cause's sentinel and message, and is never a
// settings error.
func TestLockRunRefusals(t *testing.T) {
	req, _ := baseRequest(t)
	edited, _ := baseRequest(t)
	if err := (LockRun{Request: edited}).Run(t.Context(), new(bytes.Buffer), nil); err != nil {
		t.Fatal(err)
	}
	writeFiles(t, edited.ContextDir, map[string]string{"src/main.go": "package main // edited\n"})
	noLayout := req
	noLayout.Images = nil
	for _, tc := range []struct {
		name  string
		run   LockRun
		cause error
		want  string
	}{
		{"check without a lock", LockRun{Request: Request{ContextDir: req.ContextDir}, Check: true}, os.ErrNotExist, "run `twinforge lock CONTEXT` to create it"},
		{"check after an edit", LockRun{Request: Request{ContextDir: edited.ContextDir}, Check: true}, ErrLockMismatch, "src/main.go"},
		{"base image not resolvable", LockRun{Request: noLayout}, nil, "example.test/base:1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.run.Run(t.Context(), new(bytes.Buffer), nil)
			if !errors.Is(err, ErrRefused) || errors.Is(err, ErrInvalidSettings) {
				t.Fatalf("err = %v, want only ErrRefused", err)
			}
			if tc.cause != nil && !errors.Is(err, tc.cause) {
				t.Errorf("err = %v, want it to wrap %v", err, tc.cause)
			}
			if !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), ErrRefused.Error()) {
				t.Errorf("err = %q, want the cause's message, naming %q", err, tc.want)
			}
		})
	}
}

// Run again, LockRun keeps what the lock recorded and says the lock is up
// to date; Check then finds the tree matching; a lock that cannot be read
// is replaced with a warning.
func TestLockRunRelock(t *testing.T) {
	req, digest := baseRequest(t)
	lockPath := filepath.Join(req.ContextDir, DefaultFileName)
	run := func(r LockRun) (string, string) {
		t.Helper()
		var out, log bytes.Buffer
		if err := r.Run(t.Context(), &out, slog.New(slog.NewTextHandler(&log, nil))); err != nil {
			t.Fatal(err)
		}
		return out.String(), log.String()
	}
	first := LockRun{Request: req, Given: func(flag string) bool { return flag == "platform" }}
	if out, _ := run(first); !strings.HasPrefix(out, "wrote "+lockPath+" (1 images,") {
		t.Fatalf("first run: %q", out)
	}
	if len(req.Images) != 1 {
		t.Errorf("Run changed the caller's Images: %v", req.Images)
	}

	// Without --image and --platform, the layout and the platform are the
	// old lock's.
	again := LockRun{Request: Request{ContextDir: req.ContextDir}}
	if out, _ := run(again); out != lockPath+" is up to date\n" {
		t.Fatalf("second run: %q", out)
	}
	if out, _ := run(LockRun{Request: Request{ContextDir: req.ContextDir}, Check: true}); out != lockPath+" matches "+req.ContextDir+"\n" {
		t.Fatalf("check: %q", out)
	}
	// A platform given is not the old lock's.
	if out, _ := run(LockRun{Request: Request{ContextDir: req.ContextDir, Platform: "linux/arm64"}, Given: func(f string) bool { return f == "platform" }}); !strings.HasPrefix(out, "wrote ") {
		t.Fatalf("new platform: %q", out)
	}
	l, err := Load(lockPath)
	if err != nil {
		t.Fatal(err)
	}
	if l.Platform != "linux/arm64" || len(l.Images) != 1 || l.Images[0].Digest != digest {
		t.Errorf("relocked: platform %s, images %+v", l.Platform, l.Images)
	}

	if err := os.WriteFile(lockPath, []byte("{"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, log := run(LockRun{Request: req})
	if !strings.HasPrefix(out, "wrote ") || !strings.Contains(log, "ignoring the existing lock, it cannot be read") {
		t.Errorf("over an unreadable lock: out %q, log %q", out, log)
	}
}
