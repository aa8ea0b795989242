package admission

import (
	"context"
	"log/slog"

	"github.com/twinforge/twinforge/distribute"
)

// Run is `twinforge admission serve`: it checks s, makes the webhook and
// serves it as ListenAndServe does until ctx ends, logging to log;
// inCluster gives the pod's own KubeConfig when s names no API server.
// Every error about the settings is a *ConfigError, except monitoring
// exposed without a token, which wraps ErrMonitoringExposed.
func (s ServerSettings) Run(ctx context.Context, log *slog.Logger, inCluster func() (KubeConfig, error)) error {
	var registry []distribute.Option
	if s.Registry.CACertFile != "" {
		registry = append(registry, distribute.WithCACert(s.Registry.CACertFile))
	}
	index, err := s.Release.Config(registry)
	if err != nil {
		return err
	}
	opts, err := s.Options(inCluster)
	if err != nil {
		return asConfigError(err)
	}
	if index != nil {
		opt, err := ReleaseIndexOption(*index, s.Registry.InsecureLoopbackUnsafe, s.ReleaseRefresh)
		if err != nil {
			return asConfigError(err)
		}
		opts = append(opts, opt)
	}
	wh, err := New(s.Source, append(opts, WithLogger(log))...)
	if err != nil {
		return asConfigError(err)
	}
	defer wh.Close()
	return s.ListenAndServe(ctx, wh, log)
}

// asConfigError makes an error that IsConfigError a *ConfigError, so that
// a caller tells the settings' faults from the environment's by type.
func asConfigError(err error) error {
	if IsConfigError(err) {
		return &ConfigError{Err: err}
	}
	return err
}
