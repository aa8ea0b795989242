package main

import (
	"context"
	"io"

	"github.com/moby/buildkit/client"
	"github.com/moby/buildkit/util/progress/progressui"
	"github.com/urfave/cli/v2"
)

var progressModes = []string{"auto", "plain", "tty", "rawjson", "quiet"}

func progressFlag(p *string) cli.Flag {
	return &cli.StringFlag{Name: "progress", Value: "auto", Usage: "progress display on stderr: auto, plain, tty, rawjson or quiet", Destination: p}
}

// checkProgressAndOutput checks --progress and --output.
func checkProgressAndOutput(progress, output string) error {
	if err := oneOf("progress", progress, progressModes...); err != nil {
		return usageError(err)
	}
	return checkOutput(output)
}

// withProgress runs run, which closes the channel it is given (as
// pipeline.Run and audit.Run do), with BuildKit's display of what is sent
// to it on stderr in mode; the display's error counts only when run's
// does not.
func withProgress[T any](c *cli.Context, mode string, run func(chan<- *client.SolveStatus) (T, error)) (T, error) {
	ch, wait, err := progressDisplay(c.Context, c.App.ErrWriter, mode)
	if err != nil {
		var zero T
		return zero, err
	}
	res, err := run(ch)
	if werr := wait(); werr != nil && err == nil {
		err = werr
	}
	return res, err
}

// progressDisplay renders BuildKit status updates with BuildKit's own
// display, the one docker buildx shows. It returns the channel to feed and
// a wait function that returns when the channel is closed.
func progressDisplay(ctx context.Context, w io.Writer, mode string) (chan *client.SolveStatus, func() error, error) {
	d, err := progressui.NewDisplay(w, progressui.DisplayMode(mode))
	if err != nil {
		return nil, nil, err
	}
	ch := make(chan *client.SolveStatus)
	done := make(chan error, 1)
	go func() {
		// The display must drain the channel to its end even after ctx is
		// cancelled, or the build would block sending to it.
		_, err := d.UpdateFrom(context.WithoutCancel(ctx), ch)
		done <- err
	}()
	return ch, func() error { return <-done }, nil
}
