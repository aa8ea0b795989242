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
	"math"
	"math/rand/v2"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
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

// manifestMediaTypes is what a read-back accepts.
var manifestMediaTypes = []string{
	string(types.OCIManifestSchema1),
	string(types.OCIImageIndex),
	string(types.DockerManifestSchema2),
	string(types.DockerManifestList),
}

// repoClient makes the requests go-containerregistry has no call for, and
// those a read-back must make independently of the write path.
type repoClient struct {
	repo name.Repository
	c    *http.Client
	o    *options
}

func (o *options) repoClient(ctx context.Context, repo name.Repository, scope string) (*repoClient, error) {
	c, err := o.client(ctx, repo, scope)
	if err != nil {
		return nil, fmt.Errorf("connecting to %s: %w", repo.RegistryStr(), err)
	}
	return &repoClient{repo: repo, c: c, o: o}, nil
}

func (rc *repoClient) url(kind, ref string) string {
	return fmt.Sprintf("%s://%s/v2/%s/%s/%s", rc.repo.Scheme(), rc.repo.RegistryStr(), rc.repo.RepositoryStr(), kind, ref)
}

// errNotFound is a 404 from the registry.
var errNotFound = errors.New("not found")

func (rc *repoClient) do(ctx context.Context, method, url string, accept []string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, url, nil)
	if err != nil {
		return nil, err
	}
	if len(accept) > 0 {
		req.Header.Set("Accept", strings.Join(accept, ","))
	}
	return rc.c.Do(req)
}

// manifest GETs a manifest by digest or tag.
func (rc *repoClient) manifest(ctx context.Context, ref string) (raw []byte, mediaType string, err error) {
	err = rc.o.retry(ctx, func() error {
		resp, err := rc.do(ctx, http.MethodGet, rc.url("manifests", ref), manifestMediaTypes)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if resp.StatusCode == http.StatusNotFound {
			return fmt.Errorf("manifest %s: %w", ref, errNotFound)
		}
		if err := transport.CheckError(resp, http.StatusOK); err != nil {
			return err
		}
		raw, err = io.ReadAll(io.LimitReader(resp.Body, 16<<20))
		mediaType = resp.Header.Get("Content-Type")
		return err
	})
	return raw, mediaType, err
}

// manifestExists HEADs a manifest by digest.
func (rc *repoClient) manifestExists(ctx context.Context, d v1.Hash) (bool, error) {
	resp, err := rc.do(ctx, http.MethodHead, rc.url("manifests", d.String()), manifestMediaTypes)
	if err != nil {
		return false, err
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		return false, nil
	}
	if err := transport.CheckError(resp, http.StatusOK); err != nil {
		return false, err
	}
	return true, nil
}

// verifyBlob checks that the repository holds a blob of the right size and
// digest: by HEAD, or by downloading and hashing it with WithBlobReadBack.
func (rc *repoClient) verifyBlob(ctx context.Context, d v1.Descriptor) error {
	if !rc.o.blobRead {
		return rc.headBlob(ctx, d)
	}
	return rc.o.retry(ctx, func() error {
		resp, err := rc.do(ctx, http.MethodGet, rc.url("blobs", d.Digest.String()), nil)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if resp.StatusCode == http.StatusNotFound {
			return fmt.Errorf("%w: blob %s is missing from %s", ErrVerification, d.Digest, rc.repo)
		}
		if err := transport.CheckError(resp, http.StatusOK); err != nil {
			return err
		}
		if d.Digest.Algorithm != "sha256" {
			return fmt.Errorf("blob %s: only sha256 digests are supported", d.Digest)
		}
		h := sha256.New()
		n, err := io.Copy(h, resp.Body)
		if err != nil {
			return err
		}
		if got := hex.EncodeToString(h.Sum(nil)); got != d.Digest.Hex || n != d.Size {
			return fmt.Errorf("%w: %s returned %d bytes with digest sha256:%s for blob %s (%d bytes)", ErrVerification, rc.repo, n, got, d.Digest, d.Size)
		}
		return nil
	})
}

// headBlob asks the registry for a blob's size and digest.
func (rc *repoClient) headBlob(ctx context.Context, d v1.Descriptor) error {
	return rc.o.retry(ctx, func() error {
		resp, err := rc.do(ctx, http.MethodHead, rc.url("blobs", d.Digest.String()), nil)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if resp.StatusCode == http.StatusNotFound {
			return fmt.Errorf("%w: blob %s is missing from %s", ErrVerification, d.Digest, rc.repo)
		}
		if err := transport.CheckError(resp, http.StatusOK); err != nil {
			return err
		}
		if resp.ContentLength >= 0 && resp.ContentLength != d.Size {
			return fmt.Errorf("%w: %s holds %d bytes for blob %s, want %d", ErrVerification, rc.repo, resp.ContentLength, d.Digest, d.Size)
		}
		if got := resp.Header.Get("Docker-Content-Digest"); got != "" && got != d.Digest.String() {
			return fmt.Errorf("%w: %s answers digest %s for blob %s", ErrVerification, rc.repo, got, d.Digest)
		}
		return nil
	})
}

