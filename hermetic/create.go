package hermetic

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/twinforge/twinforge/hermetic/gomod"
)

// Request describes what to lock.
type Request struct {
	ContextDir string
	Dockerfile string // path relative to ContextDir (slash or OS separators); default "Dockerfile"
	BuildArgs  map[string]string
	Target     string
	Platform   string // default linux/GOARCH
	// Images maps an image name as written in the Dockerfile (after ARG
	// expansion) to "oci-layout:PATH[:TAG]" or "oci-layout:PATH@sha256:...".
	// PATH is relative to the working directory or absolute.
	Images          map[string]string
	AllowDirty      bool
	SourceDateEpoch *int64 // default: commit time of HEAD in git, 0 otherwise
	LockDir         string // directory of the lock file; image locations are relative to it; default ContextDir
	BuildKitVersion string
	Resolver        ImageResolver // optional: resolves unmapped image names in a registry
	Fetcher         URLFetcher    // optional: downloads ADD URLs without --checksum
	// VerifyModules, when set, proves every Go module the context pins
	// against the Go checksum database (and vendored modules against
	// their zips) before the lock is made; see package hermetic/gomod.
	// Its TreeHead is the one the previous lock recorded, if any.
	VerifyModules *gomod.Config
}

// ImageResolver resolves an image reference to its manifest (or index) digest.
type ImageResolver interface {
	Resolve(ctx context.Context, ref string) (string, error)
}

// URLFetcher downloads a remote file.
type URLFetcher interface {
	Fetch(ctx context.Context, url string) (io.ReadCloser, error)
}

type registryResolver struct{ opts []remote.Option }

// RegistryResolver resolves image references against their registries with
// go-containerregistry, authenticating with the default keychain (docker
// config). opts are appended to the defaults.
func RegistryResolver(opts ...remote.Option) ImageResolver {
	return &registryResolver{opts: opts}
}

func (r *registryResolver) Resolve(ctx context.Context, ref string) (string, error) {
	parsed, err := name.ParseReference(ref)
	if err != nil {
		return "", fmt.Errorf("parsing image reference %q: %w", ref, err)
	}
	opts := append([]remote.Option{remote.WithContext(ctx), remote.WithAuthFromKeychain(authn.DefaultKeychain)}, r.opts...)
	desc, err := remote.Head(parsed, opts...)
	if err != nil {
		// Some registries do not answer HEAD for manifests; fall back to GET.
		d, gerr := remote.Get(parsed, opts...)
		if gerr != nil {
			return "", fmt.Errorf("resolving %s: %w", ref, gerr)
		}
		return d.Digest.String(), nil
	}
	return desc.Digest.String(), nil
}

type httpFetcher struct{ c *http.Client }

// HTTPFetcher downloads URLs with c (http.DefaultClient if nil). Non-2xx
// responses are errors.
func HTTPFetcher(c *http.Client) URLFetcher {
	if c == nil {
		c = http.DefaultClient
	}
	return &httpFetcher{c: c}
}

func (f *httpFetcher) Fetch(ctx context.Context, url string) (io.ReadCloser, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, fmt.Errorf("fetching %s: %w", url, err)
	}
	resp, err := f.c.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetching %s: %w", url, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		resp.Body.Close()
		return nil, fmt.Errorf("fetching %s: HTTP status %s", url, resp.Status)
	}
	return resp.Body, nil
}

