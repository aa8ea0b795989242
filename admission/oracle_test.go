package admission

import (
	"context"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"

	"github.com/twinforge/twinforge/attest/evidence"
	"github.com/twinforge/twinforge/distribute"
)

// Anyone who reaches the webhook's port can POST a review about any image,
// and the webhook reads registries with credentials of its own: by default
// a denial tells such a caller nothing a puller of the image alone could
// know. Not whether it exists, not its digest, not who signed it; the
// reason is in the webhook's log under the review's uid.
func TestDenialsRevealNothing(t *testing.T) {
	reg := newMemRegistry(t)
	key := newTestKey(t)
	dir := t.TempDir()
	img, _, _ := randomImage(t)
	unsigned := push(t, reg.host, "team/unsigned", "v1", img, nil)
	img, d, m := randomImage(t)
	stranger := newTestKey(t)
	strangers := push(t, reg.host, "team/stranger", "v1", img, evidenceFor(t, stranger.signer(t), reg.host+"/team/stranger", d, m, true))
	revoked := signedImage(t, reg.host, "team/withdrawn", "v1", key.signer(t))
	revocations := dir + "/revoked.txt"
	writeTestFile(t, revocations, revoked.digest+"\n")

	log, logs := captureLogs(t)
	wh, err := New(Source{PolicyFile: keyPolicy(t, dir, key), RevocationsFile: revocations},
		WithPollInterval(0), WithInsecureLoopbackUnsafe(), WithLogger(log))
	if err != nil {
		t.Fatal(err)
	}
	defer wh.Close()

	uniform := "not verified (fail closed)"
	for _, tc := range []struct {
		name, image string
		hidden      []string // never in the denial
		logged      string   // in the log's reason
	}{
		{"unsigned", unsigned.tag, []string{unsigned.digest, "signature", "not signed"}, `check "signature"`},
		{"another signer", strangers.tag, []string{strangers.digest, "identity", "public key"}, `check "identity"`},
		{"no such image", reg.host + "/team/nothing:v1", []string{"not found", "MANIFEST_UNKNOWN", "NAME_UNKNOWN"}, "not found"},
		{"no such digest", reg.host + "/team/unsigned@sha256:" + strings.Repeat("0", 64), []string{"not found"}, "not found"},
		{"revoked tag", revoked.tag, []string{revoked.digest, "revoked"}, "revocation list"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			logs.reset()
			resp := decide(t, wh, "default", tc.image)
			msg := message(resp)
			if resp.Allowed {
				t.Fatal("admitted")
			}
			if !strings.Contains(msg, tc.image) || !strings.Contains(msg, uniform) || !strings.Contains(msg, string(resp.UID)) {
				t.Errorf("denial %q does not name the image, say it was not verified and give the uid", msg)
			}
			for _, h := range tc.hidden {
				if strings.Contains(msg, h) {
					t.Errorf("denial %q reveals %q", msg, h)
				}
			}
			found := false
			for _, rec := range logs.take("INFO", "image decision") {
				if r, _ := rec["reason"].(string); strings.Contains(r, tc.logged) && rec["uid"] == string(resp.UID) {
					found = true
				}
			}
			if !found {
				t.Errorf("the log has no reason %q for uid %s", tc.logged, resp.UID)
			}
		})
	}
	// What follows from the request and the configuration alone still says
	// why.
	if msg := message(decide(t, wh, "default", "Not An Image!")); !strings.Contains(msg, "invalid image reference") {
		t.Errorf("invalid reference: %q", msg)
	}
	if msg := message(decide(t, wh, "default", revoked.pinned)); !strings.Contains(msg, "revoked") {
		t.Errorf("revoked digest named by the caller: %q", msg)
	}
}

// panicky is a registry client whose every call panics.
type panicky struct{}

func (panicky) resolve(context.Context, name.Tag, authn.Keychain) (name.Digest, error) {
	panic("resolver bug")
}
func (panicky) evidence(context.Context, name.Digest, authn.Keychain) (*evidence.Evidence, error) {
	panic("evidence bug")
}

// A panic while resolving a tag (or anywhere else in a decision) denies the
// image and leaves the webhook running.
func TestPanicDenies(t *testing.T) {
	key := newTestKey(t)
	wh := newTestWebhook(t, Source{PolicyFile: keyPolicy(t, t.TempDir(), key)})
	wh.registry = panicky{}
	for _, image := range []string{"registry.test/team/app:v1", "registry.test/team/app@sha256:" + strings.Repeat("1", 64)} {
		resp := decide(t, wh, "default", image)
		if resp.Allowed || !strings.Contains(message(resp), "panicked") {
			t.Fatalf("%s: allowed %v: %s", image, resp.Allowed, message(resp))
		}
	}
	if resp := decide(t, wh, "default", "registry.test/team/app:v2"); resp.Allowed {
		t.Fatal("admitted after a panic")
	}
}

// Bundles anyone pushed beside the real ones (signed by others, more of
// them than the webhook verifies) do not keep a signed image out: the
// webhook verifies those its tenant's identities signed first.
func TestJunkReferrers(t *testing.T) {
	reg := newMemRegistry(t)
	key := newTestKey(t)
	junk := newTestKey(t).signer(t)
	img, d, m := randomImage(t)
	repo := reg.host + "/team/app"
	artifacts := evidenceFor(t, key.signer(t), repo, d, m, true)
	for range 20 {
		artifacts = append(artifacts, evidenceFor(t, junk, repo, d, m, true)...)
	}
	good := push(t, reg.host, "team/app", "v1", img, artifacts)
	wh := newTestWebhook(t, Source{PolicyFile: keyPolicy(t, t.TempDir(), key)})
	if resp := decide(t, wh, "default", good.tag); !resp.Allowed {
		t.Fatalf("a signed image with %d junk bundles beside its own was denied: %s", len(artifacts)-2, message(resp))
	}
	// Junk alone is still junk.
	img, d, m = randomImage(t)
	var only []distribute.Artifact
	for range 3 {
		only = append(only, evidenceFor(t, junk, reg.host+"/team/junk", d, m, true)...)
	}
	bad := push(t, reg.host, "team/junk", "v1", img, only)
	if resp := decide(t, wh, "default", bad.tag); resp.Allowed || !strings.Contains(message(resp), `check "identity"`) {
		t.Fatalf("junk only: allowed %v: %s", resp.Allowed, message(resp))
	}
}
