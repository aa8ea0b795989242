package main

import (
	"context"
	"io"

	"github.com/moby/buildkit/client"
	"github.com/moby/buildkit/util/progress/progressui"
)

var progressModes = []string{"auto", "plain", "tty", "rawjson", "quiet"}

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
