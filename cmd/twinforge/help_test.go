package main

import (
	"bytes"
	"os"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"

	"github.com/twinforge/twinforge/internal/golden"
)

// TestHelpGolden renders the help of the program and of every command and
// subcommand, hidden ones too, and compares each with
// testdata/help/<command path>.txt (go test -run HelpGolden -update-golden
// rewrites them): help is the CLI's documentation, and a change to it
// should be one made on purpose.
func TestHelpGolden(t *testing.T) {
	// Defaults that come from the machine are pinned, and every
	// environment variable a flag reads is cleared, so the help is the
	// same everywhere.
	t.Setenv("XDG_STATE_HOME", "/state")
	var walkEnv func([]*cli.Command)
	clearEnv := func(flags []cli.Flag) {
		for _, f := range flags {
			if e, ok := f.(interface{ GetEnvVars() []string }); ok {
				for _, name := range e.GetEnvVars() {
					t.Setenv(name, "")
					os.Unsetenv(name)
				}
			}
		}
	}
	walkEnv = func(cmds []*cli.Command) {
		for _, cmd := range cmds {
			clearEnv(cmd.Flags)
			walkEnv(cmd.Subcommands)
		}
	}
	app := newApp(nil, nil)
	clearEnv(app.Flags)
	walkEnv(app.Commands)

	paths := [][]string{nil}
	var walk func(prefix []string, cmds []*cli.Command)
	walk = func(prefix []string, cmds []*cli.Command) {
		for _, cmd := range cmds {
			p := append(append([]string{}, prefix...), cmd.Name)
			paths = append(paths, p)
			walk(p, cmd.Subcommands)
		}
	}
	walk(nil, app.Commands)
	for _, p := range paths {
		name := strings.Join(append([]string{"twinforge"}, p...), "-")
		t.Run(name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			args := append(append([]string{"twinforge"}, p...), "--help")
			if err := newApp(&stdout, &stderr).Run(args); err != nil {
				t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, stderr.String())
			}
			if stderr.Len() != 0 {
				t.Errorf("%s wrote to stderr:\n%s", strings.Join(args, " "), stderr.String())
			}
			golden.Check(t, "help/"+name+".txt", stdout.Bytes())
		})
	}
}
