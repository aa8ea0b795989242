package main

import (
	"os"

	"github.com/urfave/cli/v2"

	"github.com/twinforge/twinforge/rebuild/vouch"
)

// rebuilderCommand is the rebuild process of a build whose rebuilder
// signs its own verdict (build --rebuilder-sign): twinforge build starts
// it and speaks to it on stdin and stdout (package rebuild/vouch).
func rebuilderCommand() *cli.Command {
	return &cli.Command{
		Name:   "rebuilder",
		Hidden: true,
		Usage:  "the rebuild side of `twinforge build --rebuilder-sign`, run by it; reads its configuration and requests on stdin",
		Action: func(c *cli.Context) error {
			return vouch.Serve(c.Context, os.Stdin, c.App.Writer, logger())
		},
	}
}
