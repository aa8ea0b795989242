package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/twinforge/twinforge/builder"
	"github.com/twinforge/twinforge/distribute"
	"github.com/twinforge/twinforge/hermetic"
	"github.com/twinforge/twinforge/isolation"
	"github.com/twinforge/twinforge/rebuild"
	"github.com/twinforge/twinforge/rebuild/imagediff"
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
			&cli.StringFlag{Name: "runc-shim", Usage: "runtime shim that varies umask and time zone in the strict rebuild", Value: defaultBinary("twinforge-runc-shim"), EnvVars: []string{"TWINFORGE_RUNC_SHIM"}},
		}, append(daemonFlags(), signFlags()...)...),
		Action: runBuild,
	}
}

// buildOptions is what the build command's flags parse to.
type buildOptions struct {
	contextDir string
	lockPath   string
	ociLayout  string
	tag        string
	progress   string
	output     string
	noRebuild  bool
	offset     time.Duration
	shim       string
	snapshot   string
	strict     rebuild.Strictness
	daemon     daemonConfig
	sign       *signOptions
}

func buildOptionsFrom(c *cli.Context) (*buildOptions, error) {
	ctxDir, err := contextArg(c)
	if err != nil {
		return nil, err
	}
	o := &buildOptions{
		contextDir: ctxDir,
		lockPath:   c.String("lock"),
		ociLayout:  c.String("oci-layout"),
		tag:        c.String("tag"),
		progress:   c.String("progress"),
		output:     c.String("output"),
		noRebuild:  c.Bool("no-rebuild"),
		offset:     c.Duration("rebuild-offset"),
		shim:       c.String("runc-shim"),
		snapshot:   c.String("rebuild-snapshotter"),
		strict:     strictVariationsFrom(c),
	}
	if o.daemon, err = daemonConfigFrom(c); err != nil {
		return nil, err
	}
	if o.sign, err = signOptionsFrom(c); err != nil {
		return nil, err
	}
	return o, o.validate()
}

func (o *buildOptions) validate() error {
	if err := oneOf("progress", o.progress, progressModes...); err != nil {
		return usageError(err)
	}
	if err := oneOf("output", o.output, "text", "json"); err != nil {
		return usageError(err)
	}
	if err := oneOf("rebuild-snapshotter", o.snapshot, "native", "overlayfs"); err != nil {
		return usageError(err)
	}
	if o.offset < time.Second {
		return usageErrorf("--rebuild-offset %v: the rebuild must start at least 1s later", o.offset)
	}
	if o.noRebuild && o.strict != rebuild.StrictOff {
		return usageErrorf("--strict-variations needs the rebuild: drop --no-rebuild")
	}
	fi, err := os.Stat(o.contextDir)
	if err != nil {
		return usageErrorf("build context %s: %w", o.contextDir, errors.Unwrap(err))
	}
	if !fi.IsDir() {
		return usageErrorf("build context %s is not a directory: give the directory holding the Dockerfile", o.contextDir)
	}
	if o.lockPath == "" {
		o.lockPath = filepath.Join(o.contextDir, hermetic.DefaultFileName)
	}
	if o.ociLayout == "" {
		abs, err := filepath.Abs(o.contextDir)
		if err != nil {
			return err
		}
		o.ociLayout = filepath.Join("out", filepath.Base(abs))
	}
	return nil
}

func runBuild(c *cli.Context) error {
	o, err := buildOptionsFrom(c)
	if err != nil {
		return err
	}
	started := time.Now()
	l, req, err := lockedRequest(c, o.contextDir, o.lockPath, o.daemon.stateDir)
	if err != nil {
		return err
	}
	req.OCILayout = o.ociLayout
	req.ImageName = o.tag
	var out buildOutput
	if o.noRebuild {
		out, err = buildOnce(c, o, req)
	} else {
		out, err = buildAndRebuild(c, o, req)
	}
	if err != nil {
		return err
	}
	out.Signature, out.Push, err = attestAndPush(c, o.sign, l, o.contextDir, o.tag, out.result, out.verified, started)
	if err != nil {
		return err
	}
	return writeBuildResult(c.App.Writer, o.output, out)
}