// Create inspects the context and the Dockerfile and pins every input.
func Create(ctx context.Context, req Request) (*Lock, error) {
	if req.ContextDir == "" {
		return nil, errors.New("creating lock: no build context directory given")
	}
	ctxDir, err := filepath.Abs(req.ContextDir)
	if err != nil {
		return nil, fmt.Errorf("creating lock: resolving context %s: %w", req.ContextDir, err)
	}
	st, err := os.Stat(ctxDir)
	if err != nil {
		return nil, fmt.Errorf("creating lock: build context %s: %w", req.ContextDir, err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("creating lock: build context %s is not a directory", req.ContextDir)
	}
	dfRel, err := dockerfileRel(ctxDir, req.Dockerfile)
	if err != nil {
		return nil, fmt.Errorf("creating lock: %w", err)
	}
	dfPath := filepath.Join(ctxDir, filepath.FromSlash(dfRel))
	dfBytes, err := os.ReadFile(dfPath)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("creating lock: no Dockerfile at %s: %w", dfPath, err)
		}
		return nil, fmt.Errorf("creating lock: reading Dockerfile: %w", err)
	}
	if err := CheckBuildArgs(req.BuildArgs); err != nil {
		return nil, fmt.Errorf("creating lock: %w", err)
	}
	lockDir := req.LockDir
	if lockDir == "" {
		lockDir = ctxDir
	}
	if lockDir, err = filepath.Abs(lockDir); err != nil {
		return nil, fmt.Errorf("creating lock: resolving lock directory: %w", err)
	}
	platform := req.Platform
	if platform == "" {
		platform = defaultPlatform()
	}

	l := &Lock{
		SchemaVersion:   SchemaVersion,
		Dockerfile:      File{Path: dfRel, Digest: sha256Digest(dfBytes)},
		Target:          req.Target,
		Platform:        platform,
		BuildKitVersion: req.BuildKitVersion,
	}
	if len(req.BuildArgs) > 0 {
		l.BuildArgs = maps.Clone(req.BuildArgs)
	}

	// Source.
	g, err := inspectGit(ctx, ctxDir, []string{filepath.Join(lockDir, DefaultFileName)})
	if err != nil {
		return nil, fmt.Errorf("creating lock: %w", err)
	}
	if g != nil {
		if len(g.dirty) > 0 && !req.AllowDirty {
			shown := g.dirty
			more := ""
			if len(shown) > 5 {
				more = fmt.Sprintf(" and %d more", len(shown)-5)
				shown = shown[:5]
			}
			return nil, wrapf(ErrDirtyTree, "creating lock: the git work tree is dirty: uncommitted changes in %s: %s%s; commit them or pass --allow-dirty", req.ContextDir, strings.Join(shown, ", "), more)
		}
		l.Source = Source{Kind: SourceKindGit, Repository: g.repo, Commit: g.commit, Tree: g.tree, Ref: g.ref, Dirty: len(g.dirty) > 0}
		l.SourceDateEpoch = g.epoch
	} else {
		l.Source = Source{Kind: SourceKindTree}
	}
	if req.SourceDateEpoch != nil {
		l.SourceDateEpoch = *req.SourceDateEpoch
	}
	l.Source.Digest, l.Files, err = ContextDigest(ctxDir, dfRel)
	if err != nil {
		return nil, fmt.Errorf("creating lock: %w", err)
	}
	if err := lockGoModules(ctx, l, ctxDir, req.VerifyModules); err != nil {
		return nil, fmt.Errorf("creating lock: %w", err)
	}

	// Inputs named by the Dockerfile.
	a, err := AnalyzeDockerfile(dfBytes, req.BuildArgs, req.Target, platform)
	if err != nil {
		return nil, fmt.Errorf("creating lock: analyzing %s: %w", dfRel, err)
	}
	if err := a.CheckHermetic(); err != nil {
		return nil, fmt.Errorf("creating lock: %w", err)
	}
	if err := lockImages(ctx, l, a, req, lockDir); err != nil {
		return nil, fmt.Errorf("creating lock: %w", err)
	}
	if err := lockURLs(ctx, l, a, req.Fetcher); err != nil {
		return nil, fmt.Errorf("creating lock: %w", err)
	}
	if err := lockGit(ctx, l, a); err != nil {
		return nil, fmt.Errorf("creating lock: %w", err)
	}
	l.sortSlices()
	if err := l.validate(); err != nil {
		return nil, fmt.Errorf("creating lock: %w", err)
	}
	return l, nil
}

// dockerfileRel returns the Dockerfile path relative to ctxDir, slash-separated.
func dockerfileRel(ctxDir, df string) (string, error) {
	if df == "" {
		df = "Dockerfile"
	}
	abs := df
	if !filepath.IsAbs(abs) {
		abs = filepath.Join(ctxDir, filepath.FromSlash(df))
	}
	rel, err := filepath.Rel(ctxDir, abs)
	if err != nil || rel == "." || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return "", fmt.Errorf("Dockerfile %s is not inside the build context %s", df, ctxDir)
	}
	return filepath.ToSlash(rel), nil
}

func lookupMapping(m map[string]string, ref string) (string, bool) {
	if v, ok := m[ref]; ok {
		return v, true
	}
	want, err := name.ParseReference(ref)
	if err != nil {
		return "", false
	}
	for _, k := range slices.Sorted(maps.Keys(m)) {
		if got, err := name.ParseReference(k); err == nil && got.Name() == want.Name() {
			return m[k], true
		}
	}
	return "", false
}

