package release

import (
	"context"
	"crypto"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"

	"github.com/twinforge/twinforge/distribute"
)

// TestIndexAsArtifact: the index travels as an OCI artifact, is read back
// from it with the same checks, and a region serving an older artifact is
// refused by a reader that saw the newer one.
func TestIndexAsArtifact(t *testing.T) {
	f := newFixture(t)
	pay := f.teamKey("payments")
	f.repo.AddTeam("payments", []crypto.PublicKey{pay.Public()}, 1, []string{"payments/*"})
	old := f.release("payments", "payments/app", "1.2", pay)
	oldFiles, err := f.repo.Files()
	if err != nil {
		t.Fatal(err)
	}
	fixed := f.release("payments", "payments/app", "1.2", pay)

	srv := httptest.NewServer(registry.New())
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "http://")
	ctx := context.Background()
	reg := []distribute.Option{distribute.WithInsecureLoopbackUnsafe()}
	eu, err := name.NewRepository(host + "/eu/payments/app")
	if err != nil {
		t.Fatal(err)
	}
	us, err := name.NewRepository(host + "/us/payments/app")
	if err != nil {
		t.Fatal(err)
	}

	// Replicate exports the served index (verifying it) to both regions.
	ix, results, err := Replicate(ctx, ClientConfig{URL: f.srv.URL, InitialRoot: f.rootJSON()}, []name.Repository{eu, us}, reg...)
	if err != nil {
		t.Fatal(err)
	}
	if len(results) != 2 || results[0].Digest == "" || results[0].Digest != results[1].Digest {
		t.Fatalf("results %+v", results)
	}
	if _, err := ix.Verify("payments/app", "1.2", fixed.Digest, now()); err != nil {
		t.Fatal(err)
	}
	euState, usState := t.TempDir(), t.TempDir()
	reader := func(repo name.Repository, state string) *Client {
		c, err := NewClient(ClientConfig{URL: OCIURL(repo), InitialRoot: f.rootJSON(), StateDir: state, Registry: reg})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	for _, r := range []struct {
		repo  name.Repository
		state string
	}{{eu, euState}, {us, usState}} {
		ix := f.refresh(reader(r.repo, r.state))
		if _, err := ix.Verify("payments/app", "1.2", fixed.Digest, now()); err != nil {
			t.Fatalf("%s: %v", r.repo, err)
		}
	}
	// The us region is compromised: it serves the older, validly signed
	// index again. Its readers, who trusted the newer one, refuse it.
	if _, err := PushIndex(ctx, oldFiles, us.Tag(IndexTag), reg...); err != nil {
		t.Fatal(err)
	}
	_, err = reader(us, usState).Refresh(ctx)
	wantCheck(t, err, CheckRollback)
	// The eu region is unaffected.
	if _, err := f.refresh(reader(eu, euState)).Verify("payments/app", "1.2", fixed.Digest, now()); err != nil {
		t.Fatal(err)
	}
	_ = old

	// Something else under the tag is not an index.
	if _, err := distribute.PushFiles(ctx, us.Tag(IndexTag), "application/vnd.example.other", []distribute.File{{Name: "timestamp.json", MediaType: MetadataMediaType, Data: []byte("{}")}}, reg...); err != nil {
		t.Fatal(err)
	}
	_, err = reader(us, t.TempDir()).Refresh(ctx)
	wantCheck(t, err, CheckIntegrity)
}

// TestExportRefusesStale: an expired index is not spread to regions.
func TestExportRefusesStale(t *testing.T) {
	f := newFixture(t, WithClock(func() time.Time { return time.Now().Add(-72 * time.Hour) }))
	_, _, err := Export(context.Background(), ClientConfig{URL: f.srv.URL})
	wantCheck(t, err, CheckExpired)
}
