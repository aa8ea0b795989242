package main

import (
	"net/http"
	"os"
	"runtime/debug"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/twinforge/twinforge/hermetic"
	"github.com/twinforge/twinforge/hermetic/gomod"
	"github.com/twinforge/twinforge/internal/keyvalue"
)

type lockOptions struct {
	hermetic.LockRun
	sourceDateEpoch, sumdb string
	images, buildArgs      cli.StringSlice
	verifyModules          bool
}

func lockCommand() *cli.Command {
	o := &lockOptions{}
	return &cli.Command{
		Name:        "lock",
		Usage:       "pin every input of CONTEXT's build in CONTEXT/twinforge.lock",
		ArgsUsage:   "CONTEXT",
		Description: helpText("lock"),
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "lock", Usage: "lock file to write or check (default: CONTEXT/twinforge.lock)", Destination: &o.LockPath},
			&cli.StringSliceFlag{Name: "image", Usage: "resolve base image NAME from a local OCI layout: `NAME=oci-layout:PATH[:TAG]` (repeatable)", Destination: &o.images},
			&cli.StringFlag{Name: "file", Aliases: []string{"f"}, Usage: "Dockerfile path relative to CONTEXT (default: Dockerfile)", Destination: &o.Dockerfile},
			&cli.StringSliceFlag{Name: "build-arg", Usage: "build argument `KEY=VALUE` (repeatable)", Destination: &o.buildArgs},
			&cli.StringFlag{Name: "target", Usage: "stage to build", Destination: &o.Target},
			&cli.StringFlag{Name: "platform", Usage: "platform to build for (default: linux/<this machine's architecture>)", Destination: &o.Platform},
			&cli.StringFlag{Name: "source-date-epoch", Usage: "timestamp for the image and its files, in seconds (default: $SOURCE_DATE_EPOCH, else HEAD's commit time, else 0)", Destination: &o.sourceDateEpoch},
			&cli.BoolFlag{Name: "allow-dirty", Usage: "lock a git tree with uncommitted changes (recorded in the lock)", Destination: &o.AllowDirty},
			&cli.BoolFlag{Name: "check", Usage: "only check that the lock still matches the tree and the Dockerfile; exit 4 if not", Destination: &o.Check},
			&cli.BoolFlag{Name: "update", Usage: "re-resolve base images instead of keeping their pinned digests", Destination: &o.Update},
			&cli.BoolFlag{Name: "verify-modules", Usage: "prove every Go module go.sum pins against the Go checksum database (through $GOPROXY), and each vendored module against its zip; exit 4 naming the module (and file) that does not match", Destination: &o.verifyModules},
			&cli.StringFlag{Name: "sumdb", Value: gomod.DefaultSumDB, Usage: "checksum database verifier key (name+hash+key) for --verify-modules", Destination: &o.sumdb},
		},
		Action: o.run,
	}
}

func (o *lockOptions) run(c *cli.Context) error {
	req, err := &o.Request, error(nil)
	if req.ContextDir, err = contextArg(c); err != nil {
		return err
	}
	req.BuildKitVersion, req.Resolver = buildkitVersion(), hermetic.RegistryResolver()
	req.Fetcher = hermetic.HTTPFetcher(&http.Client{Timeout: 5 * time.Minute})
	if req.Images, err = hermetic.ParseImageMappings(o.images.Value()); err != nil {
		return usageError(err)
	}
	if req.BuildArgs, err = keyvalue.Parse("build-arg", o.buildArgs.Value()); err != nil {
		return usageError(err)
	}
	if req.SourceDateEpoch, err = hermetic.ParseSourceDateEpoch(o.sourceDateEpoch, os.Getenv("SOURCE_DATE_EPOCH")); err != nil {
		return usageError(err)
	}
	if o.verifyModules {
		req.VerifyModules = gomod.ConfigFromEnv(o.sumdb, os.Getenv)
	}
	o.Given = c.IsSet
	return o.Run(c.Context, c.App.Writer, logger())
}

// buildkitVersion is the BuildKit version twinforge is built against, the
// one the Makefile builds buildkitd from.
func buildkitVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, m := range bi.Deps {
			if m.Path == "github.com/moby/buildkit" {
				return m.Version
			}
		}
	}
	return "unknown"
}