func buildOnce(c *cli.Context, o *buildOptions, req builder.Request) (buildOutput, error) {
	d, err := o.daemon.start(c.Context, "build")
	if err != nil {
		return buildOutput{}, err
	}
	defer d.Close()
	res, err := buildWithProgress(c, builder.New(d), req, o.progress)
	if cerr := d.Close(); cerr != nil && err == nil {
		err = fmt.Errorf("stopping the build daemon: %w", cerr)
	}
	if err != nil {
		return buildOutput{}, err
	}
	return newBuildOutput(res, nil, nil), nil
}

// buildAndRebuild runs the build and the varied rebuild concurrently on
// two private daemons started side by side; with strict variations the
// second is the strict rebuild's and the rebuild's daemon starts only if
// it is needed.
func buildAndRebuild(c *cli.Context, o *buildOptions, req builder.Request) (buildOutput, error) {
	ctx := c.Context
	daemons, err := startPair(ctx, o)
	if err != nil {
		return buildOutput{}, err
	}
	defer closeAll(daemons)
	opts := []rebuild.Option{rebuild.WithStartOffset(o.offset)}
	rebuilder := daemons[1]
	if o.strict != rebuild.StrictOff {
		rebuilder = isolation.OnDemand(func(ctx context.Context) (isolation.Daemon, error) {
			return o.rebuildDaemon().start(ctx, "rebuild", append(rebuild.DaemonOptions(), isolation.WithSnapshotter(o.snapshot))...)
		})
		daemons = append(daemons, rebuilder)
		opts = append(opts, rebuild.WithStrictVariations(o.strict, builder.New(daemons[1])))
	}

	ch, wait, err := progressDisplay(ctx, c.App.ErrWriter, o.progress)
	if err != nil {
		return buildOutput{}, err
	}
	res, err := rebuild.Verify(ctx, builder.New(daemons[0]), builder.New(rebuilder), req, append(opts, rebuild.WithProgress(ch))...)
	if werr := wait(); werr != nil && err == nil {
		err = werr
	}
	if cerr := closeAll(daemons); cerr != nil && err == nil {
		err = fmt.Errorf("stopping the daemons: %w", cerr)
	}
	if res != nil {
		writeWarnings(c.App.ErrWriter, res.Warnings)
	}
	var diff *rebuild.DiffError
	if errors.As(err, &diff) {
		if werr := writeBuildResult(c.App.Writer, o.output, newBuildOutput(res.Build, res, diff)); werr != nil {
			return buildOutput{}, werr
		}
		against, why := "rebuild", "not reproducible"
		if diff.Class == rebuild.Pinned {
			against, why = "strict rebuild", "not reproducible under the pinned variations (--strict-variations=fail)"
		}
		if o.output == "text" && diff.Report != nil {
			fmt.Fprintf(c.App.ErrWriter, "\nwhat differs between the build and the %s:\n", against)
			_ = diff.Report.WriteText(c.App.ErrWriter)
		}
		return buildOutput{}, &codedError{code: exitNotReproducible, err: fmt.Errorf("%s: %w; nothing was signed or pushed; both layouts are kept: %s and %s", why, err, diff.Build.OCILayout, diff.Rebuild.OCILayout)}
	}
	if errors.As(err, new(*rebuild.StrictFailure)) {
		out := newBuildOutput(res.Build, res, nil)
		out.Reproducible, out.Reproduction = false, "not reproducible"
		if werr := writeBuildResult(c.App.Writer, o.output, out); werr != nil {
			return buildOutput{}, werr
		}
		return buildOutput{}, &codedError{code: exitNotReproducible, err: fmt.Errorf("not reproducible under the pinned variations (--strict-variations=fail): %w; nothing was signed or pushed", err)}
	}
	if err != nil {
		return buildOutput{}, err
	}
	return newBuildOutput(res.Build, res, nil), nil
}

// writeWarnings prints what only the pinned variations changed.
func writeWarnings(w io.Writer, warnings []rebuild.Warning) {
	for _, warn := range warnings {
		fmt.Fprintf(w, "warning: %s\n", warn)
	}
}

