package distribute_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/twinforge/twinforge/distribute"
	"github.com/twinforge/twinforge/internal/regtest"
)

// pushed is an image with two artifacts pushed to a real registry.
type pushed struct {
	reg    *regtest.Registry
	repo   string // repository path in reg, e.g. "src/app"
	digest string
	res    *distribute.PushResult
}

func (p pushed) ref(t *testing.T) name.Digest {
	return mustDigest(t, p.reg.Host+"/"+p.repo+"@"+p.digest)
}

// layerPaths are the registry paths of the pushed image's layers.
func (p pushed) layerPaths(t *testing.T) []string {
	t.Helper()
	raw := crane(t, "manifest", p.reg.Host+"/"+p.repo+"@"+p.digest)
	var m struct {
		Layers []struct{ Digest string } `json:"layers"`
	}
	if err := json.Unmarshal([]byte(raw), &m); err != nil {
		t.Fatal(err)
	}
	var paths []string
	for _, l := range m.Layers {
		paths = append(paths, "/v2/"+p.repo+"/blobs/"+l.Digest)
	}
	return paths
}

func pushSource(t *testing.T, reg *regtest.Registry, repo string) pushed {
	t.Helper()
	_, img := newLayout(t)
	res, err := distribute.Push(context.Background(), img, mustRef(t, reg.Host+"/"+repo+":v1"), testArtifacts(), distribute.WithInsecureLoopbackUnsafe())
	if err != nil {
		t.Fatalf("pushing the source: %v", err)
	}
	return pushed{reg: reg, repo: repo, digest: res.Digest.String(), res: res}
}

// assertCopy checks a destination on the real registry: crane reads the
// image by digest, and the registry lists both referrers.
func assertCopy(t *testing.T, src pushed, dst *regtest.Registry, repo string) {
	t.Helper()
	if got := crane(t, "digest", dst.Host+"/"+repo+"@"+src.digest); got != src.digest {
		t.Errorf("crane digest in %s/%s = %s, want %s", dst.Host, repo, got, src.digest)
	}
	listed := referrersOf(t, dst, repo, src.digest)
	for _, r := range src.res.Referrers {
		if _, ok := listed[r.Digest.String()]; !ok {
			t.Errorf("%s/%s does not list referrer %s", dst.Host, repo, r.Digest)
		}
		if !dst.Exists(t, repo, "manifests", r.Digest.String()) {
			t.Errorf("%s/%s lacks referrer manifest %s", dst.Host, repo, r.Digest)
		}
	}
	assertNoDanglingTags(t, dst, repo)
}

func TestReplicateRealRegistries(t *testing.T) {
	regtest.NeedRegistry(t)
	for _, kind := range registryKinds {
		t.Run("from "+kind.name, func(t *testing.T) {
			srcReg := kind.start(t)
			src := pushSource(t, srcReg, "src/app")
			dist, refs := regtest.StartDistribution(t), regtest.StartReferrers(t)
			// One destination goes through a proxy that only records, to
			// see what the second run sends.
			watch := regtest.NewFaultProxy(t, dist.Host)
			dests := []name.Repository{
				mustRepo(t, watch.Host+"/eu/app"),
				mustRepo(t, refs.Host+"/us/app"),
				mustRepo(t, srcReg.Host+"/mirror/app"), // same registry as the source
			}
			ctx := context.Background()
			updates := make(chan distribute.Update, 1024)
			results, err := distribute.Replicate(ctx, src.ref(t), dests, distribute.WithInsecureLoopbackUnsafe(), distribute.WithProgress(updates), distribute.WithJobs(3))
			if err != nil {
				t.Fatalf("Replicate: %v", err)
			}
			done := 0
			for u := range updates { // closed by Replicate
				if u.Phase == distribute.PhaseDone {
					done++
				}
			}
			if done != len(dests) {
				t.Errorf("got %d done updates, want %d", done, len(dests))
			}
			wantModes := []distribute.ReferrersMode{distribute.ReferrersTagSchema, distribute.ReferrersAPI, kind.mode}
			for i, r := range results {
				if r.Err != nil || r.Digest.String() != src.digest || r.Skipped || len(r.Referrers) != 2 || r.Repository != dests[i] {
					t.Errorf("result %d = %+v", i, r)
				}
				if r.ReferrersMode != wantModes[i] {
					t.Errorf("result %d: referrers mode %s, want %s", i, r.ReferrersMode, wantModes[i])
				}
			}
			assertCopy(t, src, dist, "eu/app")
			assertCopy(t, src, refs, "us/app")
			assertCopy(t, src, srcReg, "mirror/app")

			// Again: everything is there, nothing is written.
			before := len(watch.Requests())
			results, err = distribute.Replicate(ctx, src.ref(t), dests, distribute.WithInsecureLoopbackUnsafe())
			if err != nil {
				t.Fatalf("second Replicate: %v", err)
			}
			for i, r := range results {
				if !r.Skipped || r.Err != nil || r.Digest.String() != src.digest {
					t.Errorf("second run, result %d = %+v, want skipped", i, r)
				}
			}
			for _, r := range watch.Requests()[before:] {
				if r.Method != http.MethodGet && r.Method != http.MethodHead {
					t.Errorf("second run wrote: %s %s", r.Method, r.Path)
				}
			}
		})
	}
}

