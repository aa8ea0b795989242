package rebuild

import (
	"github.com/twinforge/twinforge/isolation"
)

// RebuildSnapshotter is the snapshotter of a rebuild daemon, against the
// build daemon's overlayfs.
const RebuildSnapshotter = "native"

// What BuildKit gives every RUN step, whatever its daemon's environment,
// and what a strict rebuild gives them instead.
const (
	BuildKitUmask = "0022"
	BuildKitTZ    = "UTC"
	StrictUmask   = "027"
	StrictTZ      = "Asia/Tokyo"
)

// DaemonOptions are the isolation options that start a rebuild daemon with
// the deciding variations: another snapshotter on another file system (a
// tmpfs, or an XFS image for a kept cache: directory order and inode
// numbers differ in every directory, and a native snapshot costs a memory
// copy or a reflink, not a disk write waited on) and every CPU but the
// busiest instead of all (on two CPUs: the idlest one).
func DaemonOptions() []isolation.Option {
	opts := []isolation.Option{
		isolation.WithName("rebuild"),
		isolation.WithSnapshotter(RebuildSnapshotter),
		isolation.WithOwnFileSystem(),
	}
	if cpus := rebuildCPUSet(); cpus != "" {
		opts = append(opts, isolation.WithCPUSet(cpus))
	}
	return opts
}

// StrictDaemonOptions are the options of the daemon a strict rebuild runs
// on (WithStrictVariations): the deciding variations of DaemonOptions and,
// through the runtime shim at shim (twinforge-runc-shim), the pinned ones,
// another umask and time zone for every build step.
func StrictDaemonOptions(shim string) []isolation.Option {
	return append(DaemonOptions(),
		isolation.WithName("strict"),
		isolation.WithRuntimeVariation(shim, StrictUmask, StrictTZ))
}
