package admission

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/twinforge/twinforge/distribute"
	"github.com/twinforge/twinforge/distribute/release"
)

// releaseFixture is a release index on disk, served over HTTP on loopback,
// and a reader of it.
type releaseFixture struct {
	repo   *release.Repository
	srv    *httptest.Server
	root   []byte
	client *release.Client
}

func newReleaseFixture(t testing.TB, opts ...release.Option) *releaseFixture {
	t.Helper()
	dir := t.TempDir()
	k, err := release.GenerateKey(filepath.Join(dir, "root.pem"))
	if err != nil {
		t.Fatal(err)
	}
	repo, err := release.Init(filepath.Join(dir, "index"), release.InitConfig{RootKeys: []*release.Key{k}, RootThreshold: 1}, opts...)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.FileServer(http.Dir(filepath.Join(dir, "index", release.MetadataDir))))
	t.Cleanup(srv.Close)
	root, err := os.ReadFile(filepath.Join(dir, "index", release.MetadataDir, "1.root.json"))
	if err != nil {
		t.Fatal(err)
	}
	c, err := release.NewClient(release.ClientConfig{URL: srv.URL, InitialRoot: root, StateDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	return &releaseFixture{repo: repo, srv: srv, root: root, client: c}
}

// release releases an image pushed by tag, with its provenance statement.
func (f *releaseFixture) release(t testing.TB, p pushed, provenance []byte) {
	t.Helper()
	ref, err := name.ParseReference(p.tag)
	if err != nil {
		t.Fatal(err)
	}
	tgt := release.Target{Repository: ref.Context().RepositoryStr(), Tag: ref.Identifier(), Digest: p.digest, Size: 100}
	if provenance != nil {
		sum := sha256.Sum256(provenance)
		tgt.Provenance = "sha256:" + hex.EncodeToString(sum[:])
	}
	if _, err := f.repo.Release("", tgt, nil); err != nil {
		t.Fatal(err)
	}
}

// TestReleaseIndex: with a release index, an image is admitted only when
// its tag is released as the digest the registry serves; a moved tag, an
// unreleased digest and a stale index are denied, naming the check.
func TestReleaseIndex(t *testing.T) {
	reg := newMemRegistry(t)
	key := newTestKey(t)
	s := key.signer(t)
	f := newReleaseFixture(t)
	app := signedImage(t, reg.host, "payments/app", "1.2", s)
	f.release(t, app, nil)
	other := signedImage(t, reg.host, "payments/app", "other", s)
	wh := newTestWebhook(t, Source{PolicyFile: keyPolicy(t, t.TempDir(), key)}, WithReleaseIndex(f.client, time.Hour))

	for _, image := range []string{app.tag, app.pinned} {
		if r := decide(t, wh, "default", image); !r.Allowed {
			t.Fatalf("%s denied: %s", image, message(r))
		}
	}
	// Signed but never released.
	r := decide(t, wh, "default", other.pinned)
	if r.Allowed || !strings.Contains(message(r), "release.notListed") {
		t.Fatalf("an unreleased digest: %v %s", r.Allowed, message(r))
	}
	// The registry moves the tag to another validly signed image.
	moved := signedImage(t, reg.host, "payments/app", "1.2", s)
	r = decide(t, wh, "default", app.tag)
	if r.Allowed || !strings.Contains(message(r), "release.notListed") || !strings.Contains(message(r), moved.digest) {
		t.Fatalf("a moved tag: %v %s", r.Allowed, message(r))
	}
	// The index names another provenance than the image carries.
	g := newReleaseFixture(t)
	g.release(t, app, []byte("some other statement"))
	wh2 := newTestWebhook(t, Source{PolicyFile: keyPolicy(t, t.TempDir(), key)}, WithReleaseIndex(g.client, time.Hour))
	if r := decide(t, wh2, "default", app.pinned); r.Allowed || !strings.Contains(message(r), "release.provenance") {
		t.Fatalf("another provenance: %v %s", r.Allowed, message(r))
	}

	// An index signed long ago has expired: nothing is admitted.
	stale := newReleaseFixture(t, release.WithClock(func() time.Time { return time.Now().Add(-72 * time.Hour) }))
	stale.release(t, app, nil)
	wh3 := newTestWebhook(t, Source{PolicyFile: keyPolicy(t, t.TempDir(), key)}, WithReleaseIndex(stale.client, time.Hour))
	if r := decide(t, wh3, "default", app.pinned); r.Allowed || !strings.Contains(message(r), "no release index has verified") || !strings.Contains(message(r), "expired") {
		t.Fatalf("a stale index: %v %s", r.Allowed, message(r))
	}
}

// TestReleaseIndexCompromisedRegion: the cluster reads its region's index
// from the regional registry (an OCI artifact). When the region starts
// serving an older, validly signed index that releases a vulnerable digest
// as the tag, the webhook refuses the rollback, keeps the index it trusted,
// and goes on denying the old digest.
func TestReleaseIndexCompromisedRegion(t *testing.T) {
	reg := newMemRegistry(t)
	key := newTestKey(t)
	s := key.signer(t)
	f := newReleaseFixture(t)
	vulnerable := signedImage(t, reg.host, "payments/app", "1.2", s)
	f.release(t, vulnerable, nil)
	oldFiles, err := f.repo.Files()
	if err != nil {
		t.Fatal(err)
	}
	fixed := signedImage(t, reg.host, "payments/app", "1.2", s)
	f.release(t, fixed, nil)
	newFiles, err := f.repo.Files()
	if err != nil {
		t.Fatal(err)
	}
	region, err := name.NewRepository(reg.host + "/payments/app")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	regOpts := []distribute.Option{distribute.WithInsecureLoopbackUnsafe()}
	if _, err := release.PushIndex(ctx, newFiles, region.Tag(release.IndexTag), regOpts...); err != nil {
		t.Fatal(err)
	}
	c, err := release.NewClient(release.ClientConfig{URL: release.OCIURL(region), InitialRoot: f.root, StateDir: t.TempDir(), Registry: regOpts})
	if err != nil {
		t.Fatal(err)
	}
	wh := newTestWebhook(t, Source{PolicyFile: keyPolicy(t, t.TempDir(), key)}, WithReleaseIndex(c, time.Hour))
	if r := decide(t, wh, "default", fixed.pinned); !r.Allowed {
		t.Fatalf("the released digest: %s", message(r))
	}
	if _, err := release.PushIndex(ctx, oldFiles, region.Tag(release.IndexTag), regOpts...); err != nil {
		t.Fatal(err)
	}
	wh.readRelease()
	if last, _ := wh.releaseErr.Load().(string); !strings.Contains(last, release.CheckRollback) {
		t.Fatalf("the older index was not refused as a rollback: %q", last)
	}
	if r := decide(t, wh, "default", vulnerable.pinned); r.Allowed || !strings.Contains(message(r), "release.notListed") {
		t.Fatalf("the rolled-back digest: %v %s", r.Allowed, message(r))
	}
	if r := decide(t, wh, "default", fixed.pinned); !r.Allowed {
		t.Fatalf("the released digest after the refused rollback: %s", message(r))
	}
}
