package release

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/twinforge/twinforge/distribute"
	"github.com/twinforge/twinforge/internal/golden"
)

func TestKeyFileSettings(t *testing.T) {
	dir := t.TempDir()
	k, err := GenerateKey(filepath.Join(dir, "k.pem"))
	if err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "nope")
	for _, tc := range []struct {
		name string
		run  func() error
		want string
	}{
		{"keys", func() error { _, err := LoadKeys("key", []string{k.Path}); return err }, ""},
		{"public keys from a private key", func() error { _, err := LoadPublicKeys("key", []string{k.Path}); return err }, ""},
		{"missing key", func() error { _, err := LoadKeys("key", []string{k.Path, missing}); return err }, "--key: reading key: open " + missing},
		{"missing public key", func() error { _, err := LoadPublicKeys("key", []string{missing}); return err }, "--key: reading public key: open " + missing},
		{"missing online key", func() error {
			_, err := InitKeyFiles{RootKeys: []string{k.Path}, TimestampKey: missing}.Config(func(*Key) {})
			return err
		}, "--timestamp-key: reading key: open " + missing},
		{"malformed role value", func() error {
			_, err := RootRotation{RootKeys: []string{k.Path}, AddKeys: []string{"bad"}}.Plan()
			return err
		}, `--add-key "bad": want ROLE=VALUE`},
		{"empty removal", func() error { _, err := RootRotation{RemoveKeys: []string{"root="}}.Plan(); return err }, `--remove-key "root=": want ROLE=VALUE`},
		{"missing added key", func() error { _, err := RootRotation{AddKeys: []string{"root=" + missing}}.Plan(); return err }, "--add-key root=" + missing + ": reading public key"},
		{"threshold not a number", func() error { _, err := RootRotation{Thresholds: []string{"root=x"}}.Plan(); return err }, "--threshold root=x: want a number"},
		{"missing root key", func() error { _, err := RootRotation{RootKeys: []string{missing}}.Plan(); return err }, "--root-keys: reading key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.run()
			if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.HasPrefix(err.Error(), tc.want)) {
				t.Fatalf("error = %v, want %q", err, tc.want)
			}
		})
	}
}

func TestInitKeyFilesGeneratesRootKeys(t *testing.T) {
	dir := t.TempDir()
	existing, err := GenerateKey(filepath.Join(dir, "r1.pem"))
	if err != nil {
		t.Fatal(err)
	}
	var generated []string
	cfg, err := InitKeyFiles{RootKeys: []string{existing.Path, filepath.Join(dir, "r2.pem")}, RootThreshold: 2}.Config(func(k *Key) { generated = append(generated, k.Path) })
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.RootKeys) != 2 || cfg.RootThreshold != 2 || len(generated) != 1 || generated[0] != filepath.Join(dir, "r2.pem") {
		t.Fatalf("config = %+v, generated %v", cfg, generated)
	}
	if _, err := os.Stat(filepath.Join(dir, "r2.pem.pub")); err != nil {
		t.Error(err)
	}
}

func TestRotationPlanStoresNewOnlineKeys(t *testing.T) {
	dir := t.TempDir()
	root, err := GenerateKey(filepath.Join(dir, "root.pem"))
	if err != nil {
		t.Fatal(err)
	}
	repo, err := Init(filepath.Join(dir, "repo"), InitConfig{RootKeys: []*Key{root}, RootThreshold: 1})
	if err != nil {
		t.Fatal(err)
	}
	ts, err := GenerateKey(filepath.Join(dir, "ts.pem"))
	if err != nil {
		t.Fatal(err)
	}
	plan, err := RootRotation{RootKeys: []string{root.Path}, AddKeys: []string{"timestamp=" + ts.Path}}.Plan()
	if err != nil {
		t.Fatal(err)
	}
	r, err := Open(repo.Dir(), plan.Options...)
	if err != nil {
		t.Fatal(err)
	}
	if err := plan.Apply(r); err != nil {
		t.Fatal(err)
	}
	want, _ := os.ReadFile(ts.Path)
	got, err := os.ReadFile(filepath.Join(r.Dir(), KeysDir, "timestamp.pem"))
	if err != nil || !bytes.Equal(got, want) || r.RootVersion() != 2 {
		t.Fatalf("after the rotation: root v%d, timestamp key stored %v (%v)", r.RootVersion(), bytes.Equal(got, want), err)
	}
}

func TestReplicationReport(t *testing.T) {
	h := v1.Hash{Algorithm: "sha256", Hex: "aa"}
	eu, _ := name.NewRepository("eu.registry.example/team/hello")
	us, _ := name.NewRepository("us.registry.example/team/hello")
	images := []distribute.DestResult{
		{Repository: eu, Digest: h, Referrers: []v1.Hash{h}, ReferrersMode: "api", Duration: 1500 * time.Millisecond},
		{Repository: us, Err: errors.New("connection refused")},
	}
	for _, tc := range []struct {
		name string
		rep  ReplicationReport
	}{
		{"images", ReplicationReport{Images: images}},
		{"with-index", ReplicationReport{Images: images, Index: []ReplicaResult{{Ref: "eu.registry.example/team/hello:release-index", Digest: "sha256:bb"}, {Ref: "us.registry.example/team/hello:release-index", Error: "refused"}}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var b bytes.Buffer
			if err := tc.rep.WriteText(&b); err != nil {
				t.Fatal(err)
			}
			doc, err := tc.rep.MarshalJSON()
			if err != nil {
				t.Fatal(err)
			}
			golden.Check(t, "replication-"+tc.name+".txt", append(append(b.Bytes(), doc...), '\n'))
		})
	}
}
