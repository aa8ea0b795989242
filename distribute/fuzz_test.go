package distribute

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// fuzzRegistry is a registry whose content a fuzz input decides: the
// manifests, the blob and the referrers listing it serves. It implements
// just what the readers of manifests ask (GET and HEAD of manifests and
// blobs, the referrers API).
type fuzzRegistry struct {
	*httptest.Server
	host string

	mu        sync.Mutex
	manifests map[string][]byte // by digest or tag
	blobs     map[string][]byte // by digest
	referrers []byte            // the listing of every subject
}

func newFuzzRegistry(f *testing.F) *fuzzRegistry {
	r := &fuzzRegistry{}
	r.Server = httptest.NewServer(http.HandlerFunc(r.serve))
	f.Cleanup(r.Close)
	r.host = strings.TrimPrefix(r.URL, "http://")
	return r
}

func digestOf(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// set replaces what the registry serves.
func (r *fuzzRegistry) set(manifests map[string][]byte, blobs [][]byte, referrers []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.manifests, r.blobs, r.referrers = manifests, map[string][]byte{}, referrers
	for _, b := range blobs {
		r.blobs[digestOf(b)] = b
	}
}

func (r *fuzzRegistry) serve(w http.ResponseWriter, req *http.Request) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if req.URL.Path == "/v2/" {
		return
	}
	rest, ok := strings.CutPrefix(req.URL.Path, "/v2/fuzz/app/")
	kind, ref, ok2 := strings.Cut(rest, "/")
	if !ok || !ok2 {
		http.NotFound(w, req)
		return
	}
	var body []byte
	found := false
	switch kind {
	case "manifests":
		body, found = r.manifests[ref]
		if found {
			var probe struct {
				MediaType string `json:"mediaType"`
			}
			_ = json.Unmarshal(body, &probe)
			if probe.MediaType == "" {
				probe.MediaType = string(types.OCIManifestSchema1)
			}
			w.Header().Set("Content-Type", probe.MediaType)
			w.Header().Set("Docker-Content-Digest", digestOf(body))
		}
	case "blobs":
		body, found = r.blobs[ref]
		if found {
			w.Header().Set("Docker-Content-Digest", ref)
		}
	case "referrers":
		body, found = r.referrers, r.referrers != nil
		w.Header().Set("Content-Type", string(types.OCIImageIndex))
	}
	if !found {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprint(w, `{"errors":[{"code":"MANIFEST_UNKNOWN","message":"unknown"}]}`)
		return
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	if req.Method != http.MethodHead {
		_, _ = w.Write(body)
	}
}

// FuzzRegistryManifests: manifests, indexes and referrer listings come from
// registries, which answer what they like. Reading them never panics, and
// what the readers return is what the registry served, checked: a fetched
// manifest hashes to the digest returned, a referrer's data to its layer
// descriptor, and a read-back succeeds only when every blob the manifest
// names is there with its digest and size.
func FuzzRegistryManifests(f *testing.F) {
	reg := newFuzzRegistry(f)
	opts, err := makeOptions(WithInsecureLoopbackUnsafe(), WithBlobReadBack(), WithRetryBackoff(Backoff{Duration: 1, Factor: 1, Steps: 1}))
	if err != nil {
		f.Fatal(err)
	}
	subject := digestOf([]byte("the subject image"))
	blob := []byte(`{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json"}`)
	manifest := fmt.Appendf(nil, `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","artifactType":"application/vnd.dev.sigstore.bundle.v0.3+json",`+
		`"config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},`+
		`"layers":[{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json","digest":%q,"size":%d}],"subject":{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":%q,"size":10}}`,
		digestOf(blob), len(blob), subject)
	f.Add(manifest, []byte(nil), blob)
	f.Add(manifest, fmt.Appendf(nil, `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":%q,"size":%d}]}`, digestOf(manifest), len(manifest)), blob)
	f.Add([]byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"digest":"sha256:`+strings.Repeat("0", 64)+`","size":1}]}`), []byte(nil), []byte("{}"))
	f.Add([]byte(`{"layers":[{"mediaType":"application/vnd.docker.image.rootfs.foreign.diff.tar.gzip","digest":"sha256:`+strings.Repeat("1", 64)+`","size":-1}]}`), []byte(`{"manifests":null}`), []byte(nil))

	f.Fuzz(func(t *testing.T, manifest, listing, blob []byte) {
		ctx := context.Background()
		d := digestOf(manifest)
		manifests := map[string][]byte{d: manifest, "v1": manifest}
		if listing == nil {
			listing = fmt.Appendf(nil, `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":%q,"size":%d}]}`, d, len(manifest))
		} else {
			manifests[digestOf(listing)] = listing
		}
		served := map[string]int64{digestOf(blob): int64(len(blob)), digestOf([]byte("{}")): 2}
		reg.set(manifests, [][]byte{blob, []byte("{}")}, listing)
		repo, err := name.NewRepository(reg.host+"/fuzz/app", name.Insecure)
		if err != nil {
			t.Fatal(err)
		}

		m, err := fetchManifest(ctx, opts, repo.Tag("v1"))
		if err == nil && (m.Ref.DigestStr() != d || !bytes.Equal(m.Raw, manifest)) {
			t.Fatalf("FetchManifest returned %s, %d bytes; the registry served %s", m.Ref.DigestStr(), len(m.Raw), d)
		}

		fetched, err := referrersOf(ctx, opts, repo.Digest(subject))
		if err == nil {
			for _, r := range fetched {
				if r.Data == nil {
					continue
				}
				if r.Layer == nil || digestOf(r.Data) != r.Layer.Digest.String() || int64(len(r.Data)) != r.Layer.Size {
					t.Fatalf("referrer %s: data of %d bytes with digest %s does not match its layer %+v", r.Descriptor.Digest, len(r.Data), digestOf(r.Data), r.Layer)
				}
			}
		}

		r, err := opts.reader(repo)
		if err != nil {
			t.Fatal(err)
		}
		h, _ := v1.NewHash(d)
		raw, err := r.readBack(ctx, h, manifest)
		if err != nil {
			return
		}
		if !bytes.Equal(raw, manifest) {
			t.Fatal("read back other bytes than the registry served")
		}
		var parsed struct {
			Config *v1.Descriptor  `json:"config"`
			Layers []v1.Descriptor `json:"layers"`
		}
		if err := json.Unmarshal(manifest, &parsed); err != nil {
			t.Fatalf("read back a manifest that is not JSON: %v", err)
		}
		descs := parsed.Layers
		if parsed.Config != nil {
			descs = append(descs, *parsed.Config)
		}
		for _, desc := range descs {
			if size, ok := served[desc.Digest.String()]; desc.MediaType.IsDistributable() && (!ok || desc.Size != size) {
				t.Fatalf("read back succeeded although blob %s (%d bytes) is not in the registry", desc.Digest, desc.Size)
			}
		}
	})
}