// rebuildDaemon is the daemon configuration of the rebuilds: always a
// private daemon of their own, even when the build goes to a remote one,
// so that they share nothing.
func (o *buildOptions) rebuildDaemon() daemonConfig {
	local := o.daemon
	local.remote = ""
	return local
}

// startPair starts the build daemon and the varied rebuild daemon (the
// strict one with strict variations) at once; if either fails, the other
// is stopped and the error names the one that failed.
func startPair(ctx context.Context, o *buildOptions) ([]isolation.Daemon, error) {
	daemons := make([]isolation.Daemon, 2)
	errs := make([]error, 2)
	name, opts := "rebuild", rebuild.DaemonOptions()
	if o.strict != rebuild.StrictOff {
		name, opts = "strict rebuild", rebuild.StrictDaemonOptions(o.shim)
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		daemons[0], errs[0] = o.daemon.start(ctx, "build")
	}()
	go func() {
		defer wg.Done()
		daemons[1], errs[1] = o.rebuildDaemon().start(ctx, "rebuild", append(opts, isolation.WithSnapshotter(o.snapshot))...)
	}()
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		closeAll(daemons)
		for i, e := range errs {
			if e != nil {
				return nil, fmt.Errorf("starting the %s daemon: %w", []string{"build", name}[i], e)
			}
		}
	}
	return daemons, nil
}

// closeAll stops daemons concurrently; Close is idempotent.
func closeAll(daemons []isolation.Daemon) error {
	errs := make([]error, len(daemons))
	var wg sync.WaitGroup
	for i, d := range daemons {
		if d == nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = d.Close()
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// lockedRequest loads and checks the lock and turns it into a build
// request; every refusal happens here, before a daemon starts.
func lockedRequest(c *cli.Context, contextDir, lockPath, stateDir string) (*hermetic.Lock, builder.Request, error) {
	l, err := hermetic.Load(lockPath)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, builder.Request{}, refused(fmt.Errorf("no lock at %s: run `twinforge lock %s` first (or give --lock FILE)", lockPath, contextDir))
		}
		return nil, builder.Request{}, refused(fmt.Errorf("lock %s: %w", lockPath, err))
	}
	req, err := builder.FromLock(c.Context, builder.LockedInput{
		Lock:       l,
		LockPath:   lockPath,
		ContextDir: contextDir,
		ImageCache: filepath.Join(stateDir, "images"),
	})
	if err != nil {
		if errors.Is(err, builder.ErrRefused) {
			return nil, builder.Request{}, refused(err)
		}
		return nil, builder.Request{}, err
	}
	return l, req, nil
}

// buildWithProgress runs one build with a progress display on stderr.
func buildWithProgress(c *cli.Context, b builder.Builder, req builder.Request, mode string) (*builder.Result, error) {
	ch, wait, err := progressDisplay(c.Context, c.App.ErrWriter, mode)
	if err != nil {
		return nil, err
	}
	req.Progress = ch
	res, err := b.Build(c.Context, req)
	if werr := wait(); werr != nil && err == nil {
		err = werr
	}
	return res, err
}

// buildOutput is the result of a build as --output json prints it.
type buildOutput struct {
	Digest          string         `json:"digest"`
	MediaType       string         `json:"mediaType"`
	Platform        string         `json:"platform"`
	OCILayout       string         `json:"ociLayout"`
	DurationSeconds float64        `json:"durationSeconds"`
	Builder         isolation.Info `json:"builder"`
	Rebuild         *rebuildOutput `json:"rebuild"`
	Reproducible    bool           `json:"reproducible"`
	// Reproduction says how the digest was proven: "reproduced",
	// "not reproducible" or "not reproduced" (--no-rebuild).
	Reproduction string                 `json:"reproduction"`
	Signature    *signature             `json:"signature,omitempty"`
	Push         *distribute.PushResult `json:"push,omitempty"`

	result   *builder.Result
	verified *rebuild.Result
}

