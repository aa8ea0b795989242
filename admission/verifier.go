package admission

import (
	"bytes"
	"context"
	"fmt"
	"sync"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"

	"github.com/twinforge/twinforge/distribute"
)

// Verifier decides images exactly as the webhook decides them: the same
// tenants, policies, trusted root, revocation list and verification cache
// (keyed by digest), reloaded as the files change. The node agent
// re-verifies what runs through it.
type Verifier interface {
	// Verify decides one image in a namespace, as admission would now.
	Verify(ctx context.Context, req VerifyRequest) ImageDecision
	// ConfigDigest is the digest of the image config (the image ID a
	// container runtime reports) that image, named by digest, runs on
	// platform: its manifest's config, or for an index the config of its
	// manifest for platform. Manifests are fetched by digest and checked;
	// answers are cached by digest.
	// namespace and spec, when spec is not nil, give the pull secrets.
	ConfigDigest(ctx context.Context, image name.Digest, platform v1.Platform, namespace string, spec *corev1.PodSpec) (v1.Hash, error)
	// PolicyVersion is the version of the files in force.
	PolicyVersion() string
	// Changes receives a value after a reload changed any of the files
	// (it is never closed; one value stands for any number of changes).
	Changes() <-chan struct{}
	// Gatherer gathers the verification metrics (cache, latency, reloads).
	Gatherer() prometheus.Gatherer
	// Reload re-reads the files now.
	Reload() error
	// Close stops polling the files.
	Close() error
}

// VerifyRequest is one image to decide.
type VerifyRequest struct {
	// Namespace is the namespace the image runs in: its tenants decide.
	Namespace string
	// Image is the image, by digest ("repo@sha256:...") or tag.
	Image string
	// PodSpec, when not nil, is the spec of the pod that runs it: its pull
	// secrets are used with WithImagePullSecrets.
	PodSpec *corev1.PodSpec
}

// ImageDecision is the decision about one image.
type ImageDecision struct {
	// Digest is the manifest digest decided, empty when none was found.
	Digest string
	// Tenants are the tenants whose policies passed, when admitted.
	Tenants []RecordedTenant
	// Result is ResultAdmitted or the class of the refusal (ResultRevoked,
	// ResultVerification, ResultRegistry, ...), Reason why.
	Result, Reason string
	// Err is nil when admitted.
	Err error
}

// Admitted reports whether the image passes.
func (d ImageDecision) Admitted() bool { return d.Err == nil }

// NewVerifier loads the files src names and returns the Verifier deciding
// by them. The options are New's; those about serving reviews have no
// effect.
func NewVerifier(src Source, opts ...Option) (Verifier, error) {
	w, err := New(src, opts...)
	if err != nil {
		return nil, err
	}
	return w.(*webhook), nil
}

var _ Verifier = (*webhook)(nil)

func (w *webhook) Verify(ctx context.Context, req VerifyRequest) ImageDecision {
	var pull authn.Keychain
	if w.pulls != nil && req.PodSpec != nil {
		var err error
		if pull, err = w.pulls.keychain(ctx, req.Namespace, req.PodSpec); err != nil {
			w.log.Warn("verifying without the pod's pull secrets", "namespace", req.Namespace, "image", req.Image, "error", err.Error())
		}
	}
	ctx, cancel := context.WithTimeout(ctx, w.o.deadline)
	defer cancel()
	d, tenants, err := w.decideGuarded(ctx, w.snap.Load(), req.Namespace, req.Image, false, pull)
	result, reason := classify(err)
	return ImageDecision{Digest: d, Tenants: tenants, Result: result, Reason: reason, Err: err}
}

func (w *webhook) PolicyVersion() string         { return w.snap.Load().version }
func (w *webhook) Changes() <-chan struct{}      { return w.changes }
func (w *webhook) Gatherer() prometheus.Gatherer { return w.metrics.registry }

// maxConfigDigests bounds the cache of ConfigDigest.
const maxConfigDigests = 4096

// configDigests caches ConfigDigest: what a digest names never changes.
type configDigests struct {
	mu sync.Mutex
	m  map[string]v1.Hash
}

func (w *webhook) ConfigDigest(ctx context.Context, image name.Digest, platform v1.Platform, namespace string, spec *corev1.PodSpec) (v1.Hash, error) {
	key := image.DigestStr() + "|" + platform.String()
	w.configs.mu.Lock()
	h, ok := w.configs.m[key]
	w.configs.mu.Unlock()
	if ok {
		return h, nil
	}
	var pull authn.Keychain
	if w.pulls != nil && spec != nil {
		pull, _ = w.pulls.keychain(ctx, namespace, spec) // errors: fetched without
	}
	rc, ok := w.registry.(*remoteClient)
	if !ok {
		return v1.Hash{}, fmt.Errorf("%s: no registry client", image)
	}
	ctx, cancel := context.WithTimeout(ctx, w.o.deadline)
	defer cancel()
	h, err := rc.configDigest(ctx, image, platform, pull)
	if err != nil {
		return v1.Hash{}, err
	}
	w.configs.mu.Lock()
	if w.configs.m == nil || len(w.configs.m) >= maxConfigDigests {
		w.configs.m = map[string]v1.Hash{}
	}
	w.configs.m[key] = h
	w.configs.mu.Unlock()
	return h, nil
}

// configDigest reads the config digest of d on platform.
func (c *remoteClient) configDigest(ctx context.Context, d name.Digest, platform v1.Platform, pull authn.Keychain) (v1.Hash, error) {
	opts := c.with(pull)
	for range 2 { // an index, then its manifest
		m, err := distribute.FetchManifest(ctx, d, opts...)
		if err != nil {
			return v1.Hash{}, registryError(err)
		}
		switch {
		case m.MediaType.IsIndex():
			idx, err := v1.ParseIndexManifest(bytes.NewReader(m.Raw))
			if err != nil {
				return v1.Hash{}, fmt.Errorf("%s: %w", d, err)
			}
			var found *v1.Descriptor
			for i, desc := range idx.Manifests {
				if desc.Platform != nil && desc.Platform.Satisfies(platform) && desc.MediaType.IsImage() {
					found = &idx.Manifests[i]
					break
				}
			}
			if found == nil {
				return v1.Hash{}, fmt.Errorf("%s: no manifest for %s in the index", d, platform)
			}
			if d, err = name.NewDigest(d.Context().Name() + "@" + found.Digest.String()); err != nil {
				return v1.Hash{}, err
			}
		case m.MediaType.IsImage() || m.MediaType == types.MediaType(""):
			man, err := v1.ParseManifest(bytes.NewReader(m.Raw))
			if err != nil {
				return v1.Hash{}, fmt.Errorf("%s: %w", d, err)
			}
			return man.Config.Digest, nil
		default:
			return v1.Hash{}, fmt.Errorf("%s: a %s is not an image", d, m.MediaType)
		}
	}
	return v1.Hash{}, fmt.Errorf("%s: an index of indexes is not an image", d)
}
