package distribute_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/random"

	"github.com/twinforge/twinforge/distribute"
	"github.com/twinforge/twinforge/internal/regtest"
)

// newLayout writes a random image (3 layers of 1 MiB) as an OCI layout and
// returns the directory and the image read back through FromLayout.
func newLayout(t *testing.T) (string, v1.Image) {
	t.Helper()
	img, err := random.Image(1<<20, 3)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "layout")
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.AppendImage(img); err != nil {
		t.Fatal(err)
	}
	got, err := distribute.FromLayout(dir)
	if err != nil {
		t.Fatalf("FromLayout: %v", err)
	}
	return dir, got
}

func digestOf(t *testing.T, img v1.Image) string {
	t.Helper()
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d.String()
}

// testArtifacts are a Sigstore bundle and an in-toto statement, as
// twinforge attaches them.
func testArtifacts() []distribute.Artifact {
	return []distribute.Artifact{
		{
			ArtifactType: distribute.SigstoreBundleType,
			Data:         []byte(`{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json","verificationMaterial":{},"dsseEnvelope":{}}`),
			Annotations:  map[string]string{"dev.sigstore.bundle.predicateType": "https://slsa.dev/provenance/v1"},
		},
		{
			ArtifactType: "application/vnd.twinforge.provenance.v1+json",
			MediaType:    distribute.InTotoType,
			Data:         []byte(`{"_type":"https://in-toto.io/Statement/v1","subject":[],"predicateType":"https://slsa.dev/provenance/v1"}`),
		},
	}
}

func mustRef(t *testing.T, s string) name.Reference {
	t.Helper()
	r, err := name.ParseReference(s)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func mustRepo(t *testing.T, s string) name.Repository {
	t.Helper()
	r, err := name.NewRepository(s)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func mustDigest(t *testing.T, s string) name.Digest {
	t.Helper()
	d, err := name.NewDigest(s)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// crane runs bin/crane, an independent reader of the registries.
func crane(t *testing.T, args ...string) string {
	t.Helper()
	bin := regtest.Binary(t, "crane")
	cmd := exec.Command(bin, append(args, "--insecure")...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("crane %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return strings.TrimSpace(string(out))
}

// referrersOf lists a subject's referrers straight from a registry: its
// referrers API, or else the sha256-<hex> tag.
func referrersOf(t *testing.T, r *regtest.Registry, repo, digest string) map[string]v1.Descriptor {
	t.Helper()
	c := r.Client()
	resp, err := c.Get(r.URL() + "/v2/" + repo + "/referrers/" + digest)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		req, _ := http.NewRequest(http.MethodGet, r.URL()+"/v2/"+repo+"/manifests/"+strings.Replace(digest, ":", "-", 1), nil)
		req.Header.Set("Accept", "application/vnd.oci.image.index.v1+json")
		resp, err = c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ = io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusNotFound {
			return nil
		}
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("referrers of %s in %s: %s", digest, repo, resp.Status)
		}
	}
	var idx v1.IndexManifest
	if err := json.Unmarshal(body, &idx); err != nil {
		t.Fatalf("referrers of %s: %v", digest, err)
	}
	out := map[string]v1.Descriptor{}
	for _, d := range idx.Manifests {
		out[d.Digest.String()] = d
	}
	return out
}

// assertNoDanglingTags checks, on the real registry, that every tag of repo
// points at a manifest whose blobs and child manifests are all there.
func assertNoDanglingTags(t *testing.T, r *regtest.Registry, repo string) {
	t.Helper()
	for _, tag := range r.Tags(t, repo) {
		req, _ := http.NewRequest(http.MethodGet, r.URL()+"/v2/"+repo+"/manifests/"+tag, nil)
		req.Header.Set("Accept", "application/vnd.oci.image.manifest.v1+json,application/vnd.oci.image.index.v1+json,application/vnd.docker.distribution.manifest.v2+json")
		resp, err := r.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("tag %s:%s points at a missing manifest: %s", repo, tag, resp.Status)
			continue
		}
		var m struct {
			Config    *v1.Descriptor  `json:"config"`
			Layers    []v1.Descriptor `json:"layers"`
			Manifests []v1.Descriptor `json:"manifests"`
		}
		if err := json.Unmarshal(body, &m); err != nil {
			t.Errorf("tag %s:%s points at a corrupt manifest: %v", repo, tag, err)
			continue
		}
		for _, c := range m.Manifests {
			if !r.Exists(t, repo, "manifests", c.Digest.String()) {
				t.Errorf("tag %s:%s lists manifest %s, which is missing", repo, tag, c.Digest)
			}
		}
		if m.Config != nil {
			m.Layers = append(m.Layers, *m.Config)
		}
		for _, l := range m.Layers {
			if !r.Exists(t, repo, "blobs", l.Digest.String()) {
				t.Errorf("tag %s:%s needs blob %s, which is missing", repo, tag, l.Digest)
			}
		}
	}
}

// dockerConfig points the default keychain at a config.json with these
// credentials for host.
func dockerConfig(t *testing.T, host, user, password string) {
	t.Helper()
	dir := t.TempDir()
	auth := fmt.Sprintf(`{"auths":{%q:{"username":%q,"password":%q}}}`, host, user, password)
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(auth), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("DOCKER_CONFIG", dir)
}

// fast retries keep fault tests short; the schedule is the same shape.
var fastRetries = distribute.WithRetryBackoff(distribute.Backoff{Duration: 10_000_000, Factor: 2, Steps: 4})
