package admission

import (
	"context"
	"log/slog"
)

// Run is `twinforge admission serve`: it checks s, makes the webhook and
// serves it as ListenAndServe does until ctx ends, logging to log;
// inCluster gives the pod's own KubeConfig when s names no API server.
// Every error about the settings is a *ConfigError, except monitoring
// exposed without a token, which wraps ErrMonitoringExposed.
func (s ServerSettings) Run(ctx context.Context, log *slog.Logger, inCluster func() (KubeConfig, error)) error {
	opts, err := s.Options(inCluster)
	if err != nil {
		return asConfigError(err)
	}
	if s.Release != nil {
		opt, err := ReleaseIndexOption(*s.Release, s.Registry.InsecureLoopbackUnsafe, s.ReleaseRefresh)
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
