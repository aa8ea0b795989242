package main

import (
	"fmt"
	"time"

	"github.com/moby/buildkit/client"
	"github.com/urfave/cli/v2"

	"github.com/twinforge/twinforge/distribute"
	"github.com/twinforge/twinforge/isolation/kube"
	"github.com/twinforge/twinforge/rebuild"
	"github.com/twinforge/twinforge/rebuild/pipeline"
)

func buildCommand() *cli.Command {
	return &cli.Command{
		Name:        "build",
		Usage:       "build CONTEXT from its lock and prove it with an independent rebuild",
		ArgsUsage:   "CONTEXT",
		Description: helpText("build"),
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "lock", Usage: "lock file (default: CONTEXT/twinforge.lock)"},
			&cli.StringFlag{Name: "oci-layout", Usage: "write the image as an OCI layout to `DIR` (default: out/<context name>)"},
			&cli.StringFlag{Name: "tag", Aliases: []string{"t"}, Usage: "reference name recorded in the layout, e.g. registry.example/team/hello:1.0"},
			progressFlag(), outputFlag("result format on stdout: text or json"),
			&cli.BoolFlag{Name: "no-rebuild", Usage: "skip the independent rebuild; the result is recorded as not reproduced"},
			&cli.DurationFlag{Name: "rebuild-offset", Value: time.Second, Usage: "how much later the rebuild starts (at least 1s), so wall-clock leaks show"},
			&cli.StringFlag{Name: "rebuild-snapshotter", Value: rebuild.RebuildSnapshotter, Usage: "snapshotter of the rebuild daemon: native (the build uses overlayfs, so file system layout differences show) or overlayfs (faster, one variation fewer)"},
			strictVariationsFlag(),
			&cli.StringFlag{Name: "cache-scope", Usage: "tenant whose caches the build and the rebuild use, each its own (default: the lock's source repository)", EnvVars: []string{"TWINFORGE_CACHE_SCOPE"}},
			&cli.BoolFlag{Name: "cold", Usage: "build and rebuild from nothing, reusing no cache (release builds); the provenance records each side cold or warm", EnvVars: []string{"TWINFORGE_COLD"}},
			runcShimFlag(),
		}, append(append(daemonFlags(), workerFlags()...), signFlags()...)...),
		Action: runBuild,
	}
}

func runBuild(c *cli.Context) error {
	ctxDir, err := contextArg(c)
	if err != nil {
		return err
	}
	req := pipeline.Request{
		ContextDir: ctxDir, LockPath: c.String("lock"), OCILayout: c.String("oci-layout"), Tag: c.String("tag"),
		NoRebuild: c.Bool("no-rebuild"), StrictVariations: strictVariationsFrom(c), RebuildOffset: c.Duration("rebuild-offset"),
		CacheScope: c.String("cache-scope"), Cold: c.Bool("cold"),
	}
	if req.Daemons, err = daemonsFrom(c, c.String("rebuild-snapshotter")); err != nil {
		return err
	}
	sign, err := signOptionsFrom(c)
	if err != nil {
		return err
	}
	if req.Vouch, err = vouchFrom(c, req.Daemons.Workers, sign); err != nil {
		return err
	}
	req.BuilderID, req.SBOMFormats = sign.builderID, sign.sbomFormats
	progress, output, err := progressAndOutput(c)
	if err != nil {
		return err
	}
	if err := usageError(req.CheckSettings()); err != nil {
		return err
	}
	if err := req.SetDefaults(); err != nil {
		return err
	}
	if req.Signer, err = sign.NewSigner(c.Context); err != nil {
		return err
	}
	if sign.push != nil {
		if req.Pusher, err = distribute.NewPusher(sign.push, sign.registry...); err != nil {
			return err
		}
	}
	if w := req.Daemons.Workers; w != nil {
		w.Purpose = "build of " + or(req.Tag, req.ContextDir)
		if progress != "quiet" && progress != "rawjson" {
			w.OnQueue = func(side string, s kube.QueueStatus) { fmt.Fprintf(c.App.ErrWriter, "%s: %s\n", side, s) }
		}
	}
	res, err := withProgress(c, progress, func(ch chan<- *client.SolveStatus) (*pipeline.Result, error) {
		req.Progress = ch
		return pipeline.Run(c.Context, req)
	})
	return pipeline.Show(c.App.Writer, c.App.ErrWriter, output, progress == "quiet", sign.method, res, err)
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
