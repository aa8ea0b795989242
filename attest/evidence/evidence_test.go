package evidence_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/random"

	"github.com/twinforge/twinforge/attest"
	"github.com/twinforge/twinforge/attest/evidence"
	"github.com/twinforge/twinforge/attest/verify"
)

// signedLayout writes a one-image OCI layout with key-signed provenance
// and image bundles beside it, as twinforge build does.
func signedLayout(t *testing.T, reproduced bool) (dir, digest string) {
	t.Helper()
	dir = t.TempDir()
	img, err := random.Image(256, 1)
	if err != nil {
		t.Fatal(err)
	}
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.AppendImage(img); err != nil {
		t.Fatal(err)
	}
	d, _ := img.Digest()
	manifest, _ := img.RawManifest()
	data, err := os.ReadFile(filepath.Join("..", "testdata", "twinforge.lock"))
	if err != nil {
		t.Fatal(err)
	}
	lock, err := attest.ParseLock(data)
	if err != nil {
		t.Fatal(err)
	}
	info := attest.BuildInfo{Subject: attest.Subject{Name: "example.test/app", Digest: d.String()}, Lock: lock,
		Build: attest.Builder{BuildKitVersion: "v0.34.2"}, FinishedOn: time.Now()}
	if reproduced {
		info.Rebuild = &attest.Rebuild{Digest: d.String(), RebuilderID: "https://rebuilder.example.test"}
	}
	st, err := attest.Provenance(info)
	if err != nil {
		t.Fatal(err)
	}
	statement, _ := attest.MarshalStatement(st)
	s, err := attest.NewKeySigner(filepath.Join("..", "testdata", "keys", "cosign.key"), []byte("twinforge-test"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := attest.SignBuild(context.Background(), s, statement, manifest)
	if err != nil {
		t.Fatal(err)
	}
	if err := verify.WriteBundles(dir, b); err != nil {
		t.Fatal(err)
	}
	return dir, d.String()
}

func keyPolicy(t *testing.T, extra string) *verify.Policy {
	t.Helper()
	pub, _ := filepath.Abs(filepath.Join("..", "testdata", "keys", "cosign.pub"))
	p, err := verify.ParsePolicy([]byte(fmt.Sprintf("apiVersion: twinforge.dev/v2\nkind: Policy\nidentities:\n  - publicKey: %s\nrequireSignedTimestamp: false\nrequireTransparencyLog: false\n%s", pub, extra)))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestLayoutEvidence finds, inspects and verifies the evidence beside a
// layout, and refuses by the policy what it does not allow.
func TestLayoutEvidence(t *testing.T) {
	ctx := context.Background()
	dir, digest := signedLayout(t, false)
	src, err := evidence.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	ev, err := src.Evidence(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if ev.Digest.String() != digest || len(ev.Provenance) != 1 || len(ev.Images) != 1 || len(ev.Candidates()) != 1 {
		t.Fatalf("evidence %+v", ev)
	}
	lines, prov, err := ev.Inspect()
	if err != nil || prov.Statement == nil {
		t.Fatalf("Inspect: %v", err)
	}
	text := fmt.Sprint(lines)
	for _, want := range []string{"verified no", "build type https://twinforge.dev/buildtypes/dockerfile/v1", "reproduced no (not rebuilt)", "image signs sha256:" + strings.TrimPrefix(digest, "sha256:")} {
		if !strings.Contains(text, want) {
			t.Errorf("Inspect lacks %q:\n%v", want, lines)
		}
	}
	if res, err := ev.Verify(ctx, nil, keyPolicy(t, "")); err != nil || res.Digest != digest || !res.ImageSigned {
		t.Fatalf("Verify = %+v, %v", res, err)
	}
	var ve *verify.VerificationError
	if _, err := ev.Verify(ctx, nil, keyPolicy(t, "requireReproduced: {by: [{publicKey: ../testdata/keys/release.pub}]}\n")); !errors.As(err, &ve) || ve.Check != verify.CheckReproduced {
		t.Errorf("Verify under requireReproduced: %v", err)
	}
	if _, err := src.Evidence(ctx, "sha256:"+strings.Repeat("0", 64)); err == nil {
		t.Error("a digest the layout does not hold was found")
	}
}

// TestUnsignedAndMistyped: an unsigned layout has no claims to inspect and
// is refused as not signed; a name that is neither a directory nor a
// registry reference is a usage error, never a Docker Hub lookup.
func TestUnsignedAndMistyped(t *testing.T) {
	ctx := context.Background()
	dir, _ := signedLayout(t, true)
	os.RemoveAll(filepath.Join(dir, verify.AttestationsDir))
	ev, err := evidence.Layout(dir).Evidence(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := ev.Inspect(); err == nil || !strings.Contains(err.Error(), "is not signed") {
		t.Errorf("Inspect of an unsigned image: %v", err)
	}
	var ve *verify.VerificationError
	if _, err := ev.Verify(ctx, nil, keyPolicy(t, "")); !errors.As(err, &ve) || !errors.Is(err, verify.ErrNotSigned) {
		t.Errorf("Verify of an unsigned image: %v", err)
	}
	for _, name := range []string{"out/missing", "busybox:latest", filepath.Join(dir, "index.json")} {
		if _, err := evidence.Open(name); !errors.Is(err, evidence.ErrInvalidRequest) {
			t.Errorf("Open(%q) = %v, want ErrInvalidRequest", name, err)
		}
	}
	if !evidence.LooksLikeReference("127.0.0.1:5000/app@sha256:x") || evidence.LooksLikeReference("./registry.example/app") {
		t.Error("LooksLikeReference")
	}
}