// FuzzFetchByDigest: a manifest fetched by digest is the one named, or an
// ErrVerification, whatever the registry serves under that name.
func FuzzFetchByDigest(f *testing.F) {
	reg := newFuzzRegistry(f)
	opts, err := makeOptions(WithInsecureLoopbackUnsafe(), WithRetryBackoff(Backoff{Duration: 1, Factor: 1, Steps: 1}))
	if err != nil {
		f.Fatal(err)
	}
	f.Add([]byte(`{"schemaVersion":2}`), true)
	f.Add([]byte(`{"schemaVersion":2}`), false)
	f.Fuzz(func(t *testing.T, served []byte, honest bool) {
		want := digestOf([]byte("the manifest asked for"))
		if honest {
			want = digestOf(served)
		}
		reg.set(map[string][]byte{want: served}, nil, nil)
		repo, err := name.NewRepository(reg.host+"/fuzz/app", name.Insecure)
		if err != nil {
			t.Fatal(err)
		}
		m, err := fetchManifest(context.Background(), opts, repo.Digest(want))
		switch {
		case err == nil && m.Ref.DigestStr() != want:
			t.Fatalf("asked for %s, got %s", want, m.Ref.DigestStr())
		case err == nil && digestOf(m.Raw) != want:
			t.Fatalf("asked for %s, got bytes hashing to %s", want, digestOf(m.Raw))
		case err != nil && !honest && !errors.Is(err, ErrVerification):
			t.Fatalf("other bytes than asked for: %v, want ErrVerification", err)
		}
	})
}
