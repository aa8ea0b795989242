package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/twinforge/twinforge/distribute"
	"github.com/twinforge/twinforge/hermetic"
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
			&cli.StringFlag{Name: "progress", Value: "auto", Usage: "progress display on stderr: auto, plain, tty, rawjson or quiet"},
			&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Value: "text", Usage: "result format on stdout: text or json"},
			&cli.BoolFlag{Name: "no-rebuild", Usage: "skip the independent rebuild; the result is recorded as not reproduced"},
			&cli.DurationFlag{Name: "rebuild-offset", Value: time.Second, Usage: "how much later the rebuild starts (at least 1s), so wall-clock leaks show"},
			&cli.StringFlag{Name: "rebuild-snapshotter", Value: rebuild.RebuildSnapshotter, Usage: "snapshotter of the rebuild daemon: native (the build uses overlayfs, so file system layout differences show) or overlayfs (faster, one variation fewer)"},
			strictVariationsFlag(),
			&cli.StringFlag{Name: "cache-scope", Usage: "tenant whose caches the build and the rebuild use, each its own (default: the lock's source repository)", EnvVars: []string{"TWINFORGE_CACHE_SCOPE"}},
			&cli.BoolFlag{Name: "cold", Usage: "build and rebuild from nothing, reusing no cache (release builds); the provenance records each side cold or warm", EnvVars: []string{"TWINFORGE_COLD"}},
			&cli.StringFlag{Name: "runc-shim", Usage: "runtime shim that varies umask and time zone in the strict rebuild", Value: defaultBinary("twinforge-runc-shim"), EnvVars: []string{"TWINFORGE_RUNC_SHIM"}},
		}, append(append(daemonFlags(), workerFlags()...), signFlags()...)...),
		Action: runBuild,
	}
}

// buildOptions is what the build command's flags parse to.
type buildOptions struct {
	req              pipeline.Request
	progress, output string
	sign             *signOptions
}

func buildOptionsFrom(c *cli.Context) (*buildOptions, error) {
	ctxDir, err := contextArg(c)
	if err != nil {
		return nil, err
	}
	o := &buildOptions{progress: c.String("progress"), output: c.String("output"), req: pipeline.Request{
		ContextDir: ctxDir, LockPath: c.String("lock"), OCILayout: c.String("oci-layout"), Tag: c.String("tag"),
		NoRebuild: c.Bool("no-rebuild"), StrictVariations: strictVariationsFrom(c), RebuildOffset: c.Duration("rebuild-offset"),
		CacheScope: c.String("cache-scope"), Cold: c.Bool("cold"),
	}}
	if o.req.Daemons, err = daemonsFrom(c, c.String("rebuild-snapshotter")); err != nil {
		return nil, err
	}
	if o.sign, err = signOptionsFrom(c); err != nil {
		return nil, err
	}
	if o.req.Vouch, err = vouchFrom(c, o.req.Daemons.Workers, o.sign); err != nil {
		return nil, err
	}
	o.req.BuilderID, o.req.SBOMFormats = o.sign.builderID, o.sign.sbomFormats
	return o, o.validate()
}

func (o *buildOptions) validate() error {
	r := &o.req
	if err := oneOf("progress", o.progress, progressModes...); err != nil {
		return usageError(err)
	}
	if err := oneOf("output", o.output, "text", "json"); err != nil {
		return usageError(err)
	}
	if err := oneOf("rebuild-snapshotter", r.Daemons.RebuildSnapshotter, "native", "overlayfs"); err != nil {
		return usageError(err)
	}
	if r.RebuildOffset < time.Second {
		return usageErrorf("--rebuild-offset %v: the rebuild must start at least 1s later", r.RebuildOffset)
	}
	if r.NoRebuild && r.StrictVariations != rebuild.StrictOff {
		return usageErrorf("--strict-variations needs the rebuild: drop --no-rebuild")
	}
	if w := r.Daemons.Workers; w != nil {
		switch {
		case r.NoRebuild && w.Rebuild != "":
			return usageErrorf("--rebuilder needs the rebuild: drop --no-rebuild")
		case r.StrictVariations != rebuild.StrictOff && !r.NoRebuild:
			return usageErrorf("--strict-variations needs a rebuild daemon twinforge starts with its runtime shim; a remote worker varies neither umask nor time zone: drop --strict-variations, or --rebuilder and --workers")
		}
	}
	fi, err := os.Stat(r.ContextDir)
	if err != nil {
		return usageErrorf("build context %s: %w", r.ContextDir, errors.Unwrap(err))
	}
	if !fi.IsDir() {
		return usageErrorf("build context %s is not a directory: give the directory holding the Dockerfile", r.ContextDir)
	}
	if r.LockPath == "" {
		r.LockPath = filepath.Join(r.ContextDir, hermetic.DefaultFileName)
	}
	if r.OCILayout == "" {
		abs, err := filepath.Abs(r.ContextDir)
		if err != nil {
			return err
		}
		r.OCILayout = filepath.Join("out", filepath.Base(abs))
	}
	return nil
}

func runBuild(c *cli.Context) error {
	o, err := buildOptionsFrom(c)
	if err != nil {
		return err
	}
	if o.req.Signer, err = o.sign.NewSigner(c.Context); err != nil {
		return err
	}
	if o.sign.push != nil {
		if o.req.Pusher, err = distribute.NewPusher(o.sign.push, o.sign.registry.options()...); err != nil {
			return err
		}
	}
	if w := o.req.Daemons.Workers; w != nil {
		w.Purpose = "build of " + or(o.req.Tag, o.req.ContextDir)
		if o.progress != "quiet" && o.progress != "rawjson" {
			w.OnQueue = func(side string, s kube.QueueStatus) { fmt.Fprintf(c.App.ErrWriter, "%s: %s\n", side, s) }
		}
	}
	ch, wait, err := progressDisplay(c.Context, c.App.ErrWriter, o.progress)
	if err != nil {
		return err
	}
	o.req.Progress = ch
	res, err := pipeline.Run(c.Context, o.req)
	if werr := wait(); werr != nil && err == nil {
		err = werr
	}
	if res != nil && res.Proof != nil {
		rebuild.WriteWarnings(c.App.ErrWriter, res.Proof.Warnings)
		if o.progress != "quiet" {
			res.Proof.WriteSides(c.App.ErrWriter)
		}
	}
	var diff *rebuild.DiffError
	if res != nil && (errors.As(err, &diff) || errors.As(err, new(*rebuild.StrictFailure))) {
		if werr := writeOutput(c.App.Writer, o.output, pipeline.NewOutput(res, o.sign.method, err)); werr != nil {
			return werr
		}
	}
	if diff != nil && o.output == "text" && diff.Report != nil {
		against := "rebuild"
		if diff.Class == rebuild.Pinned {
			against = "strict rebuild"
		}
		fmt.Fprintf(c.App.ErrWriter, "\nwhat differs between the build and the %s:\n", against)
		_ = diff.Report.WriteText(c.App.ErrWriter)
	}
	if err != nil {
		return err
	}
	return writeOutput(c.App.Writer, o.output, pipeline.NewOutput(res, o.sign.method, nil))
}
