package builder

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/containerd/containerd/v2/core/content"
	"github.com/containerd/containerd/v2/plugins/content/local"
	"github.com/containerd/platforms"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/moby/buildkit/client"
	"github.com/moby/buildkit/exporter/containerimage/exptypes"
	spb "github.com/moby/buildkit/sourcepolicy/pb"
	"github.com/tonistiigi/fsutil"
	fstypes "github.com/tonistiigi/fsutil/types"

	"github.com/twinforge/twinforge/hermetic"
	"github.com/twinforge/twinforge/isolation"
)

// Builder builds an image from a Request.
type Builder interface {
	Build(ctx context.Context, req Request) (*Result, error)
}

// Request is one build. It mirrors BuildKit's SolveOpt, reduced to what a
// hermetic build may vary.
type Request struct {
	// ContextDir is the build context directory.
	ContextDir string
	// Dockerfile is the Dockerfile's path relative to ContextDir. The
	// default value is "Dockerfile".
	Dockerfile string
	// BuildArgs are the Dockerfile's build arguments.
	BuildArgs map[string]string
	// Target is the stage to build; empty builds the last one.
	Target string
	// Platform is the platform to build for, "linux/amd64"; empty is the
	// daemon's default.
	Platform string
	// SourceDateEpoch is written to the config's timestamps and to every
	// layer file's mtime, and passed as the SOURCE_DATE_EPOCH build arg.
	SourceDateEpoch int64
	// BaseImages are the only images the build may use, each from a local
	// OCI layout and pinned by digest.
	BaseImages []BaseImage
	// SourcePolicy decides which sources the build may use. Nil allows the
	// build context and BaseImages, and denies everything else.
	SourcePolicy *spb.Policy
	// Hostname is the hostname RUN steps see. Empty is BuildKit's default.
	Hostname string
	// Ulimit sets RUN steps' resource limits, "nofile=1024:1024". Empty is
	// the daemon's default.
	Ulimit string
	// ImageName is recorded as the layout's reference name.
	ImageName string
	// OCILayout is the directory the image layout is written to. Empty
	// writes to a new temporary directory, returned in Result.OCILayout.
	OCILayout string
	// Progress receives BuildKit's status updates; Build closes it.
	Progress chan<- *client.SolveStatus
	// NoCache runs every step, reusing nothing the daemon has: a cold
	// build even on a daemon that keeps a cache, or a remote one.
	NoCache bool
}

// BaseImage is an image a Dockerfile names, served from an OCI layout.
type BaseImage struct {
	// Name is the reference as the Dockerfile writes it after ARG
	// expansion, "example.test/base:1".
	Name string
	// Digest is the manifest (or index) digest in the layout.
	Digest string
	// Layout is the OCI layout directory holding it.
	Layout string
}

// Result describes a built image.
type Result struct {
	// Digest is the image manifest's digest: the image's identity.
	Digest string `json:"digest"`
	// MediaType is the manifest's media type.
	MediaType string `json:"mediaType"`
	// Platform is the image's platform.
	Platform string `json:"platform"`
	// OCILayout is the layout directory holding the image.
	OCILayout string `json:"ociLayout"`
	// Duration is how long the build took.
	Duration time.Duration `json:"-"`
	// Builder is the daemon that built it, its Cache as this build used
	// it (cold with NoCache).
	Builder isolation.Info `json:"builder"`
	// Steps is how many steps the build had; CachedSteps how many of
	// them BuildKit reused from the daemon's cache instead of running.
	Steps       int `json:"steps"`
	CachedSteps int `json:"cachedSteps"`
}

type daemonBuilder struct {
	daemon isolation.Daemon
}

var _ Builder = (*daemonBuilder)(nil)

// New returns a Builder that sends builds to daemon.
func New(daemon isolation.Daemon) Builder {
	return &daemonBuilder{daemon: daemon}
}

