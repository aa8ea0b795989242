package distribute_test

import (
	"context"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/random"

	"github.com/twinforge/twinforge/distribute"
	"github.com/twinforge/twinforge/internal/regtest"
)

// TestMultiPusher pushes one image to two registries through one Pusher,
// each copy read back, and refuses a Pusher with conflicting options.
func TestMultiPusher(t *testing.T) {
	regtest.NeedRegistry(t)
	a, b := regtest.StartReferrers(t), regtest.StartReferrers(t)
	img, err := random.Image(512, 2)
	if err != nil {
		t.Fatal(err)
	}
	var pushers []distribute.Pusher
	for _, host := range []string{a.Host, b.Host} {
		p, err := distribute.NewPusher(mustRef(t, host+"/team/app:v1"), distribute.WithInsecureLoopbackUnsafe())
		if err != nil {
			t.Fatal(err)
		}
		pushers = append(pushers, p)
	}
	m := distribute.Multi(pushers...)
	res, err := m.Push(context.Background(), img, testArtifacts())
	if err != nil {
		t.Fatal(err)
	}
	want, _ := img.Digest()
	if res.Digest != want || res.Tag != "v1" || m.Repository().String() != a.Host+"/team/app" {
		t.Errorf("Multi push = %+v", res)
	}
	for _, reg := range []*regtest.Registry{a, b} {
		if got := crane(t, "digest", reg.Host+"/team/app:v1"); got != want.String() {
			t.Errorf("%s holds %s, want %s", reg.Host, got, want)
		}
	}
	if _, err := distribute.NewPusher(mustRef(t, a.Host+"/team/app:v1"), distribute.WithCACert("ca.pem"), distribute.WithTransport(nil)); err == nil {
		t.Error("NewPusher accepted a nil transport")
	}
}
