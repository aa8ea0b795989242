package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twinforge/twinforge/internal/testenv"
)

// twinforgeBin is the CLI under test, built once for the package.
var twinforgeBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "twinforge-cli-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	twinforgeBin = filepath.Join(dir, "twinforge")
	// The runtime shim goes beside the binary, where twinforge looks for it.
	for pkg, out := range map[string]string{".": twinforgeBin, "../twinforge-runc-shim": filepath.Join(dir, "twinforge-runc-shim")} {
		if b, err := exec.Command("go", "build", "-o", out, pkg).CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "building %s: %v\n%s", pkg, err, b)
			os.Exit(1)
		}
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// cliRunner runs twinforge commands with a private state directory.
type cliRunner struct {
	t     *testing.T
	state string
	dir   string
}

func newCLI(t *testing.T) *cliRunner {
	return &cliRunner{t: t, state: t.TempDir(), dir: t.TempDir()}
}

type result struct {
	stdout, stderr string
	code           int
}

func (c *cliRunner) command(ctx context.Context, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, twinforgeBin, args...)
	cmd.Dir = c.dir
	cmd.Env = append(os.Environ(),
		"TWINFORGE_STATE_DIR="+c.state,
		"TWINFORGE_BUILDKITD="+filepath.Join(testenv.RepoRoot(c.t), "bin", "buildkitd"),
		"SOURCE_DATE_EPOCH=",
	)
	return cmd
}

func (c *cliRunner) run(args ...string) result {
	c.t.Helper()
	// Generous: a cold Go build of examples/goservice on a loaded machine,
	// three builds at once, one of them on a single CPU, takes minutes.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	cmd := c.command(ctx, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		code = exit.ExitCode()
	} else if err != nil {
		c.t.Fatalf("running twinforge %v: %v", args, err)
	}
	return result{stdout.String(), stderr.String(), code}
}

// must runs a command that has to succeed.
func (c *cliRunner) must(args ...string) result {
	c.t.Helper()
	r := c.run(args...)
	if r.code != 0 {
		c.t.Fatalf("twinforge %s: exit %d\n%s", strings.Join(args, " "), r.code, r.stderr)
	}
	return r
}

// assertClean checks that nothing a run started is left: no daemon state,
// no process and no mount under the state directory.
func (c *cliRunner) assertClean() {
	c.t.Helper()
	entries, _ := os.ReadDir(filepath.Join(c.state, "daemons"))
	if len(entries) != 0 {
		c.t.Errorf("daemon state left behind: %v", entries)
	}
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err == nil && bytes.Contains(b, []byte(c.state)) {
			c.t.Errorf("process still running: %s", strings.ReplaceAll(string(b), "\x00", " "))
		}
	}
	mounts, _ := os.ReadFile("/proc/self/mountinfo")
	if bytes.Contains(mounts, []byte(c.state)) {
		c.t.Errorf("mounts left under %s", c.state)
	}
	// A cache's own file system is a loop device on an image in the state
	// directory: unmounted, it is still attached until detached.
	if loops, err := exec.Command("losetup", "--noheadings", "--output", "NAME,BACK-FILE").Output(); err == nil {
		for _, line := range strings.Split(string(loops), "\n") {
			if strings.Contains(line, c.state+"/") {
				c.t.Errorf("loop device left attached: %s", strings.TrimSpace(line))
			}
		}
	}
}

// context copies testdata/NAME into a fresh directory outside any git
// repository and returns its path.
func (c *cliRunner) context(name string) string {
	c.t.Helper()
	dst := filepath.Join(c.t.TempDir(), name)
	src := filepath.Join("testdata", name)
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(target, b, 0o644)
	})
	if err != nil {
		c.t.Fatal(err)
	}
	return dst
}

// lock locks a context against the examples' base images.
func (c *cliRunner) lock(ctxDir string, extra ...string) result {
	c.t.Helper()
	args := []string{"lock"}
	for _, b := range testenv.BaseImages(c.t) {
		args = append(args, "--image", b.Name+"=oci-layout:"+b.Layout)
	}
	return c.must(append(append(args, extra...), ctxDir)...)
}

func write(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

func assertContains(t *testing.T, what, s string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(s, w) {
			t.Errorf("%s does not mention %q:\n%s", what, w, s)
		}
	}
}

func TestUsageErrors(t *testing.T) {
	c := newCLI(t)
	file := filepath.Join(t.TempDir(), "file")
	write(t, file, "")
	tests := []struct {
		args []string
		code int
		want []string
	}{
		{[]string{"build"}, exitUsage, []string{"missing CONTEXT"}},
		{[]string{"build", "a", "b"}, exitUsage, []string{"one CONTEXT"}},
		{[]string{"build", "--output", "yaml", "."}, exitUsage, []string{"--output", "text, json"}},
		{[]string{"build", "--progress", "fancy", "."}, exitUsage, []string{"--progress"}},
		{[]string{"build", "--no-such-flag", "."}, exitUsage, []string{"no-such-flag"}},
		{[]string{"build", "/nonexistent/context"}, exitUsage, []string{"/nonexistent/context", "no such file"}},
		{[]string{"build", file}, exitUsage, []string{"not a directory"}},
		{[]string{"build", "--tlscert", "x.pem", "."}, exitUsage, []string{"--builder"}},
		{[]string{"lock", "--image", "base", "."}, exitUsage, []string{"NAME=oci-layout:PATH"}},
		{[]string{"lock", "--check", "--update", "."}, exitUsage, []string{"--check"}},
		{[]string{"lock", "--source-date-epoch", "yesterday", "."}, exitUsage, []string{"SOURCE_DATE_EPOCH"}},
		{[]string{"no-such-command"}, exitUsage, []string{"no-such-command"}},
		{[]string{"build", "--sign", "keyless", "--identity-token", "tok", "--identity-token-file", file, "."}, exitUsage, []string{"--identity-token-file or --identity-token"}},
		{[]string{"admission", "serve", "--policy", file, "--tls-cert", file, "--tls-key", file, "--metrics-addr", "nope"}, exitUsage, []string{"--metrics-addr"}},
		{[]string{"admission", "serve", "--policy", file, "--tls-cert", file, "--tls-key", file, "--allow-tags"}, exitUsage, []string{"--mutating=false"}},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			r := c.run(tt.args...)
			if r.code != tt.code {
				t.Fatalf("exit %d, want %d\n%s", r.code, tt.code, r.stderr)
			}
			assertContains(t, "stderr", r.stderr, tt.want...)
		})
	}
}

func TestHelpTeaches(t *testing.T) {
	c := newCLI(t)
	for _, cmd := range []string{"build", "lock"} {
		r := c.must(cmd, "--help")
		assertContains(t, cmd+" --help", r.stdout, "Examples:", "twinforge "+cmd)
	}
	r := c.must("--help")
	assertContains(t, "--help", r.stdout, "Exit codes", "build", "lock")
}

// A token on the command line is readable by every user of the machine:
// twinforge says so, and takes one from a file instead.
func TestIdentityTokenOnTheCommandLineWarns(t *testing.T) {
	c := newCLI(t)
	ctx := c.context("files-small")
	r := c.run("build", "--sign", "keyless", "--identity-token", "tok-on-argv", ctx)
	assertContains(t, "stderr", r.stderr, "--identity-token puts the token in the process arguments", "--identity-token-file")
	r = c.run("build", "--sign", "keyless", "--identity-token-file", filepath.Join(t.TempDir(), "token"), ctx)
	if strings.Contains(r.stderr, "process arguments") {
		t.Errorf("a token file warned:\n%s", r.stderr)
	}
}
