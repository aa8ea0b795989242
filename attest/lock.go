package attest

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
)

// Lock is what a build's lock file (twinforge.lock, schema 1) pins, as far
// as provenance records it: the source, the Dockerfile, build arguments,
// target, platform, base images, URLs, git sources, SOURCE_DATE_EPOCH and
// the BuildKit version. Its JSON form is the lock file's, so ParseLock
// reads a lock file's bytes; the per-file listing and the images'
// locations are left out. attest depends on no build package: the
// orchestrator hands it the lock it built from this way.
type Lock struct {
	Source          Source            `json:"source"`
	Dockerfile      File              `json:"dockerfile"`
	BuildArgs       map[string]string `json:"buildArgs,omitempty"`
	Target          string            `json:"target,omitempty"`
	Platform        string            `json:"platform"`
	Images          []Image           `json:"images,omitempty"`
	URLs            []URL             `json:"urls,omitempty"`
	Git             []GitSource       `json:"git,omitempty"`
	SourceDateEpoch int64             `json:"sourceDateEpoch"`
	BuildKitVersion string            `json:"buildkitVersion"`
	// GoModules are the Go module versions the context's go.sum files pin;
	// GoSumDB the checksum database tree they were proven in, if any.
	GoModules []GoModule `json:"goModules,omitempty"`
	GoSumDB   *GoSumDB   `json:"goSumDB,omitempty"`
	// Digest is the sha256 of the lock file's bytes ("sha256:<hex>"),
	// recorded as internalParameters.lockDigest.
	Digest string `json:"-"`
}

// Source is the source a build was made from.
type Source struct {
	// Kind is SourceKindGit or SourceKindTree.
	Kind       string `json:"kind"`
	Repository string `json:"repository,omitempty"`
	Commit     string `json:"commit,omitempty"`
	// Tree is the git tree of the build context directory at Commit.
	Tree string `json:"tree,omitempty"`
	Ref  string `json:"ref,omitempty"`
	// Dirty records a build from uncommitted changes.
	Dirty bool `json:"dirty,omitempty"`
	// Digest is twinforge's content digest of the build context.
	Digest string `json:"digest"`
}

// Source kinds.
const (
	SourceKindGit  = "git"
	SourceKindTree = "tree"
)

// File is a file of the context by path and sha256 digest.
type File struct {
	Path   string `json:"path"`
	Digest string `json:"digest"`
}

// Image is a base image: its name as the Dockerfile writes it, and its
// manifest (or index) digest.
type Image struct {
	Name   string `json:"name"`
	Digest string `json:"digest"`
}

// URL is a remote file a build adds, with its sha256 digest.
type URL struct {
	URL    string `json:"url"`
	Digest string `json:"digest"`
}

// GitSource is a git repository a build adds, at a commit.
type GitSource struct {
	Remote string `json:"remote"`
	Ref    string `json:"ref,omitempty"`
	Commit string `json:"commit"`
}

// GoModule is a Go module version a go.sum pins, with its hashes.
type GoModule struct {
	Path    string `json:"path"`
	Version string `json:"version"`
	// Sum is the h1 hash of the module's zip, GoModSum of its go.mod.
	Sum      string `json:"sum,omitempty"`
	GoModSum string `json:"goModSum,omitempty"`
	// GoSum is the go.sum file listing it.
	GoSum string `json:"goSum"`
	// Vendored is the h1 hash of the vendored files, when vendored.
	Vendored string `json:"vendored,omitempty"`
}

// GoSumDB is the Go checksum database tree a lock's modules were proven
// in.
type GoSumDB struct {
	Name     string `json:"name"`
	TreeSize int64  `json:"treeSize"`
	TreeHash string `json:"treeHash"`
	TreeHead string `json:"treeHead"`
}

// ParseLock reads the provenance-relevant part of a lock file and records
// the digest of its bytes.
func ParseLock(data []byte) (*Lock, error) {
	var l Lock
	if err := json.Unmarshal(data, &l); err != nil {
		return nil, fmt.Errorf("reading lock: %w", err)
	}
	if l.Source.Kind == "" || l.Dockerfile.Path == "" || l.Platform == "" {
		return nil, errors.New("reading lock: no source, Dockerfile or platform")
	}
	sum := sha256.Sum256(data)
	l.Digest = "sha256:" + hex.EncodeToString(sum[:])
	return &l, nil
}

