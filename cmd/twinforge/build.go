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
		Name:      "build",
		Usage:     "build CONTEXT from its lock and prove it with an independent rebuild",
		ArgsUsage: "CONTEXT",
		Description: `Builds the Dockerfile in CONTEXT exactly as CONTEXT/twinforge.lock pins it
(see 'twinforge lock'): the tree is checked against the lock first, RUN steps
have no network, base images come only from the locked OCI layouts by digest,
and a source policy denies every image, URL and git source the lock does not
name. The build runs in a private buildkitd started for it and stopped after.

At the same time a second private buildkitd, sharing nothing with the first,
rebuilds the same inputs under the variations real builders differ in: a
later start, another hostname, open-files limit, snapshotter, CPU count,
daemon and state path. The two manifest digests must be equal; if not, the
build fails with exit code 3 and a diff of what differs, and both layouts are
kept (DIR and DIR-rebuild). --no-rebuild skips the proof; the result then
says "not reproduced".

BuildKit itself pins the umask (0022) and time zone (UTC) of every RUN step,
so an image that only they would change reproduces on every BuildKit builder
and is not varied by default. --strict-variations varies them too, on a
strict rebuild (layout DIR-strict) that runs instead of the rebuild; only if
it differs does the rebuild run after it, to tell the two classes apart.
What only umask or time zone changed is then reported as a warning naming
the file ("whoami: mode depends on the umask; BuildKit pins 0022, so it
reproduces on BuildKit builders") and the build succeeds;
--strict-variations=fail makes it exit 3 instead. The provenance records
which variations decided and which only warned.

The image is written as an OCI image layout; its manifest digest, printed on
success, is the image's identity.

Examples:
  twinforge build examples/hello
  twinforge build --oci-layout out/hello --output json examples/hello
  twinforge build --no-rebuild examples/hello
  twinforge build --strict-variations examples/hello
  twinforge build --strict-variations=fail examples/goservice
  twinforge build --builder tcp://buildkit.example:1234 --tlscacert ca.pem \
      --tlscert cert.pem --tlskey key.pem examples/hello`,
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
