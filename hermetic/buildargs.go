package hermetic

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

// buildKitArgPrefix starts the build args that BuildKit's Dockerfile
// frontend reads as its own controls rather than as Dockerfile ARGs:
// BUILDKIT_SYNTAX runs an image as the frontend (outside the lock, with the
// whole context), BUILDKIT_CACHE_MOUNT_NS picks which cache mounts a build
// shares, BUILDKIT_MULTI_PLATFORM, BUILDKIT_SANDBOX_HOSTNAME,
// BUILDKIT_CONTEXT_KEEP_GIT_DIR, BUILDKIT_INLINE_CACHE and the SBOM scan
// args change what is built or exported.
const buildKitArgPrefix = "BUILDKIT_"

// ReservedBuildArgs are the build args the builder sets itself on every
// build; a lock (and so a user) never gives them: SOURCE_DATE_EPOCH comes
// from the lock's sourceDateEpoch, BUILDKIT_CACHE_MOUNT_NS gives each build
// cache mounts of its own.
var ReservedBuildArgs = []string{"BUILDKIT_CACHE_MOUNT_NS", "SOURCE_DATE_EPOCH"}

// CheckBuildArgs refuses the build args a hermetic build never takes from
// a lock or a user: every BUILDKIT_* arg (whatever its case: BuildKit
// reads them as frontend controls, and BUILDKIT_SYNTAX would run an
// unlocked frontend image) and the ReservedBuildArgs twinforge sets itself.
// The error wraps ErrNotHermetic and names each arg.
func CheckBuildArgs(args map[string]string) error {
	var problems []string
	for _, k := range slices.Sorted(maps.Keys(args)) {
		switch {
		case k == "SOURCE_DATE_EPOCH":
			problems = append(problems, "build arg SOURCE_DATE_EPOCH: twinforge sets it from the lock's sourceDateEpoch (twinforge lock --source-date-epoch)")
		case strings.HasPrefix(strings.ToUpper(k), buildKitArgPrefix):
			problems = append(problems, fmt.Sprintf("build arg %s: BUILDKIT_* build args control BuildKit's frontend (BUILDKIT_SYNTAX would run an image outside the lock as the frontend); twinforge sets the ones it needs itself (%s) and takes none from a lock", k, strings.Join(ReservedBuildArgs, ", ")))
		}
	}
	if len(problems) == 0 {
		return nil
	}
	return wrapf(ErrNotHermetic, "the build args are not hermetic: %s", strings.Join(problems, "; "))
}
