package gomod

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestLiveChecksumDatabase proves testdata/vendored, a Go service with a
// vendored dependency, against the real Go checksum database through the
// module proxy, then refuses the same tree with one vendored file edited
// and with a go.sum line the database contradicts.
//
// It needs the module proxy, as the build itself does: the Go toolchain
// this project builds with is fetched through the same proxy, so a machine
// that runs this suite reaches it. It is skipped with -short only.
func TestLiveChecksumDatabase(t *testing.T) {
	if testing.Short() {
		t.Skip("reaches the Go module proxy; skipped with -short")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cfg := Config{Proxy: ProxyFromEnv(os.Getenv)}
	src := filepath.Join("testdata", "vendored")
	mods, err := Scan(src)
	if err != nil {
		t.Fatal(err)
	}
	res, err := Verify(ctx, src, mods, cfg)
	if err != nil {
		t.Fatalf("verifying %s against %s: %v", src, cfg.Proxy, err)
	}
	if res.Verified != 2 || res.Vendored != 1 || res.TreeSize == 0 || res.SumDB != "sum.golang.org" {
		t.Fatalf("result %+v", res)
	}
	t.Logf("proven in tree %d of %s", res.TreeSize, res.SumDB)
	cfg.TreeHead = res.TreeHead

	edited := copyTree(t, src)
	f := filepath.Join(edited, "vendor", "github.com", "google", "uuid", "uuid.go")
	data, _ := os.ReadFile(f)
	os.WriteFile(f, append(data, []byte("\n// edited\n")...), 0o644)
	mods2, err := Scan(edited)
	if err != nil {
		t.Fatal(err)
	}
	_, err = Verify(ctx, edited, mods2, cfg)
	var ve *VendorError
	if !errors.As(err, &ve) || ve.Module.Path != "github.com/google/uuid" || ve.File != "uuid.go" {
		t.Fatalf("edited vendor file: got %v, want a refusal naming github.com/google/uuid and uuid.go", err)
	}

	bad := append([]Module(nil), mods...)
	bad[0].GoModSum = "h1:TIyPZe4MgqvfeYDBFedMoGGpEw/LqOeaOT+nhxU+yHX="
	_, err = Verify(ctx, src, bad, cfg)
	var me *MismatchError
	if !errors.As(err, &me) || !me.GoMod || me.Module.Path != "github.com/google/uuid" {
		t.Fatalf("contradicted go.sum: got %v", err)
	}
}

func copyTree(t *testing.T, src string) string {
	t.Helper()
	dst := t.TempDir()
	err := filepath.Walk(src, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if fi.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), data, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}
