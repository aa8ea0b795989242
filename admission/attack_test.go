package admission

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/sigstore/sigstore-go/pkg/bundle"

	"github.com/twinforge/twinforge/attest/verify"
	"github.com/twinforge/twinforge/distribute"
	"github.com/twinforge/twinforge/internal/sigtest"
)

// TestWebhookDeniesAttacks puts each piece of forged evidence of
// sigtest's catalogue in a registry, as referrers of its image, and asks
// the webhook to admit a pod running the image under the attack's policy
// and trusted root: each is denied, naming the check the catalogue names;
// the good evidence is admitted, and so is good evidence beside a bundle
// that no policy identity signed, which anyone may attach to an image.
func TestWebhookDeniesAttacks(t *testing.T) {
	auth, err := sigtest.New()
	if err != nil {
		t.Fatal(err)
	}
	attacks, err := sigtest.Attacks(auth)
	if err != nil {
		t.Fatal(err)
	}
	reg := newMemRegistry(t)
	for i, at := range attacks {
		t.Run(at.Name, func(t *testing.T) {
			repo := fmt.Sprintf("%s/attacks/a%d", reg.host, i)
			putManifest(t, reg.host, fmt.Sprintf("attacks/a%d", i), at.Digest, at.Manifest)
			var artifacts []distribute.Artifact
			for _, b := range append([]*bundle.Bundle{at.Provenance, at.Image}, at.Verdicts...) {
				if b == nil {
					continue
				}
				data, err := b.MarshalJSON()
				if err != nil {
					t.Fatal(err)
				}
				artifacts = append(artifacts, distribute.Artifact{ArtifactType: verify.BundleArtifactType, Data: data})
			}
			if len(artifacts) > 0 {
				subject, err := name.NewDigest(repo+"@"+at.Digest, name.Insecure)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := distribute.Attach(context.Background(), subject, artifacts, distribute.WithInsecureLoopbackUnsafe()); err != nil {
					t.Fatal(err)
				}
			}
			dir := t.TempDir()
			policy, trusted := filepath.Join(dir, "policy.yaml"), filepath.Join(dir, "trusted_root.json")
			writeTestFile(t, policy, at.Policy)
			tr, err := at.TrustedRoot.MarshalJSON()
			if err != nil {
				t.Fatal(err)
			}
			writeTestFile(t, trusted, string(tr))
			wh := newTestWebhook(t, Source{PolicyFile: policy, TrustedRootFile: trusted})
			resp := decide(t, wh, "default", repo+"@"+at.Digest)
			if at.Check == "" || at.IgnoredInRegistry {
				if !resp.Allowed {
					t.Fatalf("denied, though its evidence verifies without what a stranger attached: %s", message(resp))
				}
				return
			}
			if resp.Allowed {
				t.Fatalf("admitted; want a denial by %s", at.Check)
			}
			if want := fmt.Sprintf("check %q", at.Check); !strings.Contains(message(resp), want) {
				t.Fatalf("denial does not name %s: %s", want, message(resp))
			}
		})
	}
}

// putManifest stores raw as the manifest of repo by its digest.
func putManifest(t *testing.T, host, repo, digest string, raw []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPut, "http://"+host+"/v2/"+repo+"/manifests/"+digest, bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/vnd.oci.image.manifest.v1+json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("putting the manifest of %s: %s", repo, resp.Status)
	}
}
