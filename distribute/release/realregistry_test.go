package release_test

import (
	"context"
	"crypto"
	"errors"
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
	"github.com/twinforge/twinforge/internal/regtest"
)

// TestIndexAcrossRealRegistries serves a release index over HTTP on
// loopback, replicates it as an OCI artifact to a distribution registry
// (no referrers API) and a registry with the referrers API, reads it from
// both, then makes one region serve an older signed index: its reader
// refuses it as a rollback while the other region still verifies.
func TestIndexAcrossRealRegistries(t *testing.T) {
	regs := []*regtest.Registry{regtest.StartDistribution(t), regtest.StartReferrers(t)}
	dir := t.TempDir()
	var rootKeys []*release.Key
	for _, n := range []string{"r1", "r2", "r3"} {
		k, err := release.GenerateKey(filepath.Join(dir, n+".pem"))
		if err != nil {
			t.Fatal(err)
		}
		rootKeys = append(rootKeys, k)
	}
	repo, err := release.Init(filepath.Join(dir, "index"), release.InitConfig{RootKeys: rootKeys, RootThreshold: 2})
	if err != nil {
		t.Fatal(err)
	}
	team, err := release.GenerateKey(filepath.Join(dir, "payments.pem"))
	if err != nil {
		t.Fatal(err)
	}
	if err := repo.AddTeam("payments", []crypto.PublicKey{team.Public()}, 1, []string{"payments/*"}); err != nil {
		t.Fatal(err)
	}
	digest := func(b byte) string { return "sha256:" + strings.Repeat("a", 63) + string(rune('0'+b)) }
	release1 := release.Target{Repository: "payments/app", Tag: "1.2", Digest: digest(1), Size: 400}
	if _, err := repo.Release("payments", release1, []*release.Key{team}); err != nil {
		t.Fatal(err)
	}
	oldFiles, err := repo.Files()
	if err != nil {
		t.Fatal(err)
	}
	release2 := release.Target{Repository: "payments/app", Tag: "1.2", Digest: digest(2), Size: 400}
	if _, err := repo.Release("payments", release2, []*release.Key{team}); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.FileServer(http.Dir(filepath.Join(dir, "index", release.MetadataDir))))
	t.Cleanup(srv.Close)
	root, err := os.ReadFile(filepath.Join(dir, "index", release.MetadataDir, "1.root.json"))
	if err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	reg := []distribute.Option{distribute.WithInsecureLoopbackUnsafe()}
	var dests []name.Repository
	for _, r := range regs {
		d, err := name.NewRepository(r.Host + "/payments/app")
		if err != nil {
			t.Fatal(err)
		}
		dests = append(dests, d)
	}
	if _, results, err := release.Replicate(ctx, release.ClientConfig{URL: srv.URL, InitialRoot: root}, dests, reg...); err != nil {
		t.Fatalf("replicate: %v (%+v)", err, results)
	}
	states := []string{t.TempDir(), t.TempDir()}
	read := func(i int) (*release.Index, error) {
		c, err := release.NewClient(release.ClientConfig{URL: release.OCIURL(dests[i]), InitialRoot: root, StateDir: states[i], Registry: reg})
		if err != nil {
			t.Fatal(err)
		}
		return c.Refresh(ctx)
	}
	for i := range dests {
		ix, err := read(i)
		if err != nil {
			t.Fatalf("%s: %v", dests[i], err)
		}
		if _, err := ix.Verify("payments/app", "1.2", release2.Digest, time.Now()); err != nil {
			t.Fatalf("%s: %v", dests[i], err)
		}
		if _, err := ix.Verify("payments/app", "1.2", release1.Digest, time.Now()); err == nil {
			t.Fatalf("%s: the superseded digest verifies", dests[i])
		}
	}
	// Region 0 is compromised and serves the older index.
	if _, err := release.PushIndex(ctx, oldFiles, dests[0].Tag(release.IndexTag), reg...); err != nil {
		t.Fatal(err)
	}
	_, err = read(0)
	var re *release.Error
	if !errors.As(err, &re) || re.Check != release.CheckRollback {
		t.Fatalf("the older index in %s: got %v, want a rollback refusal", dests[0], err)
	}
	if ix, err := read(1); err != nil {
		t.Fatalf("%s: %v", dests[1], err)
	} else if _, err := ix.Verify("payments/app", "1.2", release2.Digest, time.Now()); err != nil {
		t.Fatal(err)
	}
}