// readBack GETs the manifest d, checks that its bytes hash to d (and equal
// want, when given), and checks every blob and child manifest it refers to.
// It returns the manifest.
func (rc *repoClient) readBack(ctx context.Context, d v1.Hash, want []byte) ([]byte, error) {
	raw, _, err := rc.manifest(ctx, d.String())
	if errors.Is(err, errNotFound) {
		return nil, fmt.Errorf("%w: manifest %s is missing from %s", ErrVerification, d, rc.repo)
	}
	if err != nil {
		return nil, fmt.Errorf("reading back manifest %s: %w", d, err)
	}
	got, _, err := v1.SHA256(bytes.NewReader(raw))
	if err != nil {
		return nil, err
	}
	if got != d {
		return nil, fmt.Errorf("%w: %s returned a manifest with digest %s for %s", ErrVerification, rc.repo, got, d)
	}
	if want != nil && !bytes.Equal(raw, want) {
		return nil, fmt.Errorf("%w: manifest %s read back from %s differs from the one pushed", ErrVerification, d, rc.repo)
	}
	var m struct {
		MediaType types.MediaType `json:"mediaType"`
		Config    *v1.Descriptor  `json:"config"`
		Layers    []v1.Descriptor `json:"layers"`
		Manifests []v1.Descriptor `json:"manifests"`
	}
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("%w: manifest %s in %s is not JSON: %v", ErrVerification, d, rc.repo, err)
	}
	for _, child := range m.Manifests {
		if _, err := rc.readBack(ctx, child.Digest, nil); err != nil {
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
		if err := rc.verifyBlob(ctx, b); err != nil {
			return nil, fmt.Errorf("reading back %s: %w", d, err)
		}
	}
	return raw, nil
}

// referrersMode asks whether the registry has the referrers API, the way
// go-containerregistry decides whether to maintain the fallback tag: 200
// with an image index is the API; 404, 400 (and 405, 406) mean there is none.
// Ask only once the repository exists: some registries answer 404 for an
// unknown repository even when they have the API.
func (rc *repoClient) referrersMode(ctx context.Context, subject v1.Hash) (ReferrersMode, error) {
	var mode ReferrersMode
	err := rc.o.retry(ctx, func() error {
		resp, err := rc.do(ctx, http.MethodGet, rc.url("referrers", subject.String()), []string{string(types.OCIImageIndex)})
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
		switch resp.StatusCode {
		case http.StatusOK:
			if ct, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); ct == string(types.OCIImageIndex) {
				mode = ReferrersAPI
			} else {
				mode = ReferrersTagSchema
			}
			return nil
		case http.StatusNotFound, http.StatusBadRequest, http.StatusMethodNotAllowed, http.StatusNotAcceptable:
			mode = ReferrersTagSchema
			return nil
		}
		return transport.CheckError(resp, http.StatusOK)
	})
	if err != nil {
		return "", fmt.Errorf("asking %s for the referrers API: %w", rc.repo.RegistryStr(), err)
	}
	return mode, nil
}

// fallbackTag is the referrers tag schema's tag for a subject.
func fallbackTag(subject v1.Hash) string {
	return subject.Algorithm + "-" + subject.Hex
}

// referrers lists the referrers of subject, from the API or the tag schema.
func (rc *repoClient) referrers(ctx context.Context, subject v1.Hash, mode ReferrersMode) ([]v1.Descriptor, error) {
	var raw []byte
	switch mode {
	case ReferrersAPI:
		err := rc.o.retry(ctx, func() error {
			resp, err := rc.do(ctx, http.MethodGet, rc.url("referrers", subject.String()), []string{string(types.OCIImageIndex)})
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			if err := transport.CheckError(resp, http.StatusOK); err != nil {
				return err
			}
			raw, err = io.ReadAll(io.LimitReader(resp.Body, 16<<20))
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("listing referrers of %s in %s: %w", subject, rc.repo, err)
		}
	case ReferrersTagSchema:
		var err error
		raw, _, err = rc.manifest(ctx, fallbackTag(subject))
		if errors.Is(err, errNotFound) {
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("listing referrers of %s in %s (tag %s): %w", subject, rc.repo, fallbackTag(subject), err)
		}
	default:
		return nil, fmt.Errorf("unknown referrers mode %q", mode)
	}
	var idx v1.IndexManifest
	if err := json.Unmarshal(raw, &idx); err != nil {
		return nil, fmt.Errorf("listing referrers of %s in %s: not an image index: %w", subject, rc.repo, err)
	}
	return idx.Manifests, nil
}

// retry runs f until it succeeds, fails with an error not worth retrying,
// or the backoff's attempts are used up.
func (o *options) retry(ctx context.Context, f func() error) error {
	b := o.backoff
	var err error
	for attempt := 0; attempt < b.Steps; attempt++ {
		if attempt > 0 {
			d := time.Duration(float64(b.Duration) * math.Pow(b.Factor, float64(attempt-1)))
			if b.Jitter > 0 {
				d += time.Duration(rand.Float64() * b.Jitter * float64(d))
			}
			t := time.NewTimer(d)
			select {
			case <-ctx.Done():
				t.Stop()
				return errors.Join(err, ctx.Err())
			case <-t.C:
			}
		}
		if err = f(); err == nil || !retryable(err) {
			return err
		}
	}
	return err
}
