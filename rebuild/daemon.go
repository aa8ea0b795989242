package rebuild

import (
	"runtime"

	"github.com/twinforge/twinforge/isolation"
)

// Daemon-side variations of the rebuild: what its private buildkitd runs
// with, against the build daemon's defaults (overlayfs, all CPUs, umask
// 0022, UTC).
const (
	RebuildSnapshotter = "native"
	RebuildUmask       = "027"
	RebuildTZ          = "Asia/Tokyo"
)

// DaemonOptions are the isolation options that start a rebuild daemon with
// its variations: another snapshotter (and so another directory order),
// one CPU instead of all, and, through the runtime shim at shim, another
// umask and time zone for every build step. An empty shim leaves umask and
// time zone as BuildKit fixes them.
func DaemonOptions(shim string) []isolation.Option {
	opts := []isolation.Option{
		isolation.WithName("rebuild"),
		isolation.WithSnapshotter(RebuildSnapshotter),
	}
	if runtime.NumCPU() > 1 {
		opts = append(opts, isolation.WithCPUSet("0"))
	}
	if shim != "" {
		opts = append(opts, isolation.WithRuntimeVariation(shim, RebuildUmask, RebuildTZ))
	}
	return opts
}