type rebuildOutput struct {
	Digest          string              `json:"digest"`
	OCILayout       string              `json:"ociLayout"`
	DurationSeconds float64             `json:"durationSeconds"`
	Builder         isolation.Info      `json:"builder"`
	Variations      []rebuild.Variation `json:"variations"`
	Diff            *imagediff.Report   `json:"diff,omitempty"`
	// StrictVariations is off, warn or fail; Strict the strict rebuild,
	// Warnings what only the pinned variations changed.
	StrictVariations rebuild.Strictness `json:"strictVariations"`
	Strict           *strictOutput      `json:"strict,omitempty"`
	Warnings         []rebuild.Warning  `json:"warnings,omitempty"`
}

type strictOutput struct {
	Digest    string            `json:"digest"`
	OCILayout string            `json:"ociLayout"`
	Builder   isolation.Info    `json:"builder"`
	Diff      *imagediff.Report `json:"diff,omitempty"`
}

func newBuildOutput(res *builder.Result, verified *rebuild.Result, diff *rebuild.DiffError) buildOutput {
	out := buildOutput{
		Digest:          res.Digest,
		MediaType:       res.MediaType,
		Platform:        res.Platform,
		OCILayout:       res.OCILayout,
		DurationSeconds: res.Duration.Seconds(),
		Builder:         res.Builder,
		Reproduction:    "not reproduced",
		result:          res,
		verified:        verified,
	}
	if verified != nil {
		out.Rebuild = &rebuildOutput{
			Digest:           verified.Rebuild.Digest,
			OCILayout:        verified.Rebuild.OCILayout,
			DurationSeconds:  verified.Rebuild.Duration.Seconds(),
			Builder:          verified.Rebuild.Builder,
			Variations:       verified.Variations,
			StrictVariations: verified.Strictness,
			Warnings:         verified.Warnings,
		}
		if s := verified.Strict; s != nil {
			out.Rebuild.Strict = &strictOutput{Digest: s.Digest, OCILayout: s.OCILayout, Builder: s.Builder, Diff: verified.StrictReport}
		}
		out.Reproducible = diff == nil && verified.Build.Digest == verified.Rebuild.Digest
		out.Reproduction = "reproduced"
		if !out.Reproducible {
			out.Reproduction = "not reproducible"
		}
		if diff != nil {
			out.Rebuild.Diff = diff.Report
		}
	}
	return out
}

func writeBuildResult(w io.Writer, format string, out buildOutput) error {
	if format == "json" {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "digest\t%s\n", out.Digest)
	if out.Rebuild != nil {
		fmt.Fprintf(tw, "rebuild digest\t%s\n", out.Rebuild.Digest)
	}
	fmt.Fprintf(tw, "reproduction\t%s\n", out.Reproduction)
	fmt.Fprintf(tw, "platform\t%s\n", out.Platform)
	fmt.Fprintf(tw, "oci-layout\t%s\n", out.OCILayout)
	if out.Rebuild != nil {
		for i, v := range out.Rebuild.Variations {
			label := ""
			if i == 0 {
				label = "variations"
			}
			fmt.Fprintf(tw, "%s\t%s (%s)\n", label, v, v.Class)
		}
		fmt.Fprintf(tw, "strict variations\t%s\n", out.Rebuild.StrictVariations)
		if s := out.Rebuild.Strict; s != nil && s.Digest != out.Rebuild.Digest {
			fmt.Fprintf(tw, "strict rebuild\t%s (%d warnings)\n", s.Digest, len(out.Rebuild.Warnings))
		}
	}
	if out.Signature != nil {
		fmt.Fprintf(tw, "signature\t%s\n", out.Signature)
		for _, b := range append(append([]string{}, out.Signature.Bundles...), out.Signature.SBOMs...) {
			fmt.Fprintf(tw, "\t%s\n", b)
		}
	}
	if out.Push != nil {
		fmt.Fprintf(tw, "pushed\t%s@%s (%d referrers, %s)\n", out.Push.Repository, out.Push.Digest, len(out.Push.Referrers), out.Push.ReferrersMode)
		if out.Push.Tag != "" {
			fmt.Fprintf(tw, "tag\t%s\n", out.Push.Tag)
		}
	}
	fmt.Fprintf(tw, "duration\t%.1fs\n", out.DurationSeconds)
	return tw.Flush()
}