func lockImages(ctx context.Context, l *Lock, a *Analysis, req Request, lockDir string) error {
	done := map[string]bool{}
	for _, use := range a.Images {
		if done[use.Name] {
			continue
		}
		done[use.Name] = true
		ref, err := name.ParseReference(use.Name)
		if err != nil {
			return fmt.Errorf("image %q (Dockerfile line %d): %w", use.Name, use.Line, err)
		}
		var pinned string
		if d, ok := ref.(name.Digest); ok {
			pinned = d.DigestStr()
		}
		img := Image{Name: use.Name}
		if spec, ok := lookupMapping(req.Images, use.Name); ok {
			p, dgst, err := resolveOCILayout(spec)
			if err != nil {
				return fmt.Errorf("image %s (Dockerfile line %d): %w", use.Name, use.Line, err)
			}
			if pinned != "" && pinned != dgst {
				return fmt.Errorf("image %s (Dockerfile line %d) pins %s but %s holds %s", use.Name, use.Line, pinned, spec, dgst)
			}
			rel, err := filepath.Rel(lockDir, p)
			if err != nil {
				return fmt.Errorf("image %s: making %s relative to %s: %w", use.Name, p, lockDir, err)
			}
			img.Digest, img.Location = dgst, LocationOCILayout+filepath.ToSlash(rel)
		} else if pinned != "" {
			img.Digest, img.Location = pinned, LocationRegistry+ref.Context().Name()+"@"+pinned
		} else if req.Resolver != nil {
			dgst, err := req.Resolver.Resolve(ctx, use.Name)
			if err != nil {
				return &sentinelError{msg: fmt.Sprintf("base image %s (Dockerfile line %d) was not found: %v; map it with --image %s=oci-layout:PATH", use.Name, use.Line, err, use.Name), sentinel: errors.Join(ErrImageNotFound, err)}
			}
			if !validSHA256(dgst) {
				return fmt.Errorf("resolving image %s: registry returned unsupported digest %q", use.Name, dgst)
			}
			img.Digest, img.Location = dgst, LocationRegistry+ref.Context().Name()+"@"+dgst
		} else {
			return wrapf(ErrImageNotFound, "base image %s (Dockerfile line %d) was not found: map it with --image %s=oci-layout:PATH or make it resolvable in a registry", use.Name, use.Line, use.Name)
		}
		l.Images = append(l.Images, img)
	}
	return nil
}

