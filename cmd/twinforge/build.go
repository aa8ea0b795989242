package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"text/tabwriter"

	"github.com/urfave/cli/v2"

	"github.com/twinforge/twinforge/builder"
	"github.com/twinforge/twinforge/hermetic"
	"github.com/twinforge/twinforge/isolation"
)

func buildCommand() *cli.Command {
	return &cli.Command{
		Name:      "build",
		Usage:     "build CONTEXT from its lock in a private BuildKit daemon",
		ArgsUsage: "CONTEXT",
		Description: `Builds the Dockerfile in CONTEXT exactly as CONTEXT/twinforge.lock pins it
(see 'twinforge lock'): the tree is checked against the lock first, RUN steps
have no network, base images come only from the locked OCI layouts by digest,
and a source policy denies every image, URL and git source the lock does not
name. The build runs in a private buildkitd started for it and stopped after.

The image is written as an OCI image layout; its manifest digest, printed on
success, is the image's identity.

Examples:
  twinforge build examples/hello
  twinforge build --oci-layout out/hello --output json examples/hello
  twinforge build --builder tcp://buildkit.example:1234 --tlscacert ca.pem \
      --tlscert cert.pem --tlskey key.pem examples/hello`,
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "lock", Usage: "lock file (default: CONTEXT/twinforge.lock)"},
			&cli.StringFlag{Name: "oci-layout", Usage: "write the image as an OCI layout to `DIR` (default: out/<context name>)"},
			&cli.StringFlag{Name: "tag", Aliases: []string{"t"}, Usage: "reference name recorded in the layout, e.g. registry.example/team/hello:1.0"},
			&cli.StringFlag{Name: "progress", Value: "auto", Usage: "progress display on stderr: auto, plain, tty, rawjson or quiet"},
			&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Value: "text", Usage: "result format on stdout: text or json"},
		}, daemonFlags()...),
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
	daemon     daemonConfig
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
	}
	if o.daemon, err = daemonConfigFrom(c); err != nil {
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
	ctx := c.Context
	req, err := lockedRequest(c, o.contextDir, o.lockPath, o.daemon.stateDir)
	if err != nil {
		return err
	}
	req.OCILayout = o.ociLayout
	req.ImageName = o.tag

	d, err := o.daemon.start(ctx, "build")
	if err != nil {
		return err
	}
	defer d.Close()

	res, err := buildWithProgress(c, builder.New(d), req, o.progress)
	if cerr := d.Close(); cerr != nil && err == nil {
		err = fmt.Errorf("stopping the build daemon: %w", cerr)
	}
	if err != nil {
		return err
	}
	return writeBuildResult(c.App.Writer, o.output, res)
}

// lockedRequest loads and checks the lock and turns it into a build
// request; every refusal happens here, before a daemon starts.
func lockedRequest(c *cli.Context, contextDir, lockPath, stateDir string) (builder.Request, error) {
	l, err := hermetic.Load(lockPath)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return builder.Request{}, refused(fmt.Errorf("no lock at %s: run `twinforge lock %s` first (or give --lock FILE)", lockPath, contextDir))
		}
		return builder.Request{}, refused(fmt.Errorf("lock %s: %w", lockPath, err))
	}
	req, err := builder.FromLock(c.Context, builder.LockedInput{
		Lock:       l,
		LockPath:   lockPath,
		ContextDir: contextDir,
		ImageCache: filepath.Join(stateDir, "images"),
	})
	if err != nil {
		if errors.Is(err, builder.ErrRefused) {
			return builder.Request{}, refused(err)
		}
		return builder.Request{}, err
	}
	return req, nil
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
}

func writeBuildResult(w io.Writer, format string, res *builder.Result) error {
	out := buildOutput{
		Digest:          res.Digest,
		MediaType:       res.MediaType,
		Platform:        res.Platform,
		OCILayout:       res.OCILayout,
		DurationSeconds: res.Duration.Seconds(),
		Builder:         res.Builder,
	}
	if format == "json" {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "digest\t%s\n", out.Digest)
	fmt.Fprintf(tw, "platform\t%s\n", out.Platform)
	fmt.Fprintf(tw, "oci-layout\t%s\n", out.OCILayout)
	fmt.Fprintf(tw, "duration\t%.1fs\n", out.DurationSeconds)
	return tw.Flush()
}
