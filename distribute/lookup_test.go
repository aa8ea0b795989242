package distribute_test

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/twinforge/twinforge/distribute"
	"github.com/twinforge/twinforge/internal/regtest"
)

// Resolve answers a tag's digest with a HEAD request; missing tags and
// repositories wrap ErrNotFound; the referrer options filter and bound what
// Referrers reads; WithLoopbackHTTPUnsafe allows loopback HTTP without
// refusing other registries.
func TestLookupAdditions(t *testing.T) {
	regtest.NeedRegistry(t)
	ctx := context.Background()
	for _, kind := range registryKinds {
		t.Run(kind.name, func(t *testing.T) {
			reg := kind.start(t)
			_, img := newLayout(t)
			want := digestOf(t, img)
			arts := testArtifacts()
			if _, err := distribute.Push(ctx, img, mustRef(t, reg.Host+"/twinforge/app:v1"), arts, distribute.WithInsecureLoopbackUnsafe()); err != nil {
				t.Fatalf("Push: %v", err)
			}
			for _, opt := range []distribute.Option{distribute.WithInsecureLoopbackUnsafe(), distribute.WithLoopbackHTTPUnsafe()} {
				tag, _ := name.NewTag(reg.Host + "/twinforge/app:v1")
				d, err := distribute.Resolve(ctx, tag, opt)
				if err != nil || d.DigestStr() != want || d.Context().String() != tag.Context().String() {
					t.Fatalf("Resolve = %v, %v; want %s", d, err, want)
				}
				for _, missing := range []string{"/twinforge/app:nope", "/twinforge/nothing:v1"} {
					tag, _ := name.NewTag(reg.Host + missing)
					if _, err := distribute.Resolve(ctx, tag, opt); !errors.Is(err, distribute.ErrNotFound) {
						t.Errorf("Resolve %s: %v, want ErrNotFound", missing, err)
					}
				}
				missing := mustDigest(t, reg.Host+"/twinforge/app@sha256:"+strings.Repeat("0", 64))
				if _, err := distribute.FetchManifest(ctx, missing, opt); !errors.Is(err, distribute.ErrNotFound) {
					t.Errorf("FetchManifest of a missing digest: %v, want ErrNotFound", err)
				}
				if _, err := distribute.Resolve(ctx, tag); !errors.Is(err, distribute.ErrInsecure) {
					t.Errorf("Resolve over plain HTTP without the unsafe option: %v", err)
				}
			}

			subject := mustDigest(t, reg.Host+"/twinforge/app@"+want)
			insecure := distribute.WithInsecureLoopbackUnsafe()
			var listed int
			got, err := distribute.Referrers(ctx, subject, insecure, distribute.WithReferrerFilter(func(l []v1.Descriptor) ([]v1.Descriptor, error) {
				listed = len(l)
				return l[:1], nil
			}))
			if err != nil || listed != len(arts) || len(got) != 1 {
				t.Fatalf("Referrers with a filter = %d of %d, %v", len(got), listed, err)
			}
			errStop := errors.New("stop")
			if _, err := distribute.Referrers(ctx, subject, insecure, distribute.WithReferrerFilter(func([]v1.Descriptor) ([]v1.Descriptor, error) {
				return nil, errStop
			})); !errors.Is(err, errStop) {
				t.Errorf("Referrers with a failing filter: %v", err)
			}
			got, err = distribute.Referrers(ctx, subject, insecure, distribute.WithReferrerDataLimit(1))
			if err != nil || len(got) != len(arts) {
				t.Fatalf("Referrers with a data limit = %d, %v", len(got), err)
			}
			for _, f := range got {
				if f.Data != nil || f.Layer == nil || f.Layer.Size <= 1 {
					t.Errorf("referrer %s above the limit: data %q, layer %+v", f.ArtifactType, f.Data, f.Layer)
				}
			}
			got, err = distribute.Referrers(ctx, subject, insecure)
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range got {
				if f.Layer == nil || f.Layer.Size != int64(len(f.Data)) {
					t.Errorf("referrer %s: layer %+v for %d bytes", f.ArtifactType, f.Layer, len(f.Data))
				}
			}

			// With a Puller, the registry is pinged once per repository,
			// and the answers are the same.
			ct := &countingTransport{inner: http.DefaultTransport}
			cache, err := distribute.NewPuller(1, insecure, distribute.WithTransport(ct))
			if err != nil {
				t.Fatal(err)
			}
			opts := []distribute.Option{insecure, distribute.WithTransport(ct), distribute.WithPuller(cache)}
			for range 3 {
				tag, _ := name.NewTag(reg.Host + "/twinforge/app:v1")
				if d, err := distribute.Resolve(ctx, tag, opts...); err != nil || d.DigestStr() != want {
					t.Fatalf("Resolve with a Puller = %v, %v", d, err)
				}
				if _, err := distribute.FetchManifest(ctx, subject, opts...); err != nil {
					t.Fatalf("FetchManifest with a Puller: %v", err)
				}
				cached, err := distribute.Referrers(ctx, subject, opts...)
				if err != nil || len(cached) != len(got) {
					t.Fatalf("Referrers with a Puller = %d, %v", len(cached), err)
				}
				for i := range got {
					if cached[i].Descriptor.Digest != got[i].Descriptor.Digest || !bytes.Equal(cached[i].Data, got[i].Data) {
						t.Errorf("Referrers with a Puller: %+v, want %+v", cached[i], got[i])
					}
				}
			}
			if n := ct.pings(); n != 1 || cache.Len() != 1 {
				t.Errorf("%d pings, %d cached with a Puller; want 1, 1", n, cache.Len())
			}
			// Another repository replaces the one cached.
			other := mustDigest(t, reg.Host+"/twinforge/other@"+want)
			if _, err := distribute.FetchManifest(ctx, other, opts...); !errors.Is(err, distribute.ErrNotFound) {
				t.Errorf("FetchManifest of another repository: %v", err)
			}
			if n := ct.pings(); n != 2 || cache.Len() != 1 {
				t.Errorf("%d pings, %d cached after another repository; want 2, 1", n, cache.Len())
			}
		})
	}

	// Another registry is refused with WithInsecureLoopbackUnsafe, and reached
	// (over HTTPS) with WithLoopbackHTTPUnsafe.
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	remote := mustDigest(t, "registry.invalid/twinforge/app@sha256:"+strings.Repeat("0", 64))
	if _, err := distribute.FetchManifest(ctx, remote, distribute.WithInsecureLoopbackUnsafe()); !errors.Is(err, distribute.ErrInsecure) {
		t.Errorf("WithInsecureLoopbackUnsafe and a remote registry: %v", err)
	}
	if _, err := distribute.FetchManifest(ctx, remote, distribute.WithLoopbackHTTPUnsafe(), distribute.WithRetryBackoff(distribute.Backoff{Steps: 1})); err == nil || errors.Is(err, distribute.ErrInsecure) {
		t.Errorf("WithLoopbackHTTPUnsafe and a remote registry: %v, want a connection error", err)
	}
	if _, err := distribute.Referrers(ctx, remote, distribute.WithReferrerDataLimit(0)); err == nil {
		t.Error("WithReferrerDataLimit(0) accepted")
	}
	if _, err := distribute.Referrers(ctx, remote, distribute.WithReferrerFilter(nil)); err == nil {
		t.Error("WithReferrerFilter(nil) accepted")
	}
	if _, err := distribute.Referrers(ctx, remote, distribute.WithPuller(nil)); err == nil {
		t.Error("WithPuller(nil) accepted")
	}
}

// countingTransport counts the registry pings (GET /v2/) it carries over
// plain HTTP.
type countingTransport struct {
	inner http.RoundTripper
	mu    sync.Mutex
	n     int
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.URL.Path == "/v2/" && r.URL.Scheme == "http" { // after the HTTPS attempt the plain-HTTP server fails
		c.mu.Lock()
		c.n++
		c.mu.Unlock()
	}
	return c.inner.RoundTrip(r)
}

func (c *countingTransport) pings() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}