// ErrInvalidRequest is returned for a request that cannot be built as given.
var ErrInvalidRequest = errors.New("invalid build request")

// ErrBuildFailed is returned when BuildKit fails the build.
var ErrBuildFailed = errors.New("build failed")

func (b *daemonBuilder) Build(ctx context.Context, req Request) (res *Result, retErr error) {
	progress := req.Progress
	defer func() {
		// Solve closes the channel it is given; if Build returns before
		// Solve ran, close it here so the display does not wait forever.
		if progress != nil {
			close(progress)
		}
	}()
	if err := req.normalize(); err != nil {
		return nil, err
	}
	start := time.Now()

	dest, err := newDestination(req.OCILayout)
	if err != nil {
		return nil, err
	}
	defer func() {
		if retErr != nil {
			dest.abort()
		}
	}()

	attrs, err := frontendAttrs(req, b.daemon.Info().Cache)
	if err != nil {
		return nil, err
	}
	stores := map[string]content.Store{}
	for i, base := range req.BaseImages {
		id := "base" + strconv.Itoa(i)
		store, err := local.NewStore(base.Layout)
		if err != nil {
			return nil, fmt.Errorf("opening OCI layout %s for %s: %w", base.Layout, base.Name, err)
		}
		stores[id] = store
		attrs["context:"+base.Name] = "oci-layout://" + id + "@" + base.Digest
	}
	if err := checkFrontendAttrs(attrs, req.BaseImages); err != nil {
		return nil, err
	}
	policy := req.SourcePolicy
	if policy == nil {
		policy = DefaultPolicy(req.BaseImages)
	}

	contextFS, err := contextFS(req.ContextDir, req.Dockerfile, req.SourceDateEpoch)
	if err != nil {
		return nil, err
	}
	dockerfileFS, err := dockerfileFS(req.ContextDir, req.Dockerfile)
	if err != nil {
		return nil, err
	}

	exportAttrs := map[string]string{
		"tar":                                   "false",
		string(exptypes.OptKeyOCITypes):         "true",
		string(exptypes.OptKeyRewriteTimestamp): "true",
		string(exptypes.OptKeyLayerCompression): "gzip",
		string(exptypes.OptKeyForceCompression): "true",
		string(exptypes.OptKeyCompressionLevel): "6",
		"source-date-epoch":                     strconv.FormatInt(req.SourceDateEpoch, 10),
	}
	if req.ImageName != "" {
		exportAttrs[string(exptypes.OptKeyName)] = req.ImageName
	}

	c, err := b.daemon.Client(ctx)
	if err != nil {
		return nil, err
	}
	defer c.Close()

	statusCh := make(chan *client.SolveStatus)
	logs := newVertexLogs()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for s := range statusCh {
			logs.add(s)
			if progress != nil {
				progress <- s
			}
		}
	}()
	sharedKey, err := newSharedKey()
	if err != nil {
		return nil, err
	}
	resp, solveErr := c.Solve(ctx, nil, client.SolveOpt{
		// A key of its own per build: BuildKit resends a context file
		// only when its size or time changed since the last transfer under
		// the same key, and every file time is SOURCE_DATE_EPOCH here, so
		// on a daemon that kept its state (a warm cache, a remote worker)
		// an edit that keeps a file's size would otherwise be missed.
		SharedKey:     sharedKey,
		Frontend:      builtinFrontend,
		FrontendAttrs: attrs,
		LocalMounts: map[string]fsutil.FS{
			"context":    contextFS,
			"dockerfile": dockerfileFS,
		},
		OCIStores:    stores,
		SourcePolicy: policy,
		Exports: []client.ExportEntry{{
			Type:      client.ExporterOCI,
			Attrs:     exportAttrs,
			OutputDir: dest.tmp,
		}},
	}, statusCh)
	wg.Wait()
	if progress != nil {
		close(progress)
		progress = nil
	}
	if solveErr != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("build interrupted: %w", ctx.Err())
		}
		// A daemon that died mid-build explains the failure better than
		// the broken connection does.
		if derr := b.daemon.Check(context.WithoutCancel(ctx)); derr != nil {
			return nil, fmt.Errorf("%w: %w", ErrBuildFailed, derr)
		}
		// What a failed step wrote is garbage BuildKit keeps until it
		// next collects; in a kept cache that would fill the disk for the
		// next build, so collect it now.
		collectGarbage(context.WithoutCancel(ctx), c, b.daemon.Info())
		msg := cleanSolveError(solveErr) + logs.failureTail()
		return nil, fmt.Errorf("%w: %s%s", ErrBuildFailed, msg, diskFullHint(msg, b.daemon.Info()))
	}

	digest := resp.ExporterResponse[exptypes.ExporterImageDigestKey]
	if digest == "" {
		return nil, errors.New("build finished but BuildKit reported no image digest")
	}
	mediaType, platform, err := inspectLayout(dest.tmp, digest)
	if err != nil {
		return nil, err
	}
	if err := dest.commit(); err != nil {
		return nil, err
	}
	info := b.daemon.Info()
	if req.NoCache || (info.Cache == nil && !info.Remote) {
		// Every result says how its build used a cache: cold when the
		// daemon kept none or every step was run.
		cold := isolation.CacheInfo{State: isolation.CacheCold}
		if info.Cache != nil {
			cold = *info.Cache
			cold.State = isolation.CacheCold
		}
		info.Cache = &cold
	}
	steps, cached := logs.steps()
	return &Result{
		Digest:      digest,
		MediaType:   mediaType,
		Platform:    platform,
		OCILayout:   dest.final,
		Duration:    time.Since(start),
		Builder:     info,
		Steps:       steps,
		CachedSteps: cached,
	}, nil
}