func TestReplicateMountsWithinARegistry(t *testing.T) {
	reg := regtest.StartDistribution(t)
	proxy := regtest.NewFaultProxy(t, reg.Host)
	_, img := newLayout(t)
	res, err := distribute.Push(context.Background(), img, mustRef(t, proxy.Host+"/team/app:v1"), testArtifacts(), distribute.WithInsecureLoopbackUnsafe())
	if err != nil {
		t.Fatal(err)
	}
	before := len(proxy.Requests())
	_, err = distribute.Replicate(context.Background(), mustDigest(t, proxy.Host+"/team/app@"+res.Digest.String()),
		[]name.Repository{mustRepo(t, proxy.Host+"/other/app")}, distribute.WithInsecureLoopbackUnsafe())
	if err != nil {
		t.Fatal(err)
	}
	mounted := 0
	for _, r := range proxy.Requests()[before:] {
		if r.Method == http.MethodPatch {
			t.Errorf("blob data uploaded within one registry: %s %s", r.Method, r.Path)
		}
		if r.Method == http.MethodPost && strings.Contains(r.Query, "mount=") && r.Status == http.StatusCreated {
			mounted++
		}
	}
	// 3 layers and the config of the image, the artifacts' empty config
	// (shared) and their 2 layers.
	if mounted != 7 {
		t.Errorf("%d blobs mounted, want 7", mounted)
	}
}

func TestReplicateNeedsADigest(t *testing.T) {
	_, err := distribute.Replicate(context.Background(), mustRef(t, "127.0.0.1:1/app:v1"), []name.Repository{mustRepo(t, "127.0.0.1:2/app")})
	if !errors.Is(err, distribute.ErrDigestRequired) {
		t.Fatalf("Replicate of a tag: %v, want ErrDigestRequired", err)
	}
	t.Logf("error: %v", err)
}

func TestReplicateRefusals(t *testing.T) {
	d := "127.0.0.1:1/app@sha256:" + strings.Repeat("a", 64)
	tests := []struct {
		name  string
		dests []string
		opts  []distribute.Option
		want  string
	}{
		{"no destination", nil, nil, "no destination"},
		{"twice the same", []string{"127.0.0.1:2/a", "127.0.0.1:2/a"}, nil, "given twice"},
		{"the source itself", []string{"127.0.0.1:1/app"}, nil, "source repository"},
		{"insecure to a remote host", []string{"127.0.0.1:2/a", "registry.example.com/a"}, []distribute.Option{distribute.WithInsecureLoopbackUnsafe()}, "registry.example.com"},
		{"bad jobs", []string{"127.0.0.1:2/a"}, []distribute.Option{distribute.WithJobs(0)}, "WithJobs"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var dests []name.Repository
			for _, s := range tt.dests {
				dests = append(dests, mustRepo(t, s))
			}
			_, err := distribute.Replicate(context.Background(), mustDigest(t, d), dests, tt.opts...)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Replicate: %v, want an error mentioning %q", err, tt.want)
			}
		})
	}
}

// Destinations on other registries share one download of each source blob:
// the source serves every layer once, however many destinations there are.
func TestReplicateReadsEachSourceBlobOnce(t *testing.T) {
	regtest.NeedRegistry(t)
	origin := regtest.StartDistribution(t)
	src := pushSource(t, origin, "src/app")
	proxy := regtest.NewFaultProxy(t, origin.Host)
	var dests []name.Repository
	var regs []*regtest.Registry
	for range 3 {
		r := regtest.StartDistribution(t)
		regs = append(regs, r)
		dests = append(dests, mustRepo(t, r.Host+"/eu/app"))
	}
	ref := mustDigest(t, proxy.Host+"/src/app@"+src.digest)
	if _, err := distribute.Replicate(context.Background(), ref, dests, distribute.WithInsecureLoopbackUnsafe()); err != nil {
		t.Fatal(err)
	}
	served := map[string]int{}
	for _, r := range proxy.Requests() {
		if r.Method == "GET" {
			served[r.Path]++
		}
	}
	for _, layer := range src.layerPaths(t) {
		if n := served[layer]; n != 1 {
			t.Errorf("the source served layer %s %d times for 3 destinations, want once", layer, n)
		}
	}
	for _, r := range regs {
		assertCopy(t, src, r, "eu/app")
	}
}
