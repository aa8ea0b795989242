package rebuild

import (
	"path/filepath"

	"github.com/twinforge/twinforge/hermetic"
	"github.com/twinforge/twinforge/isolation"
)

// CacheScope is the tenant whose caches a build uses: scope when given,
// else the repository of the lock's source, else the build context's
// absolute path, so that two teams' builds never reuse each other's steps
// unless they say they are one tenant.
func CacheScope(l *hermetic.Lock, contextDir, scope string) string {
	if scope != "" {
		return scope
	}
	if l != nil && l.Source.Repository != "" {
		return l.Source.Repository
	}
	if abs, err := filepath.Abs(contextDir); err == nil {
		return "file://" + abs
	}
	return "file://" + contextDir
}

// CacheOptions are the isolation options a private daemon of a verified
// build gets for its cache: with cold, none (it starts from nothing and
// keeps nothing); otherwise a cache of its own for scope and its name
// (isolation.WithCache), so the build's daemon and the rebuild's never
// share one, nor do two scopes.
func CacheOptions(scope string, cold bool) []isolation.Option {
	if cold || scope == "" {
		return nil
	}
	return []isolation.Option{isolation.WithCache(scope)}
}
