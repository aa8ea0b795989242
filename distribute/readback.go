package distribute

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path"
	"strings"
	"sync"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// ReferrersMode says how a registry lists the referrers of a manifest.
type ReferrersMode string

const (
	// ReferrersAPI: the registry answers the OCI 1.1 referrers API,
	// GET /v2/<name>/referrers/<digest>, and keeps the list itself.
	ReferrersAPI ReferrersMode = "referrers-api"
	// ReferrersTagSchema: the registry lacks the API (404); the list is an
	// image index tagged sha256-<hex>, the spec's referrers tag schema,
	// which the client maintains.
	ReferrersTagSchema ReferrersMode = "tag-schema"
)

// reader reads one repository back after a write, through a
// go-containerregistry Puller of its own: it shares no authentication or
// state with the write path (nor with WithPuller), so what it reads is what
// the registry serves.
type reader struct {
	o     *options
	repo  name.Repository
	p     *remote.Puller
	modes *modeRecorder
}

func (o *options) reader(repo name.Repository) (*reader, error) {
	modes := &modeRecorder{inner: o.transport}
	p, err := remote.NewPuller(append(o.connection(), remote.WithTransport(modes))...)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", repo, err)
	}
	return &reader{o: o, repo: repo, p: p, modes: modes}, nil
}

// manifestExists HEADs a manifest by digest.
func (r *reader) manifestExists(ctx context.Context, d v1.Hash) (bool, error) {
	_, err := r.p.Head(ctx, r.repo.Digest(d.String()))
	switch {
	case err == nil:
		return true, nil
	case hasStatus(err, http.StatusNotFound):
		return false, nil
	}
	return false, err
}

// readBack GETs the manifest d (go-containerregistry checks its bytes hash
// to d), checks they equal want, when given, and checks every blob and
// child manifest it refers to. It returns the manifest.
func (r *reader) readBack(ctx context.Context, d v1.Hash, want []byte) ([]byte, error) {
	desc, err := getManifest(ctx, r.o, r.p, r.repo.Digest(d.String()))
	if errors.Is(err, ErrNotFound) {
		return nil, fmt.Errorf("%w: manifest %s is missing from %s", ErrVerification, d, r.repo)
	}
	if err != nil {
		return nil, fmt.Errorf("reading back manifest %s: %w", d, err)
	}
	raw := desc.Manifest
	if want != nil && !bytes.Equal(raw, want) {
		return nil, fmt.Errorf("%w: manifest %s read back from %s differs from the one pushed", ErrVerification, d, r.repo)
	}
	var m struct {
		Config    *v1.Descriptor  `json:"config"`
		Layers    []v1.Descriptor `json:"layers"`
		Manifests []v1.Descriptor `json:"manifests"`
	}
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("%w: manifest %s in %s is not JSON: %v", ErrVerification, d, r.repo, err)
	}
	for _, child := range m.Manifests {
		if _, err := r.readBack(ctx, child.Digest, nil); err != nil {
			return nil, err
		}
	}
	blobs := m.Layers
	if m.Config != nil {
		blobs = append([]v1.Descriptor{*m.Config}, blobs...)
	}
	for _, b := range blobs {
		if !b.MediaType.IsDistributable() {
			continue // foreign layers live elsewhere
		}
		if err := r.verifyBlob(ctx, b); err != nil {
			return nil, fmt.Errorf("reading back %s: %w", d, err)
		}
	}
	return raw, nil
}

// verifyBlob checks that the repository holds a blob of the right size and
// digest: by downloading and hashing it with WithBlobReadBack, else by
// asking its size with a HEAD request (go-containerregistry's
// remote.Layer Size).
func (r *reader) verifyBlob(ctx context.Context, d v1.Descriptor) error {
	if r.o.blobRead {
		_, err := download(ctx, r.o, r.p, r.repo, d, false)
		return err
	}
	l, err := r.p.Layer(ctx, r.repo.Digest(d.Digest.String()))
	if err != nil {
		return err
	}
	size, err := l.Size()
	if err != nil {
		return missingBlob(err, r.repo, d.Digest)
	}
	if size >= 0 && size != d.Size {
		return fmt.Errorf("%w: %s holds %d bytes for blob %s, want %d", ErrVerification, r.repo, size, d.Digest, d.Size)
	}
	return nil
}

// referrers lists the referrers of subject as go-containerregistry's
// remote.Referrers does (the referrers API, or else the tag schema), and
// says which of the two the registry answered with. Ask only once the
// repository exists: some registries answer 404 for an unknown repository
// even when they have the API.
func (r *reader) referrers(ctx context.Context, subject v1.Hash) ([]v1.Descriptor, ReferrersMode, error) {
	var descs []v1.Descriptor
	err := r.o.again(ctx, func() error {
		idx, err := remote.Referrers(r.repo.Digest(subject.String()), remote.Reuse(r.p), remote.WithContext(ctx))
		if err != nil {
			return err
		}
		im, err := idx.IndexManifest()
		if err != nil {
			return err
		}
		descs = im.Manifests
		return nil
	})
	if err != nil {
		return nil, "", fmt.Errorf("listing referrers of %s in %s: %w", subject, r.repo, err)
	}
	return descs, r.modes.mode(subject), nil
}

