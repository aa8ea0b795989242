package distribute

import (
	"errors"
	"os"

	"github.com/twinforge/twinforge/internal/errclass"
)

// ErrInvalidSetting is wrapped by the errors of settings that cannot be
// used as given (RegistrySettings.Options): the caller's input, named by
// its flag, not a registry's failure.
var ErrInvalidSetting = errors.New("invalid setting")

// RegistrySettings say how registries are reached, as the flags --insecure
// and --ca-cert of twinforge's registry commands set them.
type RegistrySettings struct {
	// InsecureLoopbackUnsafe (insecure) allows plain HTTP to loopback
	// registries: WithInsecureLoopbackUnsafe.
	InsecureLoopbackUnsafe bool
	// CACertFile (ca-cert) is a PEM file of CA certificates trusted besides
	// the system's: WithCACert.
	CACertFile string
}

// Options checks s and returns the options it sets. A CA file that cannot
// be read is an error now, before any registry is asked anything.
func (s RegistrySettings) Options() ([]Option, error) {
	var opts []Option
	if s.InsecureLoopbackUnsafe {
		opts = append(opts, WithInsecureLoopbackUnsafe())
	}
	if s.CACertFile != "" {
		if fi, err := os.Stat(s.CACertFile); err != nil || fi.IsDir() {
			return nil, errclass.Errorf(ErrInvalidSetting, "--ca-cert %s: not a readable PEM file", s.CACertFile)
		}
		opts = append(opts, WithCACert(s.CACertFile))
	}
	return opts, nil
}
