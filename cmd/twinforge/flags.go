package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/twinforge/twinforge/rebuild"
)

// parseKeyValues parses repeated KEY=VALUE flags. A KEY without "=" takes
// its value from the environment, as docker build does.
func parseKeyValues(flag string, values []string) (map[string]string, error) {
	if len(values) == 0 {
		return nil, nil
	}
	out := map[string]string{}
	for _, kv := range values {
		k, v, ok := strings.Cut(kv, "=")
		if k == "" {
			return nil, fmt.Errorf("--%s %q: use KEY=VALUE", flag, kv)
		}
		if !ok {
			env, set := os.LookupEnv(k)
			if !set {
				return nil, fmt.Errorf("--%s %q: no value given and %s is not set in the environment", flag, kv, k)
			}
			v = env
		}
		out[k] = v
	}
	return out, nil
}

// oneOf checks a flag's value against its allowed values.
func oneOf(flag, value string, allowed ...string) error {
	for _, a := range allowed {
		if value == a {
			return nil
		}
	}
	return fmt.Errorf("--%s %q: use one of %s", flag, value, strings.Join(allowed, ", "))
}

// contextArg returns the single CONTEXT argument of a command.
func contextArg(c *cli.Context) (string, error) {
	switch c.NArg() {
	case 1:
		return c.Args().First(), nil
	case 0:
		return "", usageErrorf("missing CONTEXT: give the build context directory, e.g. `twinforge %s examples/hello`", c.Command.Name)
	}
	return "", usageErrorf("%s takes one CONTEXT, got %d arguments: %s", c.Command.Name, c.NArg(), strings.Join(c.Args().Slice(), " "))
}

// commandName is the command's path without the program's name, as
// errors name it: "release team add".
func commandName(c *cli.Context) string {
	return strings.TrimPrefix(c.Command.HelpName, c.App.Name+" ")
}

// noArgs refuses arguments to a command that takes none.
func noArgs(c *cli.Context) error {
	if c.NArg() != 0 {
		return usageErrorf("%s takes no arguments, got %q", commandName(c), c.Args().Slice())
	}
	return nil
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

func strictVariationsFlag() cli.Flag {
	return &cli.GenericFlag{
		Name:  "strict-variations",
		Value: &strictVariations{mode: rebuild.StrictOff},
		Usage: "also rebuild with what BuildKit pins varied, umask and time zone: the flag alone (warn) reports what only they change as warnings, " +
			"--strict-variations=fail exits 3 on it, =off is the default; give a value with =",
	}
}

// strictVariationsFrom reads --strict-variations.
func strictVariationsFrom(c *cli.Context) rebuild.Strictness {
	if s, ok := c.Generic("strict-variations").(*strictVariations); ok && s.mode != "" {
		return s.mode
	}
	return rebuild.StrictOff
}
