package sigstack

import (
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"time"
)

// Option configures Start.
type Option func(*options) error

type options struct {
	binDir       string
	logger       *slog.Logger
	readyTimeout time.Duration
}

// WithBinDir sets the directory holding fulcio, timestamp-server,
// rekor-server and twinforge-oidc. The default is $TWINFORGE_BIN when set,
// otherwise the repository's bin/ (found from this package's source); a
// binary missing there is looked up on PATH.
func WithBinDir(dir string) Option {
	return func(o *options) error {
		if dir == "" {
			return errors.New("bin directory must not be empty")
		}
		o.binDir = dir
		return nil
	}
}

// WithLogger sets where the stack reports what it starts and stops. The
// servers' own output goes to files in the stack's directory, never here.
// The default discards everything.
func WithLogger(l *slog.Logger) Option {
	return func(o *options) error {
		if l == nil {
			return errors.New("logger must not be nil")
		}
		o.logger = l
		return nil
	}
}

// WithReadyTimeout bounds how long Start waits for all servers to answer,
// on top of any deadline of Start's context. The default is 2 minutes.
func WithReadyTimeout(d time.Duration) Option {
	return func(o *options) error {
		if d <= 0 {
			return errors.New("ready timeout must be positive")
		}
		o.readyTimeout = d
		return nil
	}
}

func makeOptions(opts []Option) (*options, error) {
	o := &options{
		binDir:       defaultBinDir(),
		logger:       slog.New(slog.NewTextHandler(io.Discard, nil)),
		readyTimeout: 2 * time.Minute,
	}
	for _, opt := range opts {
		if err := opt(o); err != nil {
			return nil, err
		}
	}
	return o, nil
}

func defaultBinDir() string {
	if dir := os.Getenv("TWINFORGE_BIN"); dir != "" {
		return dir
	}
	if _, file, _, ok := runtime.Caller(0); ok && filepath.IsAbs(file) {
		return filepath.Join(filepath.Dir(file), "..", "..", "bin")
	}
	return "bin"
}
