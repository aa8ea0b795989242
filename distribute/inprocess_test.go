package distribute_test

// Fast edge-case tests against go-containerregistry's in-process registry.
// The real registries in push_test.go, replicate_test.go and fault_test.go
// are the proof; these run under -short too.

import (
	"context"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"

	"github.com/twinforge/twinforge/distribute"
)

// inProcess starts ggcr's registry, counting the requests it gets.
func inProcess(t *testing.T, referrers bool) (host string, requests *atomic.Int64) {
	t.Helper()
	h := registry.New(registry.WithReferrersSupport(referrers), registry.Logger(log.New(io.Discard, "", 0)))
	requests = new(atomic.Int64)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://"), requests
}

func TestInProcessPushAndReplicate(t *testing.T) {
	ctx := context.Background()
	withAPI, _ := inProcess(t, true)
	without, _ := inProcess(t, false)
	_, img := newLayout(t)

	updates := make(chan distribute.Update, 256)
	res, err := distribute.Push(ctx, img, mustRef(t, withAPI+"/app:v1"), testArtifacts(), distribute.WithInsecureLoopbackUnsafe(), distribute.WithProgress(updates))
	if err != nil {
		t.Fatal(err)
	}
	if res.ReferrersMode != distribute.ReferrersAPI {
		t.Errorf("mode %s", res.ReferrersMode)
	}
	var phases []string
	for u := range updates {
		if len(phases) == 0 || phases[len(phases)-1] != string(u.Phase) {
			phases = append(phases, string(u.Phase))
		}
		if u.Err != nil {
			t.Errorf("update with error: %+v", u)
		}
	}
	if got := strings.Join(phases, ","); got != "upload,referrer,verify,tag,done" {
		t.Errorf("phases = %s", got)
	}

	// From the referrers API to the tag schema and back.
	results, err := distribute.Replicate(ctx, mustDigest(t, res.Reference()), []name.Repository{mustRepo(t, without+"/copy")}, distribute.WithInsecureLoopbackUnsafe())
	if err != nil {
		t.Fatal(err)
	}
	if r := results[0]; r.ReferrersMode != distribute.ReferrersTagSchema || len(r.Referrers) != 2 {
		t.Errorf("to the tag schema: %+v", r)
	}
	results, err = distribute.Replicate(ctx, mustDigest(t, without+"/copy@"+res.Digest.String()), []name.Repository{mustRepo(t, withAPI+"/back")}, distribute.WithInsecureLoopbackUnsafe())
	if err != nil {
		t.Fatal(err)
	}
	if r := results[0]; r.ReferrersMode != distribute.ReferrersAPI || len(r.Referrers) != 2 {
		t.Errorf("back to the API: %+v", r)
	}
}

func TestInProcessNothingSentForBadInput(t *testing.T) {
	host, requests := inProcess(t, true)
	_, img := newLayout(t)
	tests := []struct {
		name string
		arts []distribute.Artifact
		ref  string
		want string
	}{
		{"artifact without type", []distribute.Artifact{{Data: []byte("x")}}, host + "/app:v1", "artifact 1"},
		{"second artifact without data", append(testArtifacts()[:1], distribute.Artifact{ArtifactType: "application/x"}), host + "/app:v1", "artifact 2"},
		{"digest of another image", nil, host + "/app@sha256:" + strings.Repeat("1", 64), "names digest"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := requests.Load()
			_, err := distribute.Push(context.Background(), img, mustRef(t, tt.ref), tt.arts, distribute.WithInsecureLoopbackUnsafe())
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Push: %v, want %q", err, tt.want)
			}
			if n := requests.Load() - before; n != 0 {
				t.Errorf("%d requests sent before the input was refused", n)
			}
		})
	}
}

func TestInProcessReplicateWithoutReferrers(t *testing.T) {
	host, _ := inProcess(t, false)
	_, img := newLayout(t)
	res, err := distribute.Push(context.Background(), img, mustRef(t, host+"/app:v1"), nil, distribute.WithInsecureLoopbackUnsafe())
	if err != nil {
		t.Fatal(err)
	}
	results, err := distribute.Replicate(context.Background(), mustDigest(t, res.Reference()),
		[]name.Repository{mustRepo(t, host+"/a"), mustRepo(t, host+"/b")}, distribute.WithInsecureLoopbackUnsafe(), distribute.WithJobs(1))
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range results {
		if r.Digest != res.Digest || len(r.Referrers) != 0 || r.Err != nil {
			t.Errorf("%+v", r)
		}
	}
}
