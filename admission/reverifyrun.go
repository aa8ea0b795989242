package admission

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"time"

	"github.com/twinforge/twinforge/internal/textout"
)

// ErrViolations is wrapped by the error of ReverifyRun.Run when its pass
// found pod images that no longer pass verification.
var ErrViolations = errors.New("pod images no longer pass verification")

// ReverifyRun is re-verification outside the webhook, as `twinforge
// admission reverify` runs it, each field named after its flag: one pass
// (Once), for cron jobs and CI, or a pass every Reverify.Interval and on
// every change of the files, printing each report.
type ReverifyRun struct {
	Source   Source
	Registry RegistryAccess
	Reverify ReverifySettings
	// Once runs one pass. PacingGiven says that reverify-interval or
	// poll-interval was given, which does not go with Once.
	Once, PacingGiven bool
	// PollInterval (poll-interval) is how often continuous passes check
	// the files for changes; Deadline (deadline) the time to verify one
	// image.
	PollInterval, Deadline time.Duration
	// Format (output) is text or json: a report's table, or its JSON (one
	// line per report in continuous passes).
	Format string
}

// Run checks the settings and runs the passes, writing the reports to w
// and logging to log; inCluster gives the pod's own KubeConfig when no API
// server is named. Every error about the settings is a *ConfigError. One
// pass that finds violations returns an error wrapping ErrViolations;
// continuous passes run until ctx ends.
func (s ReverifyRun) Run(ctx context.Context, w io.Writer, log *slog.Logger, inCluster func() (KubeConfig, error)) error {
	if err := CheckSource(s.Source); err != nil {
		return err
	}
	if s.Format != "text" && s.Format != "json" {
		return configErrorf("output", "--output %q: use one of text, json", s.Format)
	}
	switch {
	case s.Once && s.PacingGiven:
		return configErrorf("reverify-interval", "--once runs one pass: --reverify-interval and --poll-interval do not apply")
	case s.Once:
		s.Reverify.Interval, s.PollInterval = 0, 0
	case s.Reverify.Interval <= 0:
		return configErrorf("reverify-interval", "--reverify-interval %s: want more than 0 (or --once)", s.Reverify.Interval)
	}
	reg, err := s.Registry.Options()
	if err != nil {
		return err
	}
	rv, err := s.Reverify.Options(true, inCluster)
	if err != nil {
		return err
	}
	opts := append([]Option{WithDeadline(s.Deadline), WithPollInterval(s.PollInterval)}, append(reg, rv...)...)
	opts = append(opts, WithLogger(log))
	var reports chan *ReverifyReport
	if !s.Once {
		reports = make(chan *ReverifyReport)
		opts = append(opts, WithReverifyReports(reports))
	}
	wh, err := New(s.Source, opts...)
	if err != nil {
		return asConfigError(err)
	}
	defer wh.Close()
	if !s.Once {
		return WriteReports(ctx, w, s.Format == "json", reports)
	}
	rep, err := wh.Reverify(ctx)
	if err != nil {
		return err
	}
	if s.Format == "json" {
		err = textout.JSON(w, rep)
	} else {
		err = rep.WriteText(w, false)
	}
	if err != nil {
		return err
	}
	if err := rep.ViolationError(); err != nil {
		return violations{err}
	}
	return nil
}

// violations is ReverifyReport.ViolationError's error, matching
// ErrViolations.
type violations struct{ error }

func (violations) Is(target error) bool { return target == ErrViolations }

func (v violations) Unwrap() error { return v.error }
