package attest

import (
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sigstore/sigstore-go/pkg/tuf"
	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/twinforge/twinforge/attest/verify"
)

// tufRepo is a TUF repository served over HTTP on loopback, written with
// go-tuf's metadata package: root, targets, snapshot and timestamp roles
// with ed25519 keys, consistent snapshots, and trusted_root.json as its one
// target.
type tufRepo struct {
	t    testing.TB
	dir  string
	srv  *httptest.Server
	keys map[string]ed25519.PrivateKey

	root      *metadata.Metadata[metadata.RootType]
	targets   *metadata.Metadata[metadata.TargetsType]
	snapshot  *metadata.Metadata[metadata.SnapshotType]
	timestamp *metadata.Metadata[metadata.TimestampType]
	requests  []string
}

func newTUFRepo(t testing.TB, trustedRoot []byte) *tufRepo {
	t.Helper()
	r := &tufRepo{t: t, dir: t.TempDir(), keys: map[string]ed25519.PrivateKey{}}
	expiry := time.Now().Add(24 * time.Hour).UTC()
	r.root = metadata.Root(expiry)
	for _, role := range []string{"root", "targets", "snapshot", "timestamp"} {
		r.addKey(role, role)
	}
	r.targets = metadata.Targets(expiry)
	r.snapshot = metadata.Snapshot(expiry)
	r.timestamp = metadata.Timestamp(expiry)
	r.writeRoot("root")
	r.publishTarget(trustedRoot)
	mux := http.NewServeMux()
	mux.Handle("/", http.FileServer(http.Dir(r.dir)))
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.requests = append(r.requests, req.URL.Path)
		mux.ServeHTTP(w, req)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

// addKey makes a new key named name and gives it to role.
func (r *tufRepo) addKey(name, role string) string {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		r.t.Fatal(err)
	}
	r.keys[name] = priv
	k, err := metadata.KeyFromPublicKey(priv.Public())
	if err != nil {
		r.t.Fatal(err)
	}
	if err := r.root.Signed.AddKey(k, role); err != nil {
		r.t.Fatal(err)
	}
	id, _ := k.ID()
	return id
}

func (r *tufRepo) keyID(name string) string {
	k, err := metadata.KeyFromPublicKey(r.keys[name].Public())
	if err != nil {
		r.t.Fatal(err)
	}
	id, _ := k.ID()
	return id
}

func (r *tufRepo) signer(name string) signature.Signer {
	s, err := signature.LoadSigner(r.keys[name], crypto.Hash(0))
	if err != nil {
		r.t.Fatal(err)
	}
	return s
}

// writeRoot signs the current root with the named keys and writes
// <version>.root.json.
func (r *tufRepo) writeRoot(signers ...string) {
	r.root.ClearSignatures()
	for _, s := range signers {
		if _, err := r.root.Sign(r.signer(s)); err != nil {
			r.t.Fatal(err)
		}
	}
	if err := r.root.ToFile(filepath.Join(r.dir, itoa(r.root.Signed.Version)+".root.json"), true); err != nil {
		r.t.Fatal(err)
	}
}