// resolveOCILayout opens "oci-layout:PATH[:TAG|@DIGEST]" and returns the
// absolute layout path and the selected manifest digest.
func resolveOCILayout(spec string) (string, string, error) {
	rest, ok := strings.CutPrefix(spec, "oci-layout:")
	if !ok {
		return "", "", fmt.Errorf("image mapping %q: want oci-layout:PATH[:TAG]", spec)
	}
	rest = strings.TrimPrefix(rest, "//")
	p, tag, want := rest, "", ""
	if i := strings.LastIndex(rest, "@"); i >= 0 && validSHA256(rest[i+1:]) {
		p, want = rest[:i], rest[i+1:]
	} else if i := strings.LastIndex(rest, ":"); i >= 0 && !strings.ContainsAny(rest[i+1:], `/\`) {
		p, tag = rest[:i], rest[i+1:]
	}
	if p == "" {
		return "", "", fmt.Errorf("image mapping %q: empty path", spec)
	}
	abs, err := filepath.Abs(p)
	if err != nil {
		return "", "", fmt.Errorf("image mapping %q: %w", spec, err)
	}
	lp, err := layout.FromPath(abs)
	if err != nil {
		return "", "", fmt.Errorf("opening OCI layout %s: %w", p, err)
	}
	idx, err := lp.ImageIndex()
	if err != nil {
		return "", "", fmt.Errorf("reading OCI layout %s: %w", p, err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return "", "", fmt.Errorf("reading index.json of OCI layout %s: %w", p, err)
	}
	const refName = "org.opencontainers.image.ref.name"
	var tags []string
	for _, d := range im.Manifests {
		t := d.Annotations[refName]
		if t != "" {
			tags = append(tags, t)
		}
		switch {
		case want != "" && d.Digest.String() == want:
			return abs, want, nil
		case tag != "" && (t == tag || strings.HasSuffix(t, ":"+tag)):
			return abs, d.Digest.String(), nil
		}
	}
	switch {
	case want != "":
		return "", "", fmt.Errorf("OCI layout %s has no manifest %s", p, want)
	case tag != "":
		return "", "", fmt.Errorf("OCI layout %s has no manifest tagged %q (tags: %s)", p, tag, tagList(tags))
	case len(im.Manifests) == 1:
		return abs, im.Manifests[0].Digest.String(), nil
	case len(im.Manifests) == 0:
		return "", "", fmt.Errorf("OCI layout %s is empty", p)
	default:
		return "", "", fmt.Errorf("OCI layout %s holds %d manifests: pick one with oci-layout:%s:TAG (tags: %s)", p, len(im.Manifests), p, tagList(tags))
	}
}

func tagList(tags []string) string {
	if len(tags) == 0 {
		return "none"
	}
	return strings.Join(tags, ", ")
}

func lockURLs(ctx context.Context, l *Lock, a *Analysis, f URLFetcher) error {
	byURL := map[string]URLUse{}
	for _, use := range a.URLs {
		prev, seen := byURL[use.URL]
		if seen {
			if prev.Checksum != "" && use.Checksum != "" && prev.Checksum != use.Checksum {
				return fmt.Errorf("ADD %s: Dockerfile lines %d and %d give different checksums", use.URL, prev.Line, use.Line)
			}
			if prev.Checksum != "" {
				continue
			}
		}
		byURL[use.URL] = use
	}
	for _, u := range slices.Sorted(maps.Keys(byURL)) {
		use := byURL[u]
		if use.Checksum != "" {
			if !validSHA256(use.Checksum) {
				return fmt.Errorf("ADD %s (Dockerfile line %d): --checksum %q: only sha256:<64 lowercase hex> can be locked", u, use.Line, use.Checksum)
			}
			l.URLs = append(l.URLs, URL{URL: u, Digest: use.Checksum})
			continue
		}
		if f == nil {
			return fmt.Errorf("ADD %s (Dockerfile line %d) has no --checksum and downloading is disabled: add --checksum=sha256:... or allow fetching", u, use.Line)
		}
		rc, err := f.Fetch(ctx, u)
		if err != nil {
			return fmt.Errorf("ADD %s (Dockerfile line %d): %w", u, use.Line, err)
		}
		h := sha256.New()
		_, err = io.Copy(h, rc)
		rc.Close()
		if err != nil {
			return fmt.Errorf("ADD %s (Dockerfile line %d): downloading: %w", u, use.Line, err)
		}
		l.URLs = append(l.URLs, URL{URL: u, Digest: prefixSHA256 + hex.EncodeToString(h.Sum(nil))})
	}
	return nil
}

func lockGit(ctx context.Context, l *Lock, a *Analysis) error {
	done := map[string]bool{}
	for _, use := range a.Git {
		k := use.Remote + "#" + use.Ref
		if done[k] {
			continue
		}
		done[k] = true
		commit := ""
		switch {
		case validCommit(use.Checksum):
			commit = use.Checksum
		case validCommit(use.Ref):
			commit = use.Ref
		default:
			c, err := lsRemote(ctx, use.Remote, use.Ref)
			if err != nil {
				return fmt.Errorf("ADD %s (Dockerfile line %d): resolving commit: %w", use.URL, use.Line, err)
			}
			if use.Checksum != "" && !strings.HasPrefix(c, use.Checksum) {
				return fmt.Errorf("ADD %s (Dockerfile line %d): ref resolves to %s, not the --checksum %s", use.URL, use.Line, c, use.Checksum)
			}
			commit = c
		}
		l.Git = append(l.Git, GitSource{Remote: use.Remote, Ref: use.Ref, Commit: commit})
	}
	return nil
}

// lockGoModules records the Go modules of the go.sum files sent to
// BuildKit and, when cfg is set, proves them.
func lockGoModules(ctx context.Context, l *Lock, ctxDir string, cfg *gomod.Config) error {
	mods, err := gomod.Scan(ctxDir)
	if err != nil {
		return err
	}
	sent := map[string]bool{}
	for _, f := range l.Files {
		sent[f.Path] = true
	}
	for _, m := range mods {
		if sent[m.GoSum] {
			l.GoModules = append(l.GoModules, m)
		}
	}
	if cfg == nil || len(l.GoModules) == 0 {
		return nil
	}
	res, err := gomod.Verify(ctx, ctxDir, l.GoModules, *cfg)
	if err != nil {
		return err
	}
	if res.TreeHead != "" {
		l.GoSumDB = &GoSumDB{Name: res.SumDB, TreeSize: res.TreeSize, TreeHash: res.TreeHash, TreeHead: res.TreeHead}
	}
	return nil
}