// Builder is a BuildKit daemon that built or rebuilt an image, as
// provenance and verdicts record it.
type Builder struct {
	// Remote is true for a daemon twinforge did not start.
	Remote bool `json:"remote"`
	// BuildKitVersion is the version buildkitd reports.
	BuildKitVersion string `json:"buildkitVersion,omitempty"`
	// Runc is the OCI runtime's version line, for a private daemon.
	Runc string `json:"runc,omitempty"`
	// Snapshotter is the worker's snapshotter.
	Snapshotter string `json:"snapshotter,omitempty"`
	// CPUSet is the CPU affinity the daemon runs under, if restricted.
	CPUSet string `json:"cpuset,omitempty"`
	// Cache is how the daemon's cache was used: "cold" (nothing reused),
	// "warm" (from a cache of its own side) or "remote" (a remote
	// daemon's own); empty records nothing. CacheScope is the tenant the
	// cache belongs to, CacheReset why a cache was not used.
	Cache      string `json:"cache,omitempty"`
	CacheScope string `json:"cacheScope,omitempty"`
	CacheReset string `json:"cacheReset,omitempty"`
	// RootFS is the file system the daemon's snapshots were on.
	RootFS string `json:"rootFS,omitempty"`
	// Worker says which remote worker the daemon is, when known: the
	// identity and certificate fingerprint it presented, the node (and
	// Kubernetes cluster and pod) it ran on, the host name and BuildKit
	// worker ID it reported.
	Worker *Worker `json:"worker,omitempty"`
}

// Worker identifies a remote build worker, as the provenance records it.
type Worker struct {
	Identity    string `json:"identity,omitempty"`
	Certificate string `json:"certificate,omitempty"`
	Node        string `json:"node,omitempty"`
	Cluster     string `json:"cluster,omitempty"`
	Pod         string `json:"pod,omitempty"`
	Hostname    string `json:"hostname,omitempty"`
	WorkerID    string `json:"workerId,omitempty"`
}

// annotations are the worker's fields as provenance annotations, each
// under its JSON name prefixed with "worker".
func (w *Worker) annotations(ann map[string]any) {
	if w == nil {
		return
	}
	for k, v := range map[string]string{
		"workerIdentity": w.Identity, "workerCertificate": w.Certificate, "workerNode": w.Node,
		"workerCluster": w.Cluster, "workerPod": w.Pod, "workerHostname": w.Hostname, "workerId": w.WorkerID,
	} {
		if v != "" {
			ann[k] = v
		}
	}
}

// material is one resolved dependency: a URI and a digest set keyed by
// algorithm ("sha256" hex without prefix, "gitCommit").
type material struct {
	uri    string
	digest map[string]string
}

// materials lists the Dockerfile, each image, URL, git repository and Go
// module of the lock, in its order.
func (l *Lock) materials() []material {
	out := []material{{uri: "file:" + l.Dockerfile.Path, digest: map[string]string{"sha256": digestHex(l.Dockerfile.Digest)}}}
	for _, im := range l.Images {
		out = append(out, material{uri: imagePURL(im.Name, l.Platform), digest: map[string]string{"sha256": digestHex(im.Digest)}})
	}
	for _, u := range l.URLs {
		out = append(out, material{uri: u.URL, digest: map[string]string{"sha256": digestHex(u.Digest)}})
	}
	for _, g := range l.Git {
		uri := g.Remote
		if g.Ref != "" {
			uri += "#" + g.Ref
		}
		out = append(out, material{uri: uri, digest: map[string]string{"gitCommit": g.Commit}})
	}
	for _, m := range l.GoModules {
		out = append(out, material{uri: "pkg:golang/" + m.Path + "@" + m.Version, digest: goModuleDigest(m)})
	}
	return out
}

// goModuleDigest is a module's h1 hash as an in-toto digest set: dirHash
// is the sha256 of the module's dirhash summary, hex-encoded.
func goModuleDigest(m GoModule) map[string]string {
	h := m.Sum
	if h == "" {
		h = m.GoModSum
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(h, "h1:"))
	if err != nil || len(raw) != sha256.Size {
		return nil
	}
	return map[string]string{"dirHash": hex.EncodeToString(raw)}
}

func digestHex(d string) string { return strings.TrimPrefix(d, "sha256:") }

// imagePURL renders an image reference as a package URL
// (pkg:docker/NAMESPACE/NAME@VERSION?platform=...), like BuildKit's
// provenance does.
func imagePURL(ref, platform string) string {
	r, err := name.ParseReference(ref)
	if err != nil {
		return "pkg:docker/" + ref
	}
	repo := r.Context()
	p := repo.RepositoryStr()
	q := url.Values{}
	if reg := repo.RegistryStr(); reg != name.DefaultRegistry {
		q.Set("repository_url", reg+"/"+p)
	}
	if platform != "" {
		q.Set("platform", platform)
	}
	version := r.Identifier()
	if t, ok := r.(name.Tag); ok {
		version = t.TagStr()
	}
	s := "pkg:docker/" + p + "@" + url.PathEscape(version)
	if len(q) > 0 {
		s += "?" + q.Encode()
	}
	return s
}
