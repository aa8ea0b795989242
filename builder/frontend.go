package builder

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/tonistiigi/fsutil"

	"github.com/twinforge/twinforge/hermetic"
	"github.com/twinforge/twinforge/isolation"
)

// builtinFrontend is the only frontend a build runs: BuildKit's own
// Dockerfile frontend, compiled into buildkitd. Never gateway.v0, which
// runs an image as the frontend.
const builtinFrontend = "dockerfile.v0"

// Frontend options twinforge sends, and nothing else (checkFrontendAttrs).
const (
	// attrPinFrontend stops the built-in frontend from handing the build to
	// a frontend image. BuildKit's Dockerfile frontend forwards to
	// gateway.v0 when a "# syntax=" directive or a BUILDKIT_SYNTAX build
	// arg names an image, unless "cmdline" is set: the mark a forwarded
	// frontend gets so that it does not forward again. Set, neither can
	// pick a frontend, on any daemon, whatever else the options say.
	attrPinFrontend = "cmdline"
	attrBuildArg    = "build-arg:"
	attrContext     = "context:"
	// argCacheNamespace prefixes every RUN --mount=type=cache id: one of
	// its own per build, so cache mounts start empty even on a daemon that
	// built before (a remote one), and no build sees another's.
	argCacheNamespace = "BUILDKIT_CACHE_MOUNT_NS"
	argEpoch          = "SOURCE_DATE_EPOCH"
)

// frontendOptions are the plain frontend options a build may send.
var frontendOptions = map[string]bool{
	"filename": true, "force-network-mode": true, attrPinFrontend: true,
	"target": true, "platform": true, "hostname": true, "ulimit": true,
	attrNoCache: true,
}

// attrNoCache makes BuildKit run every step, reusing nothing it has.
const attrNoCache = "no-cache"

// frontendAttrs are the frontend options of a request: the Dockerfile,
// build args (the request's, then the ones twinforge sets), target,
// platform, hostname and ulimit, with RUN steps' network forced to none
// and the frontend pinned to the built-in one.
func frontendAttrs(req Request, cache *isolation.CacheInfo) (map[string]string, error) {
	ns, err := cacheNamespace(cache)
	if err != nil {
		return nil, err
	}
	attrs := map[string]string{
		"filename":           filepath.Base(req.Dockerfile),
		"force-network-mode": "none",
		attrPinFrontend:      "",
	}
	for k, v := range req.BuildArgs {
		attrs[attrBuildArg+k] = v
	}
	// After the request's, so that none can replace them.
	attrs[attrBuildArg+argEpoch] = strconv.FormatInt(req.SourceDateEpoch, 10)
	attrs[attrBuildArg+argCacheNamespace] = ns
	if req.NoCache {
		attrs[attrNoCache] = ""
	}
	for k, v := range map[string]string{"target": req.Target, "platform": req.Platform, "hostname": req.Hostname, "ulimit": req.Ulimit} {
		if v != "" {
			attrs[k] = v
		}
	}
	return attrs, nil
}

// cacheNamespace is the RUN --mount=type=cache namespace of a build: on a
// daemon that keeps a cache of its own (one per side and scope), the same
// for every build, so that cache mounts are kept with the rest of it; on
// any other daemon one of its own, so that they start empty.
func cacheNamespace(cache *isolation.CacheInfo) (string, error) {
	if cache != nil && cache.Dir != "" {
		sum := sha256.Sum256([]byte(cache.Scope))
		return "twinforge-scope-" + hex.EncodeToString(sum[:12]), nil
	}
	b := make([]byte, 12)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("choosing a cache namespace: %w", err)
	}
	return "twinforge-" + hex.EncodeToString(b), nil
}

// checkFrontendAttrs is the last look at what goes to BuildKit: only the
// frontend options twinforge knows, build args a lock may hold (and the
// ones twinforge sets), a named context for each base image, served from
// its OCI layout, and the built-in frontend pinned. Anything else is
// refused naming the option, so that no change elsewhere can hand BuildKit
// an option that picks a frontend image or reaches past the lock.
func checkFrontendAttrs(attrs map[string]string, bases []BaseImage) error {
	contexts := map[string]bool{}
	for _, b := range bases {
		contexts[attrContext+b.Name] = true
	}
	reserved := map[string]bool{}
	for _, k := range hermetic.ReservedBuildArgs {
		reserved[attrBuildArg+k] = true
	}
	var problems []string
	for _, k := range slices.Sorted(maps.Keys(attrs)) {
		switch {
		case frontendOptions[k], reserved[k]:
		case contexts[k]:
			if !strings.HasPrefix(attrs[k], "oci-layout://") {
				problems = append(problems, fmt.Sprintf("%s=%s: base images come from OCI layouts only", k, attrs[k]))
			}
		case strings.HasPrefix(k, attrBuildArg):
			if err := hermetic.CheckBuildArgs(map[string]string{strings.TrimPrefix(k, attrBuildArg): ""}); err != nil {
				problems = append(problems, err.Error())
			}
		default:
			problems = append(problems, fmt.Sprintf("frontend option %q is not one twinforge sends", k))
		}
	}
	if _, ok := attrs[attrPinFrontend]; !ok {
		problems = append(problems, "the built-in Dockerfile frontend is not pinned")
	}
	if len(problems) > 0 {
		return fmt.Errorf("%w: %s", ErrRefused, strings.Join(problems, "; "))
	}
	return nil
}

// dockerfileFS is what the frontend may read from the Dockerfile's
// directory: the Dockerfile and its own ignore file, nothing else. (The
// directory is usually the context itself, whose files reach BuildKit only
// through contextFS, filtered.)
func dockerfileFS(contextDir, dockerfile string) (fsutil.FS, error) {
	full := filepath.Join(contextDir, dockerfile)
	dir, base := filepath.Dir(full), filepath.Base(full)
	fs, err := fsutil.NewFS(dir)
	if err != nil {
		return nil, fmt.Errorf("Dockerfile directory: %w", err)
	}
	return fsutil.NewFilterFS(fs, &fsutil.FilterOpt{
		IncludePatterns: []string{literalPattern(base), literalPattern(base + ".dockerignore")},
	})
}

// literalPattern is a file name as a pattern that matches it alone.
func literalPattern(name string) string {
	var b strings.Builder
	for _, r := range name {
		if strings.ContainsRune(`*?[]\`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}