// publishTarget publishes data as trusted_root.json with new targets,
// snapshot and timestamp versions, signed by the keys named after each
// role (or the given timestamp key name).
func (r *tufRepo) publishTarget(data []byte) {
	tf, err := metadata.TargetFile().FromBytes(verify.TrustedRootTarget, data, "sha256")
	if err != nil {
		r.t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	if err := os.MkdirAll(filepath.Join(r.dir, "targets"), 0o755); err != nil {
		r.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(r.dir, "targets", hex.EncodeToString(sum[:])+"."+verify.TrustedRootTarget), data, 0o644); err != nil {
		r.t.Fatal(err)
	}
	if r.targets.Signed.Targets == nil {
		r.targets.Signed.Targets = map[string]*metadata.TargetFiles{}
	}
	if _, published := r.targets.Signed.Targets[verify.TrustedRootTarget]; published {
		r.targets.Signed.Version++
		r.snapshot.Signed.Version++
		r.timestamp.Signed.Version++
	}
	r.targets.Signed.Targets[verify.TrustedRootTarget] = tf
	r.snapshot.Signed.Meta["targets.json"] = metadata.MetaFile(r.targets.Signed.Version)
	r.timestamp.Signed.Meta["snapshot.json"] = metadata.MetaFile(r.snapshot.Signed.Version)
	r.signAndWrite("timestamp")
}

func (r *tufRepo) signAndWrite(timestampKey string) {
	r.targets.ClearSignatures()
	r.snapshot.ClearSignatures()
	r.timestamp.ClearSignatures()
	if _, err := r.targets.Sign(r.signer("targets")); err != nil {
		r.t.Fatal(err)
	}
	if _, err := r.snapshot.Sign(r.signer("snapshot")); err != nil {
		r.t.Fatal(err)
	}
	if _, err := r.timestamp.Sign(r.signer(timestampKey)); err != nil {
		r.t.Fatal(err)
	}
	for name, err := range map[string]error{
		itoa(r.targets.Signed.Version) + ".targets.json":   r.targets.ToFile(filepath.Join(r.dir, itoa(r.targets.Signed.Version)+".targets.json"), true),
		itoa(r.snapshot.Signed.Version) + ".snapshot.json": r.snapshot.ToFile(filepath.Join(r.dir, itoa(r.snapshot.Signed.Version)+".snapshot.json"), true),
		"timestamp.json": r.timestamp.ToFile(filepath.Join(r.dir, "timestamp.json"), true),
	} {
		if err != nil {
			r.t.Fatalf("writing %s: %v", name, err)
		}
	}
}

func (r *tufRepo) file(name string) []byte {
	data, err := os.ReadFile(filepath.Join(r.dir, name))
	if err != nil {
		r.t.Fatal(err)
	}
	return data
}

func itoa(i int64) string { return strconv.FormatInt(i, 10) }

// rotate makes root v2: the root key and the timestamp key are replaced;
// v2 is signed by the old root key and the new one (signers), and the
// timestamp is re-signed with the new timestamp key, so that a client that
// does not follow the rotation cannot verify it.
func (r *tufRepo) rotate(signers ...string) {
	oldRoot, oldTimestamp := r.keyID("root"), r.keyID("timestamp")
	r.root.Signed.Version++
	r.addKey("root2", "root")
	r.addKey("timestamp2", "timestamp")
	if err := r.root.Signed.RevokeKey(oldRoot, "root"); err != nil {
		r.t.Fatal(err)
	}
	if err := r.root.Signed.RevokeKey(oldTimestamp, "timestamp"); err != nil {
		r.t.Fatal(err)
	}
	r.writeRoot(signers...)
	r.timestamp.Signed.Version++
	r.signAndWrite("timestamp2")
}

func TestTrustedRootFromTUF(t *testing.T) {
	ctx := context.Background()
	v := newVirtualStack(t)
	trJSON, err := v.trusted.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	repo := newTUFRepo(t, trJSON)
	initial := repo.file("1.root.json")
	cache := t.TempDir()
	cfg := verify.TUFConfig{MetadataURL: repo.srv.URL, CacheDir: cache, InitialRoot: initial}

	tr, err := verify.TrustedRootFromTUF(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(tr.FulcioCertificateAuthorities()) != 1 || len(tr.TimestampingAuthorities()) != 1 {
		t.Fatalf("trusted root = %+v", tr)
	}

	// Root rotation: v2 signed by the old and the new root key, with a new
	// timestamp key. The client must walk 1 -> 2 to trust the timestamp.
	repo.rotate("root", "root2")
	repo.requests = nil
	tr, err = verify.TrustedRootFromTUF(ctx, cfg)
	if err != nil {
		t.Fatalf("after rotation: %v", err)
	}
	if !contains(repo.requests, "/2.root.json") || !contains(repo.requests, "/3.root.json") {
		t.Errorf("client did not look for newer roots: %v", repo.requests)
	}
	cached, err := (&metadata.Metadata[metadata.RootType]{}).FromFile(filepath.Join(cache, tuf.URLToPath(repo.srv.URL), "root.json"))
	if err != nil || cached.Signed.Version != 2 {
		t.Fatalf("cached root version = %v (%v), want 2", cached, err)
	}

	// The trusted root from TUF verifies a bundle offline.
	_, digest, manifest := testLayout(t)
	bs := signBoth(t, virtualSigner(t, v), digest, manifest, true)
	if _, err := verify.Verify(ctx, verify.Request{Digest: digest, ImageManifest: manifest, Provenance: bs.Provenance, Image: bs.Image, TrustedRoot: tr, Policy: virtualPolicy(t, v)}); err != nil {
		t.Fatal(err)
	}

	// A client that starts from the v1 root again resumes from its cache.
	if _, err := verify.TrustedRootFromTUF(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	// A fresh client (empty cache) from v1 follows the rotation too.
	if _, err := verify.TrustedRootFromTUF(ctx, verify.TUFConfig{MetadataURL: repo.srv.URL, CacheDir: t.TempDir(), InitialRoot: initial}); err != nil {
		t.Fatalf("fresh client: %v", err)
	}
}

func TestTrustedRootFromTUFRefusals(t *testing.T) {
	ctx := context.Background()
	trJSON, _ := newVirtualStack(t).trusted.MarshalJSON()
	tests := []struct {
		name     string
		tamper   func(r *tufRepo)
		contains string
	}{
		{"rotation not signed by the old root key", func(r *tufRepo) { r.rotate("root2") }, "root"},
		{"rotation not signed by the new root key", func(r *tufRepo) { r.rotate("root") }, "root"},
		{"target changed behind the metadata", func(r *tufRepo) {
			data := []byte(strings.Replace(string(trJSON), "application", "applicatioN", 1))
			sum := sha256.Sum256(trJSON)
			os.WriteFile(filepath.Join(r.dir, "targets", hex.EncodeToString(sum[:])+"."+verify.TrustedRootTarget), data, 0o644)
		}, "downloading target"},
		{"timestamp signed by an unknown key", func(r *tufRepo) {
			r.addKeyOutsideRoot("rogue")
			r.timestamp.Signed.Version++
			r.signAndWrite("rogue")
		}, "timestamp"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			repo := newTUFRepo(t, trJSON)
			initial := repo.file("1.root.json")
			tt.tamper(repo)
			_, err := verify.TrustedRootFromTUF(ctx, verify.TUFConfig{MetadataURL: repo.srv.URL, CacheDir: t.TempDir(), InitialRoot: initial})
			if err == nil {
				t.Fatal("accepted")
			}
			if !strings.Contains(err.Error(), tt.contains) {
				t.Errorf("error %q does not mention %q", err, tt.contains)
			}
			t.Logf("refused: %v", err)
		})
	}
	if _, err := verify.TrustedRootFromTUF(ctx, verify.TUFConfig{MetadataURL: "http://127.0.0.1:1"}); err == nil || !strings.Contains(err.Error(), "initial root") {
		t.Errorf("no initial root: %v", err)
	}
}

// addKeyOutsideRoot makes a key the root does not know.
func (r *tufRepo) addKeyOutsideRoot(name string) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		r.t.Fatal(err)
	}
	r.keys[name] = priv
}

func contains(list []string, s string) bool { return slices.Contains(list, s) }