// normalize fills defaults and checks what can be checked without a daemon.
func (r *Request) normalize() error {
	if r.ContextDir == "" {
		return fmt.Errorf("%w: no build context given", ErrInvalidRequest)
	}
	fi, err := os.Stat(r.ContextDir)
	if err != nil {
		return fmt.Errorf("%w: build context %s: %w", ErrInvalidRequest, r.ContextDir, err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("%w: build context %s is not a directory", ErrInvalidRequest, r.ContextDir)
	}
	if r.Dockerfile == "" {
		r.Dockerfile = "Dockerfile"
	}
	if _, err := os.Stat(filepath.Join(r.ContextDir, r.Dockerfile)); err != nil {
		return fmt.Errorf("%w: no Dockerfile at %s", ErrInvalidRequest, filepath.Join(r.ContextDir, r.Dockerfile))
	}
	if r.Platform != "" {
		p, err := platforms.Parse(r.Platform)
		if err != nil {
			return fmt.Errorf("%w: platform %q: %w", ErrInvalidRequest, r.Platform, err)
		}
		r.Platform = platforms.Format(p)
	}
	if r.SourceDateEpoch < 0 {
		return fmt.Errorf("%w: SOURCE_DATE_EPOCH %d is negative", ErrInvalidRequest, r.SourceDateEpoch)
	}
	for _, b := range r.BaseImages {
		if !strings.HasPrefix(b.Digest, "sha256:") {
			return fmt.Errorf("%w: base image %s is not pinned by a sha256 digest", ErrInvalidRequest, b.Name)
		}
	}
	// A request made without a lock is held to what a lock may say.
	if err := hermetic.CheckBuildArgs(r.BuildArgs); err != nil {
		return fmt.Errorf("%w: %w", ErrRefused, err)
	}
	return nil
}

// inspectLayout reads back the written layout: it must hold the manifest
// BuildKit reported, and that manifest must be readable.
func inspectLayout(dir, digest string) (mediaType, platform string, err error) {
	p, err := layout.FromPath(dir)
	if err != nil {
		return "", "", fmt.Errorf("reading the built layout: %w", err)
	}
	h, err := v1.NewHash(digest)
	if err != nil {
		return "", "", fmt.Errorf("image digest %q: %w", digest, err)
	}
	img, err := p.Image(h)
	if err != nil {
		return "", "", fmt.Errorf("reading image %s from the built layout: %w", digest, err)
	}
	mt, err := img.MediaType()
	if err != nil {
		return "", "", fmt.Errorf("reading manifest %s: %w", digest, err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return "", "", fmt.Errorf("reading config of %s: %w", digest, err)
	}
	plat := cf.OS + "/" + cf.Architecture
	if cf.Variant != "" {
		plat += "/" + cf.Variant
	}
	return string(mt), plat, nil
}

// cleanSolveError strips gRPC's wrapping from BuildKit's error text and
// explains a source policy denial, the form a hermeticity refusal takes.
func cleanSolveError(err error) string {
	msg := strings.TrimPrefix(err.Error(), "failed to solve: ")
	if strings.Contains(msg, "denied by policy") {
		msg += "\n(twinforge lets a build use only the images, URLs and git sources its lock pins: add it with `twinforge lock`)"
	}
	return msg
}

// collectGarbage has a daemon that keeps a cache drop what no cache
// record holds, the leftovers of a failed step: a prune that matches no
// record still runs BuildKit's garbage collection.
func collectGarbage(ctx context.Context, c *client.Client, info isolation.Info) {
	if info.Cache == nil || info.Cache.Dir == "" {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	_ = c.Prune(ctx, nil, client.WithFilter([]string{"id==twinforge-collect-garbage-only"}))
}

// diskFullHint explains a build that failed because the disk under the
// daemon filled up: the error or the step's output says so (ENOSPC), or
// the file system holding the daemon's state is all but full.
func diskFullHint(msg string, info isolation.Info) string {
	dir := info.StateDir
	if info.Cache != nil && info.Cache.Dir != "" {
		dir = info.Cache.Dir
	}
	full := strings.Contains(strings.ToLower(msg), "no space left on device")
	if !full && dir != "" {
		var st syscall.Statfs_t
		if syscall.Statfs(dir, &st) == nil && st.Blocks > 0 && st.Bavail*100 < st.Blocks {
			full = true
		}
	}
	if !full {
		return ""
	}
	where := "the daemon's state"
	if dir != "" {
		where = dir
	}
	return "\n(the disk holding " + where + " is full: no space left on device. Free space there or choose another state directory (--state-dir); the daemon's cache is kept and stays usable)"
}

// newSharedKey is a session key that no earlier build used.
func newSharedKey() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("making a session key: %w", err)
	}
	return "twinforge-" + hex.EncodeToString(b[:]), nil
}

// contextFS is the build context as BuildKit may read it: without what
// .dockerignore excludes, and never the lock file or .git, which the lock's
// content digest does not cover, so nothing unlocked can reach the image.
// Every entry's mtime is SOURCE_DATE_EPOCH: a checkout's file times are not
// part of the source, and BuildKit's timestamp rewrite only clamps times
// later than the epoch, so an older file would keep its own.
func contextFS(dir, dockerfile string, epoch int64) (fsutil.FS, error) {
	fs, err := fsutil.NewFS(dir)
	if err != nil {
		return nil, fmt.Errorf("build context %s: %w", dir, err)
	}
	excludes, err := hermetic.ContextExcludes(dir, dockerfile)
	if err != nil {
		return nil, fmt.Errorf("build context %s: %w", dir, err)
	}
	mtime := time.Unix(epoch, 0).UnixNano()
	return fsutil.NewFilterFS(fs, &fsutil.FilterOpt{
		ExcludePatterns: excludes,
		Map: func(_ string, st *fstypes.Stat) fsutil.MapResult {
			st.ModTime = mtime
			return fsutil.MapResultKeep
		},
	})
}
