package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/twinforge/twinforge/distribute"
	"github.com/twinforge/twinforge/internal/textout"
	"github.com/twinforge/twinforge/rebuild"
)

// oneOf checks a flag's value against its allowed values.
func oneOf(flag, value string, allowed ...string) error {
	for _, a := range allowed {
		if value == a {
			return nil
		}
	}
	return fmt.Errorf("--%s %q: use one of %s", flag, value, strings.Join(allowed, ", "))
}

// nArgs refuses any other number of arguments than n, with the usage
// error format says.
func nArgs(c *cli.Context, n int, format string, a ...any) error {
	if c.NArg() != n {
		return usageErrorf(format, a...)
	}
	return nil
}

// noArgs refuses arguments to a command that takes none.
func noArgs(c *cli.Context) error {
	return nArgs(c, 0, "%s takes no arguments, got %q", commandName(c), c.Args().Slice())
}

// contextArg returns the single CONTEXT argument of a command.
func contextArg(c *cli.Context) (string, error) {
	if c.NArg() == 0 {
		return "", usageErrorf("missing CONTEXT: give the build context directory, e.g. `twinforge %s examples/hello`", c.Command.Name)
	}
	return c.Args().First(), nArgs(c, 1, "%s takes one CONTEXT, got %d arguments: %s", c.Command.Name, c.NArg(), strings.Join(c.Args().Slice(), " "))
}

// commandName is the command's path without the program's name, as
// errors name it: "release team add".
func commandName(c *cli.Context) string {
	return strings.TrimPrefix(c.Command.HelpName, c.App.Name+" ")
}

// registryFlags are the registry flags push, replicate and release share.
func registryFlags(r *distribute.RegistrySettings) []cli.Flag {
	return []cli.Flag{
		&cli.BoolFlag{Name: "insecure", Usage: "allow plain HTTP to loopback registries (127.0.0.0/8, ::1, localhost); refused for any other host", Destination: &r.InsecureLoopbackUnsafe},
		&cli.StringFlag{Name: "ca-cert", Usage: "trust the CA certificates in PEM `FILE` too, for registries with a private CA", Destination: &r.CACertFile},
	}
}

// outputFlag is --output (-o), text by default; results implement
// WriteText and are their own JSON document (internal/textout).
func outputFlag(p *string, usage string) cli.Flag {
	return &cli.StringFlag{Name: "output", Aliases: []string{"o"}, Value: "text", Usage: usage, Destination: p}
}

// checkOutput checks --output against formats (default: text and json).
func checkOutput(output string, formats ...string) error {
	if len(formats) == 0 {
		formats = []string{"text", "json"}
	}
	return usageError(oneOf("output", output, formats...))
}

// writeOutput writes a result in the --output format: text or json.
func writeOutput(w io.Writer, format string, v textout.TextWriter) error {
	return textout.Write(w, format, v)
}

// strictVariations is the value of --strict-variations. It is a boolean
// flag to the flag package, so that the flag alone means warn, while
// --strict-variations=fail and =off name the others.
type strictVariations struct{ mode rebuild.Strictness }

func (s *strictVariations) Set(v string) error {
	m, err := rebuild.ParseStrictness(v)
	if err != nil {
		return err
	}
	s.mode = m
	return nil
}

func (s *strictVariations) String() string {
	if s == nil || s.mode == "" {
		return string(rebuild.StrictOff)
	}
	return string(s.mode)
}

func (s *strictVariations) IsBoolFlag() bool { return true }

// flag is --strict-variations, set into s.
func (s *strictVariations) flag() cli.Flag {
	s.mode = rebuild.StrictOff
	return &cli.GenericFlag{
		Name:  "strict-variations",
		Value: s,
		Usage: "also rebuild with what BuildKit pins varied, umask and time zone: the flag alone (warn) reports what only they change as warnings, " +
			"--strict-variations=fail exits 3 on it, =off is the default; give a value with =",
	}
}
