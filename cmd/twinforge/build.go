package main

import (
	"fmt"
	"slices"
	"time"

	"github.com/moby/buildkit/client"
	"github.com/urfave/cli/v2"

	"github.com/twinforge/twinforge/isolation/kube"
	"github.com/twinforge/twinforge/rebuild"
	"github.com/twinforge/twinforge/rebuild/pipeline"
)

type buildOptions struct {
	req              pipeline.Request
	daemons          rebuild.DaemonSettings
	vouch            pipeline.VouchSettings
	sign             signOptions
	strict           strictVariations
	progress, output string
}

func buildCommand() *cli.Command {
	o := &buildOptions{}
	return &cli.Command{
		Name:        "build",
		Usage:       "build CONTEXT from its lock and prove it with an independent rebuild",
		ArgsUsage:   "CONTEXT",
		Description: helpText("build"),
		Flags:       o.flags(),
		Action:      o.run,
	}
}

func (o *buildOptions) flags() []cli.Flag {
	r := &o.req
	return slices.Concat([]cli.Flag{
		&cli.StringFlag{Name: "lock", Usage: "lock file (default: CONTEXT/twinforge.lock)", Destination: &r.LockPath},
		&cli.StringFlag{Name: "oci-layout", Usage: "write the image as an OCI layout to `DIR` (default: out/<context name>)", Destination: &r.OCILayout},
		&cli.StringFlag{Name: "tag", Aliases: []string{"t"}, Usage: "reference name recorded in the layout, e.g. registry.example/team/hello:1.0", Destination: &r.Tag},
		progressFlag(&o.progress), outputFlag(&o.output, "result format on stdout: text or json"),
		&cli.BoolFlag{Name: "no-rebuild", Usage: "skip the independent rebuild; the result is recorded as not reproduced", Destination: &r.NoRebuild},
		&cli.DurationFlag{Name: "rebuild-offset", Value: time.Second, Usage: "how much later the rebuild starts (at least 1s), so wall-clock leaks show", Destination: &r.RebuildOffset},
		&cli.StringFlag{Name: "rebuild-snapshotter", Value: rebuild.RebuildSnapshotter, Usage: "snapshotter of the rebuild daemon: native (the build uses overlayfs, so file system layout differences show) or overlayfs (faster, one variation fewer)", Destination: &o.daemons.RebuildSnapshotter},
		o.strict.flag(),
		&cli.StringFlag{Name: "cache-scope", Usage: "tenant whose caches the build and the rebuild use, each its own (default: the lock's source repository)", EnvVars: []string{"TWINFORGE_CACHE_SCOPE"}, Destination: &r.CacheScope},
		&cli.BoolFlag{Name: "cold", Usage: "build and rebuild from nothing, reusing no cache (release builds); the provenance records each side cold or warm", EnvVars: []string{"TWINFORGE_COLD"}, Destination: &r.Cold},
		runcShimFlag(&o.daemons),
	}, daemonFlags(&o.daemons), workerFlags(&o.daemons, &o.vouch), o.sign.flags())
}

func (o *buildOptions) run(c *cli.Context) error {
	req, sign, err := &o.req, &o.sign, error(nil)
	if req.ContextDir, err = contextArg(c); err != nil {
		return err
	}
	req.StrictVariations = o.strict.mode
	if req.Daemons, err = newDaemons(c, o.daemons); err != nil {
		return err
	}
	if err := sign.check(c); err != nil {
		return err
	}
	// The services and trusted root of the rebuilder's own signing are the
	// build's (--fulcio-url, --tsa-url, --rekor-url, --trusted-root):
	// public, unlike the credentials.
	o.vouch.KeyPasswordFile, o.vouch.IDTokenFile = givenString(c, "rebuilder-key-password-file"), givenString(c, "rebuilder-identity-token-file")
	o.vouch.Stderr = c.App.ErrWriter
	if req.Vouch, err = pipeline.NewVouch(o.vouch, req.Daemons.Workers, sign.SignSettings); err != nil {
		return usageError(err)
	}
	if err := checkProgressAndOutput(o.progress, o.output); err != nil {
		return err
	}
	if err := usageError(req.CheckSettings()); err != nil {
		return err
	}
	if err := req.SetDefaults(); err != nil {
		return err
	}
	if err := sign.pub.Apply(c.Context, req); err != nil {
		return err
	}
	if w := req.Daemons.Workers; w != nil {
		w.Purpose = "build of " + or(req.Tag, req.ContextDir)
		if o.progress != "quiet" && o.progress != "rawjson" {
			w.OnQueue = func(side string, s kube.QueueStatus) { fmt.Fprintf(c.App.ErrWriter, "%s: %s\n", side, s) }
		}
	}
	res, err := withProgress(c, o.progress, func(ch chan<- *client.SolveStatus) (*pipeline.Result, error) {
		req.Progress = ch
		return pipeline.Run(c.Context, *req)
	})
	return pipeline.Show(c.App.Writer, c.App.ErrWriter, o.output, o.progress == "quiet", sign.pub.Method, res, err)
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
