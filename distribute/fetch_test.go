package distribute_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/twinforge/twinforge/distribute"
	"github.com/twinforge/twinforge/internal/regtest"
)

// Referrers reads back what Push and Attach wrote, with the referrers API
// and with the tag schema; FetchManifest resolves tags; Image reads the
// image; plain HTTP stays refused without the unsafe option.
func TestFetchReferrersRealRegistries(t *testing.T) {
	regtest.NeedRegistry(t)
	ctx := context.Background()
	insecure := distribute.WithInsecureLoopbackUnsafe()
	for _, kind := range registryKinds {
		t.Run(kind.name, func(t *testing.T) {
			reg := kind.start(t)
			_, img := newLayout(t)
			want := digestOf(t, img)
			arts := testArtifacts()
			if _, err := distribute.Push(ctx, img, mustRef(t, reg.Host+"/twinforge/app:v1"), arts, insecure); err != nil {
				t.Fatalf("Push: %v", err)
			}

			m, err := distribute.FetchManifest(ctx, mustRef(t, reg.Host+"/twinforge/app:v1"), insecure)
			if err != nil {
				t.Fatalf("FetchManifest by tag: %v", err)
			}
			raw, _ := img.RawManifest()
			if m.Ref.DigestStr() != want || !bytes.Equal(m.Raw, raw) || m.MediaType == "" {
				t.Fatalf("FetchManifest = %s %s, want %s", m.Ref, m.MediaType, want)
			}
			subject, err := name.NewDigest(reg.Host + "/twinforge/app@" + want)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := distribute.FetchManifest(ctx, subject, insecure); err != nil {
				t.Fatalf("FetchManifest by digest: %v", err)
			}
			if _, err := distribute.FetchManifest(ctx, subject); !errors.Is(err, distribute.ErrInsecure) {
				t.Errorf("plain HTTP without the unsafe option: %v", err)
			}

			got, err := distribute.Referrers(ctx, subject, insecure)
			if err != nil {
				t.Fatalf("Referrers: %v", err)
			}
			if len(got) != len(arts) {
				t.Fatalf("Referrers = %d, want %d", len(got), len(arts))
			}
			byType := map[string]distribute.Fetched{}
			for _, f := range got {
				byType[f.ArtifactType] = f
			}
			for _, a := range arts {
				f, ok := byType[a.ArtifactType]
				if !ok || !bytes.Equal(f.Data, a.Data) {
					t.Errorf("referrer %s: %+v", a.ArtifactType, f)
				}
				for k, v := range a.Annotations {
					if f.Annotations[k] != v {
						t.Errorf("referrer %s: annotation %s = %q, want %q", a.ArtifactType, k, f.Annotations[k], v)
					}
				}
			}

			// Attach adds a referrer to the image already there.
			verdict := distribute.Artifact{ArtifactType: distribute.SigstoreBundleType, Data: []byte(`{"verdict":"reproduced"}`),
				Annotations: map[string]string{"dev.sigstore.bundle.predicateType": "https://twinforge.dev/attestations/rebuild/v1"}}
			res, err := distribute.Attach(ctx, subject, []distribute.Artifact{verdict}, insecure)
			if err != nil {
				t.Fatalf("Attach: %v", err)
			}
			if res.Digest.String() != want || len(res.Referrers) != 1 || res.ReferrersMode != kind.mode || res.Tag != "" {
				t.Errorf("Attach = %+v", res)
			}
			got, err = distribute.Referrers(ctx, subject, insecure)
			if err != nil || len(got) != len(arts)+1 {
				t.Fatalf("Referrers after Attach = %d, %v", len(got), err)
			}
			found := false
			for _, f := range got {
				found = found || bytes.Equal(f.Data, verdict.Data)
			}
			if !found {
				t.Error("the attached verdict is not listed")
			}
			if tags := reg.Tags(t, "twinforge/app"); len(tags) != map[distribute.ReferrersMode]int{distribute.ReferrersAPI: 1, distribute.ReferrersTagSchema: 2}[kind.mode] {
				t.Errorf("tags after Attach = %v", tags)
			}

			// The image reads back through the same connection rules.
			ri, err := distribute.Image(ctx, subject, insecure)
			if err != nil {
				t.Fatalf("Image: %v", err)
			}
			if d, _ := ri.Digest(); d.String() != want {
				t.Errorf("Image digest = %s", d)
			}

			// Attaching to an image the registry does not have fails.
			missing, _ := name.NewDigest(reg.Host + "/twinforge/app@sha256:" + string(bytes.Repeat([]byte("0"), 64)))
			if _, err := distribute.Attach(ctx, missing, []distribute.Artifact{verdict}, insecure); err == nil {
				t.Error("Attach to a missing image succeeded")
			}
			// An image without referrers has none.
			if got, err := distribute.Referrers(ctx, missing, insecure); err != nil || len(got) != 0 {
				t.Errorf("Referrers of a missing image = %v, %v", got, err)
			}
		})
	}
}

// Reading back goes through TLS with the CA given and the credentials of
// the Docker config, like Push.
func TestFetchWithTLSAndCredentials(t *testing.T) {
	reg := regtest.StartDistribution(t, regtest.WithTLS(), regtest.WithHtpasswd("auditor", "s3cret"))
	dockerConfig(t, reg.Host, "auditor", "s3cret")
	ctx := context.Background()
	_, img := newLayout(t)
	ca := distribute.WithCACert(reg.CACert)
	if _, err := distribute.Push(ctx, img, mustRef(t, reg.Host+"/secure/app:v1"), testArtifacts(), ca); err != nil {
		t.Fatalf("Push: %v", err)
	}
	m, err := distribute.FetchManifest(ctx, mustRef(t, reg.Host+"/secure/app:v1"), ca)
	if err != nil || m.Ref.DigestStr() != digestOf(t, img) {
		t.Fatalf("FetchManifest = %v, %v", m, err)
	}
	got, err := distribute.Referrers(ctx, m.Ref, ca)
	if err != nil || len(got) != len(testArtifacts()) {
		t.Fatalf("Referrers = %d, %v", len(got), err)
	}
	if _, err := distribute.Referrers(ctx, m.Ref); err == nil || !strings.Contains(err.Error(), "--ca-cert") {
		t.Errorf("Referrers without the CA: %v", err)
	}
	dockerConfig(t, reg.Host, "auditor", "wrong")
	if _, err := distribute.FetchManifest(ctx, m.Ref, ca); err == nil || !strings.Contains(err.Error(), "credentials") {
		t.Errorf("FetchManifest with wrong credentials: %v", err)
	}
}
