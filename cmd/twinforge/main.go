package main

import (
	"context"
	"embed"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/containerd/log"
	"github.com/sirupsen/logrus"
	"github.com/urfave/cli/v2"

	"github.com/twinforge/twinforge/rebuild/vouch"
)

// version is set by the Makefile.
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := newApp(os.Stdout, os.Stderr).RunContext(ctx, os.Args)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "twinforge: error:", err)
	}
	os.Exit(exitCode(err))
}

func newApp(stdout, stderr io.Writer) *cli.App {
	var logLevel, logFormat string
	app := &cli.App{
		Name:                 "twinforge",
		Usage:                "hermetic, reproducible container builds with SLSA provenance",
		Version:              version,
		Description:          helpText("twinforge"),
		Writer:               stdout,
		ErrWriter:            stderr,
		EnableBashCompletion: true,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "log-level", Value: "warn", Usage: "log level: debug, info, warn or error", EnvVars: []string{"TWINFORGE_LOG_LEVEL"}, Destination: &logLevel},
			&cli.StringFlag{Name: "log-format", Value: "text", Usage: "log format on stderr: text or json", Destination: &logFormat},
		},
		Before: func(c *cli.Context) error { return setupLogging(logLevel, logFormat, stderr) },
		Commands: []*cli.Command{
			buildCommand(),
			lockCommand(),
			diffCommand(),
			pushCommand(),
			replicateCommand(),
			verifyCommand(),
			attestCommand(),
			rebuildCommand(),
			admissionCommand(),
			nodeAgentCommand(),
			releaseCommand(),
			workersCommand(),
			rebuilderCommand(),
		},
		OnUsageError: func(_ *cli.Context, err error, _ bool) error { return usageError(err) },
		ExitErrHandler: func(*cli.Context, error) {
			// main prints the error and picks the exit code.
		},
	}
	for _, cmd := range app.Commands {
		setUsageErrors(cmd)
	}
	return app
}

// setUsageErrors makes flag errors of a command and its subcommands exit 2.
func setUsageErrors(cmd *cli.Command) {
	cmd.OnUsageError = func(_ *cli.Context, err error, _ bool) error { return usageError(err) }
	for _, sub := range cmd.Subcommands {
		setUsageErrors(sub)
	}
}

func setupLogging(levelName, format string, stderr io.Writer) error {
	var level slog.Level
	if err := level.UnmarshalText([]byte(levelName)); err != nil {
		return usageError(fmt.Errorf("--log-level %q: use debug, info, warn or error", levelName))
	}
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler
	switch format {
	case "text":
		h = slog.NewTextHandler(stderr, opts)
	case "json":
		h = slog.NewJSONHandler(stderr, opts)
	default:
		return usageError(fmt.Errorf("--log-format %q: use text or json", format))
	}
	slog.SetDefault(slog.New(h))
	// BuildKit's client libraries log through logrus; keep them to errors
	// unless debugging, so progress output stays readable.
	if level > slog.LevelDebug {
		logrus.SetLevel(logrus.ErrorLevel)
		_ = log.SetLevel("error")
	}
	return nil
}

// logger is the default logger that setupLogging configured.
func logger() *slog.Logger { return slog.Default() }

// The long help of each command is a text file, help/PATH.txt for the
// command path joined by "-" (help/admission-serve.txt), so that it reads
// and diffs as the text it is, and the Go files stay about flags.
//
//go:embed help/*.txt
var helpFiles embed.FS

// helpText is the Description in help/name.txt. The file's final newline is
// not part of it: the help template adds its own.
func helpText(name string) string {
	b, err := helpFiles.ReadFile("help/" + name + ".txt")
	if err != nil {
		// Only a mistyped name gets here, and TestHelpGolden catches it.
		panic("twinforge: no help text " + name + ": " + err.Error())
	}
	return strings.TrimSuffix(string(b), "\n")
}

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
