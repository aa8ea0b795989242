package distribute_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/twinforge/twinforge/distribute"
	"github.com/twinforge/twinforge/internal/regtest"
)

// registryKinds are the two real registries: distribution has no referrers
// API (the tag schema fallback is exercised), the ggcr registry has it.
var registryKinds = []struct {
	name  string
	start func(testing.TB) *regtest.Registry
	mode  distribute.ReferrersMode
}{
	{"distribution", func(t testing.TB) *regtest.Registry { return regtest.StartDistribution(t) }, distribute.ReferrersTagSchema},
	{"referrers-api", regtest.StartReferrers, distribute.ReferrersAPI},
}

func TestPushRealRegistries(t *testing.T) {
	regtest.NeedRegistry(t)
	for _, kind := range registryKinds {
		t.Run(kind.name, func(t *testing.T) {
			reg := kind.start(t)
			dir, img := newLayout(t)
			want := digestOf(t, img)
			ref := mustRef(t, reg.Host+"/twinforge/app:v1")
			arts := testArtifacts()

			res, err := distribute.Push(context.Background(), img, ref, arts, distribute.WithInsecureLoopbackUnsafe())
			if err != nil {
				t.Fatalf("Push: %v", err)
			}
			if res.Digest.String() != want || res.Tag != "v1" || res.Repository != reg.Host+"/twinforge/app" {
				t.Errorf("result = %+v, want digest %s, tag v1", res, want)
			}
			if res.ReferrersMode != kind.mode {
				t.Errorf("referrers mode = %q, want %q", res.ReferrersMode, kind.mode)
			}
			if len(res.Referrers) != len(arts) {
				t.Fatalf("referrers = %v, want %d", res.Referrers, len(arts))
			}

			// crane, a separate reader, sees the same image by tag and digest.
			if got := crane(t, "digest", ref.String()); got != want {
				t.Errorf("crane digest %s = %s, want %s", ref, got, want)
			}
			raw, _ := img.RawManifest()
			if got := crane(t, "manifest", res.Reference()); got != string(raw) {
				t.Errorf("crane manifest differs from the layout's manifest:\n%s\n%s", got, raw)
			}
			_ = dir

			// Each artifact is a referrer with the right subject and type.
			listed := referrersOf(t, reg, "twinforge/app", want)
			for i, r := range res.Referrers {
				if _, ok := listed[r.Digest.String()]; !ok {
					t.Errorf("referrer %s is not listed by the registry (%v)", r.Digest, listed)
				}
				var m v1.Manifest
				if err := json.Unmarshal([]byte(crane(t, "manifest", reg.Host+"/twinforge/app@"+r.Digest.String())), &m); err != nil {
					t.Fatal(err)
				}
				if m.ArtifactType != arts[i].ArtifactType || m.Subject == nil || m.Subject.Digest.String() != want {
					t.Errorf("referrer %d: artifactType %q subject %v", i, m.ArtifactType, m.Subject)
				}
				if len(m.Layers) != 1 || string(m.Layers[0].MediaType) != map[bool]string{true: arts[i].MediaType, false: arts[i].ArtifactType}[arts[i].MediaType != ""] {
					t.Errorf("referrer %d layers = %+v", i, m.Layers)
				}
				if got := crane(t, "blob", reg.Host+"/twinforge/app@"+m.Layers[0].Digest.String()); got != string(arts[i].Data) {
					t.Errorf("referrer %d data = %q", i, got)
				}
			}
			if kind.mode == distribute.ReferrersTagSchema {
				tags := strings.Join(reg.Tags(t, "twinforge/app"), " ")
				if !strings.Contains(tags, strings.Replace(want, ":", "-", 1)) {
					t.Errorf("no referrers tag schema tag among %s", tags)
				}
			}
			assertNoDanglingTags(t, reg, "twinforge/app")

			// Pushing again changes nothing and gives the same answer.
			again, err := distribute.Push(context.Background(), img, ref, arts, distribute.WithInsecureLoopbackUnsafe())
			if err != nil {
				t.Fatalf("second Push: %v", err)
			}
			if again.Digest != res.Digest || len(again.Referrers) != len(res.Referrers) || again.Referrers[0] != res.Referrers[0] {
				t.Errorf("second push = %+v, first %+v", again, res)
			}
			if n := len(referrersOf(t, reg, "twinforge/app", want)); n != len(arts) {
				t.Errorf("after a second push the registry lists %d referrers, want %d", n, len(arts))
			}
		})
	}
}

