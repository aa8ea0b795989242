package main

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/twinforge/twinforge/hermetic"
	"github.com/twinforge/twinforge/hermetic/gomod"
)

func lockCommand() *cli.Command {
	return &cli.Command{
		Name:        "lock",
		Usage:       "pin every input of CONTEXT's build in CONTEXT/twinforge.lock",
		ArgsUsage:   "CONTEXT",
		Description: helpText("lock"),
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "lock", Usage: "lock file to write or check (default: CONTEXT/twinforge.lock)"},
			&cli.StringSliceFlag{Name: "image", Usage: "resolve base image NAME from a local OCI layout: `NAME=oci-layout:PATH[:TAG]` (repeatable)"},
			&cli.StringFlag{Name: "file", Aliases: []string{"f"}, Usage: "Dockerfile path relative to CONTEXT (default: Dockerfile)"},
			&cli.StringSliceFlag{Name: "build-arg", Usage: "build argument `KEY=VALUE` (repeatable)"},
			&cli.StringFlag{Name: "target", Usage: "stage to build"},
			&cli.StringFlag{Name: "platform", Usage: "platform to build for (default: linux/<this machine's architecture>)"},
			&cli.StringFlag{Name: "source-date-epoch", Usage: "timestamp for the image and its files, in seconds (default: $SOURCE_DATE_EPOCH, else HEAD's commit time, else 0)"},
			&cli.BoolFlag{Name: "allow-dirty", Usage: "lock a git tree with uncommitted changes (recorded in the lock)"},
			&cli.BoolFlag{Name: "check", Usage: "only check that the lock still matches the tree and the Dockerfile; exit 4 if not"},
			&cli.BoolFlag{Name: "update", Usage: "re-resolve base images instead of keeping their pinned digests"},
			&cli.BoolFlag{Name: "verify-modules", Usage: "prove every Go module go.sum pins against the Go checksum database (through $GOPROXY), and each vendored module against its zip; exit 4 naming the module (and file) that does not match"},
			&cli.StringFlag{Name: "sumdb", Value: gomod.DefaultSumDB, Usage: "checksum database verifier key (name+hash+key) for --verify-modules"},
		},
		Action: runLock,
	}
}

type lockOptions struct {
	contextDir, lockPath, dockerfile string
	images, buildArgs                map[string]string
	target, platform                 string
	epoch                            *int64
	allowDirty, check, update        bool
	verifyModules                    *gomod.Config
	flagsSet                         func(string) bool
}

func lockOptionsFrom(c *cli.Context) (*lockOptions, error) {
	ctxDir, err := contextArg(c)
	if err != nil {
		return nil, err
	}
	o := &lockOptions{
		contextDir: ctxDir,
		lockPath:   c.String("lock"),
		dockerfile: c.String("file"),
		target:     c.String("target"),
		platform:   c.String("platform"),
		allowDirty: c.Bool("allow-dirty"),
		check:      c.Bool("check"),
		update:     c.Bool("update"),
		flagsSet:   c.IsSet,
	}
	if o.images, err = hermetic.ParseImageMappings(c.StringSlice("image")); err != nil {
		return nil, usageError(err)
	}
	if o.buildArgs, err = parseKeyValues("build-arg", c.StringSlice("build-arg")); err != nil {
		return nil, usageError(err)
	}
	epoch := c.String("source-date-epoch")
	if epoch == "" {
		epoch = os.Getenv("SOURCE_DATE_EPOCH")
	}
	if epoch != "" {
		n, err := parseEpoch(epoch)
		if err != nil {
			return nil, usageError(err)
		}
		o.epoch = &n
	}
	if c.Bool("verify-modules") {
		o.verifyModules = &gomod.Config{
			Proxy:   gomod.ProxyFromEnv(os.Getenv),
			SumDB:   c.String("sumdb"),
			NoSumDB: strings.FieldsFunc(os.Getenv("GONOSUMDB")+","+os.Getenv("GOPRIVATE"), func(r rune) bool { return r == ',' }),
		}
	}
	if o.check && (o.update || len(o.images) > 0 || len(o.buildArgs) > 0) {
		return nil, usageErrorf("--check only checks: it takes no --update, --image or --build-arg")
	}
	fi, err := os.Stat(o.contextDir)
	if err != nil {
		return nil, usageErrorf("build context %s: %w", o.contextDir, errors.Unwrap(err))
	}
	if !fi.IsDir() {
		return nil, usageErrorf("build context %s is not a directory", o.contextDir)
	}
	if o.lockPath == "" {
		o.lockPath = filepath.Join(o.contextDir, hermetic.DefaultFileName)
	}
	return o, nil
}

func runLock(c *cli.Context) error {
	o, err := lockOptionsFrom(c)
	if err != nil {
		return err
	}
	if o.check {
		return checkLock(c, o)
	}
	req := hermetic.Request{
		ContextDir:      o.contextDir,
		Dockerfile:      o.dockerfile,
		BuildArgs:       o.buildArgs,
		Target:          o.target,
		Platform:        o.platform,
		Images:          o.images,
		AllowDirty:      o.allowDirty,
		SourceDateEpoch: o.epoch,
		LockDir:         filepath.Dir(o.lockPath),
		BuildKitVersion: buildkitVersion(),
		Resolver:        hermetic.RegistryResolver(),
		Fetcher:         hermetic.HTTPFetcher(&http.Client{Timeout: 5 * time.Minute}),
		VerifyModules:   o.verifyModules,
	}
	if old, err := hermetic.Load(o.lockPath); err == nil {
		given := map[string]string{"dockerfile": "file", "buildArgs": "build-arg", "target": "target", "platform": "platform"}
		req.Inherit(hermetic.Relock{Old: old, LockPath: o.lockPath, Update: o.update, Given: func(s string) bool { return o.flagsSet(given[s]) }})
	} else if !errors.Is(err, os.ErrNotExist) {
		logger().Warn("ignoring the existing lock, it cannot be read", "lock", o.lockPath, "err", err)
	}
	l, err := hermetic.Create(c.Context, req)
	if errors.Is(err, gomod.ErrUnreachable) {
		return err
	}
	if err != nil {
		return refused(err)
	}
	changed, err := l.Write(o.lockPath)
	if err != nil {
		return err
	}
	if !changed {
		fmt.Fprintf(c.App.Writer, "%s is up to date\n", o.lockPath)
		return nil
	}
	fmt.Fprintf(c.App.Writer, "wrote %s (%d images, %d URLs, %d git sources, %d Go modules, SOURCE_DATE_EPOCH=%d)\n",
		o.lockPath, len(l.Images), len(l.URLs), len(l.Git), len(l.GoModules), l.SourceDateEpoch)
	if l.GoSumDB != nil {
		fmt.Fprintf(c.App.Writer, "Go modules proven in %s, tree %d\n", l.GoSumDB.Name, l.GoSumDB.TreeSize)
	}
	return nil
}

// checkLock verifies the tree and the Dockerfile against the lock.
func checkLock(c *cli.Context, o *lockOptions) error {
	l, err := hermetic.Load(o.lockPath)
	if err != nil {
		return refused(err)
	}
	if err := l.CheckTree(c.Context, o.contextDir); err != nil {
		return refused(err)
	}
	fmt.Fprintf(c.App.Writer, "%s matches %s\n", o.lockPath, o.contextDir)
	return nil
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