// modeRecorder notes how the registry answered the referrers API, by the
// same rule go-containerregistry's remote.Referrers applies to choose
// between the API and the tag schema: it makes that choice without
// telling, and twinforge reports it (PushResult.ReferrersMode).
type modeRecorder struct {
	inner http.RoundTripper
	mu    sync.Mutex
	modes map[string]ReferrersMode // by subject digest; the last answer counts
}

func (m *modeRecorder) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := m.inner.RoundTrip(req)
	dir, subject := path.Split(req.URL.Path)
	if err != nil || req.Method != http.MethodGet || !strings.HasSuffix(dir, "/referrers/") {
		return resp, err
	}
	mode := ReferrersTagSchema
	if resp.StatusCode == http.StatusOK && resp.Header.Get("Content-Type") == string(types.OCIImageIndex) {
		mode = ReferrersAPI
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.modes == nil {
		m.modes = map[string]ReferrersMode{}
	}
	m.modes[subject] = mode
	return resp, nil
}

func (m *modeRecorder) mode(subject v1.Hash) ReferrersMode {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.modes[subject.String()]
}

// getManifest GETs a manifest through p. By digest, go-containerregistry
// checks the bytes against it; a mismatch wraps ErrVerification. A 404
// wraps ErrNotFound.
func getManifest(ctx context.Context, o *options, p *remote.Puller, ref name.Reference) (*remote.Descriptor, error) {
	var desc *remote.Descriptor
	err := o.again(ctx, func() error {
		var err error
		desc, err = p.Get(ctx, ref)
		return err
	})
	switch {
	case err == nil:
		return desc, nil
	case isDigestMismatch(err):
		return nil, fmt.Errorf("%w: %s returned another manifest than %s: %v", ErrVerification, ref.Context(), ref.Identifier(), err)
	}
	return nil, notFound(err, "manifest "+ref.Identifier())
}

// isDigestMismatch says whether err is go-containerregistry refusing a
// manifest fetched by digest whose bytes have another digest. It has no
// error type or sentinel for it (v0.22), only this message; FuzzFetchByDigest
// notices when it changes.
func isDigestMismatch(err error) bool {
	return strings.Contains(err.Error(), "does not match requested digest")
}

// download reads blob d of repo through p, checks its size and digest, and
// returns it when keep is set. go-containerregistry checks the digest as
// well, but its error has no type to tell corrupt data from a failed read,
// and it does not know the size.
func download(ctx context.Context, o *options, p *remote.Puller, repo name.Repository, d v1.Descriptor, keep bool) ([]byte, error) {
	if d.Digest.Algorithm != "sha256" {
		return nil, fmt.Errorf("blob %s: only sha256 digests are supported", d.Digest)
	}
	var data []byte
	err := o.again(ctx, func() error {
		l, err := p.Layer(ctx, repo.Digest(d.Digest.String()))
		if err != nil {
			return err
		}
		rc, err := l.Compressed()
		if err != nil {
			return missingBlob(err, repo, d.Digest)
		}
		defer rc.Close()
		h := sha256.New()
		var kept bytes.Buffer
		w := io.Writer(h)
		if keep {
			w = io.MultiWriter(h, &kept)
		}
		// One byte more than the size tells a longer blob apart.
		n, err := io.Copy(w, io.LimitReader(rc, d.Size+1))
		if err != nil && brokenBody(err) {
			return err
		}
		if got := hex.EncodeToString(h.Sum(nil)); got != d.Digest.Hex || n != d.Size {
			return fmt.Errorf("%w: %s returned %d bytes with digest sha256:%s for blob %s (%d bytes)", ErrVerification, repo, n, got, d.Digest, d.Size)
		}
		if err != nil {
			return err
		}
		data = kept.Bytes()
		return nil
	})
	return data, err
}

// missingBlob marks a 404 for a blob as a verification failure: what was
// written or listed is not there.
func missingBlob(err error, repo name.Repository, d v1.Hash) error {
	if hasStatus(err, http.StatusNotFound) {
		return fmt.Errorf("%w: blob %s is missing from %s", ErrVerification, d, repo)
	}
	return err
}

// hasStatus says whether err is the registry answering with status code.
func hasStatus(err error, code int) bool {
	var terr *transport.Error
	return errors.As(err, &terr) && terr.StatusCode == code
}