func TestPushByDigestLeavesNoTag(t *testing.T) {
	reg := regtest.StartDistribution(t)
	_, img := newLayout(t)
	want := digestOf(t, img)
	res, err := distribute.Push(context.Background(), img, mustRef(t, reg.Host+"/app@"+want), nil, distribute.WithInsecureLoopbackUnsafe())
	if err != nil {
		t.Fatal(err)
	}
	if res.Tag != "" || res.ReferrersMode != "" || len(res.Referrers) != 0 {
		t.Errorf("result = %+v", res)
	}
	if tags := reg.Tags(t, "app"); len(tags) != 0 {
		t.Errorf("tags = %v, want none", tags)
	}
	if !reg.Exists(t, "app", "manifests", want) {
		t.Error("manifest missing")
	}

	// A digest that is not the image's is refused before anything is sent.
	other := "sha256:" + strings.Repeat("0", 64)
	_, err = distribute.Push(context.Background(), img, mustRef(t, reg.Host+"/other@"+other), nil, distribute.WithInsecureLoopbackUnsafe())
	if err == nil || !strings.Contains(err.Error(), other) {
		t.Errorf("push with a wrong digest: %v", err)
	}
}

func TestPushWithTLSAndCredentials(t *testing.T) {
	reg := regtest.StartDistribution(t, regtest.WithTLS(), regtest.WithHtpasswd("builder", "s3cret"))
	_, img := newLayout(t)
	ref := mustRef(t, reg.Host+"/secure/app:v1")
	ctx := context.Background()

	tests := []struct {
		name     string
		password string
		opts     []distribute.Option
		wantErr  string
	}{
		{"right credentials", "s3cret", []distribute.Option{distribute.WithCACert(reg.CACert)}, ""},
		{"wrong password", "wrong", []distribute.Option{distribute.WithCACert(reg.CACert)}, "refused the credentials"},
		{"unknown CA", "s3cret", nil, "--ca-cert"},
		{"plain HTTP asked for a TLS registry still uses TLS", "s3cret", []distribute.Option{distribute.WithCACert(reg.CACert), distribute.WithInsecureLoopbackUnsafe()}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dockerConfig(t, reg.Host, "builder", tt.password)
			res, err := distribute.Push(ctx, img, ref, testArtifacts(), tt.opts...)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Push: %v", err)
				}
				if res.Digest.String() != digestOf(t, img) {
					t.Errorf("digest %s", res.Digest)
				}
				return
			}
			t.Logf("error: %v", err)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), reg.Host) {
				t.Fatalf("Push: %v, want an error naming %s and %q", err, reg.Host, tt.wantErr)
			}
		})
	}

	// An explicit keychain wins over the Docker config.
	dockerConfig(t, reg.Host, "builder", "wrong")
	kc := staticKeychain{reg.Host: &authn.Basic{Username: "builder", Password: "s3cret"}}
	if _, err := distribute.Push(ctx, img, ref, nil, distribute.WithCACert(reg.CACert), distribute.WithKeychain(kc)); err != nil {
		t.Errorf("Push with WithKeychain: %v", err)
	}
}

type staticKeychain map[string]authn.Authenticator

func (k staticKeychain) Resolve(r authn.Resource) (authn.Authenticator, error) {
	if a, ok := k[r.RegistryStr()]; ok {
		return a, nil
	}
	return authn.Anonymous, nil
}

func TestPushRefusesPlainHTTPAndUnknownHosts(t *testing.T) {
	reg := regtest.StartDistribution(t)
	_, img := newLayout(t)
	ctx := context.Background()
	tests := []struct {
		name     string
		ref      string
		opts     []distribute.Option
		insecure bool
		want     []string
	}{
		{"plain HTTP loopback without opt-in", reg.Host + "/app:v1", nil, true, []string{reg.Host, "plain HTTP"}},
		{"opt-in for a host that is not loopback", "10.1.2.3:5000/app:v1", []distribute.Option{distribute.WithInsecureLoopbackUnsafe()}, true, []string{"10.1.2.3:5000", "loopback"}},
		{"opt-in for a public name", "registry.example.com/app:v1", []distribute.Option{distribute.WithInsecureLoopbackUnsafe()}, true, []string{"registry.example.com"}},
		{"unknown host", "registry.invalid/app:v1", nil, false, []string{"registry.invalid"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := distribute.Push(ctx, img, mustRef(t, tt.ref), nil, tt.opts...)
			if err == nil {
				t.Fatal("Push succeeded")
			}
			t.Logf("error: %v", err)
			if errors.Is(err, distribute.ErrInsecure) != tt.insecure {
				t.Errorf("errors.Is(ErrInsecure) = %v, want %v: %v", !tt.insecure, tt.insecure, err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
	if tags := reg.Tags(t, "app"); len(tags) != 0 {
		t.Errorf("refused pushes left tags %v", tags)
	}
}
