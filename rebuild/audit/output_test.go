package audit

import (
	"bytes"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/twinforge/twinforge/distribute"
	goldenfile "github.com/twinforge/twinforge/internal/golden"
	"github.com/twinforge/twinforge/isolation"
	"github.com/twinforge/twinforge/rebuild"
)

func TestReportText(t *testing.T) {
	base := Report{Image: "registry.example/team/hello@sha256:aa", Digest: "sha256:aa", RebuiltDigest: "sha256:aa", Reproduction: "reproduced",
		Reproducible: true, OCILayout: "out/rebuild-aa", Rebuilder: isolation.Info{BuildKitVersion: "v0.26.0", Runc: "runc 1.3"},
		RebuilderID: "https://rebuild.example/v1", Variations: []string{"hostname: a → b", "cpus: 2 → 1"}, StrictVariations: rebuild.StrictOff, DurationSeconds: 12.34}
	push := &distribute.PushResult{Repository: "registry.example/team/hello", Digest: v1.Hash{Algorithm: "sha256", Hex: "aa"},
		Referrers: []distribute.Referrer{{Digest: v1.Hash{Algorithm: "sha256", Hex: "cc"}}}, ReferrersMode: "api"}
	for _, tc := range []struct {
		name   string
		change func(*Report)
	}{
		{"cloned-signed-pushed", func(r *Report) {
			r.ResolvedFrom = "registry.example/team/hello:1.0"
			r.Source = Checkout{Repository: "https://git.example/hello", Commit: "abc"}
			r.Verdict = &Verdict{Method: "keyless", Identity: "rebuilder@example.test", Files: []string{"hello.verdict.json"}, Push: push}
		}},
		{"checkout-unsigned", func(r *Report) {
			r.Source = Checkout{Commit: "abc", Dir: "/src/hello"}
			r.Verdict = &Verdict{Method: "none"}
			r.Warnings = []rebuild.Warning{{Path: "/whoami", Variation: "umask"}}
		}},
		{"tree-not-reproduced", func(r *Report) {
			r.Source = Checkout{Dir: "/src/hello"}
			r.Reproducible, r.Reproduction, r.RebuiltDigest = false, "not reproducible", "sha256:bb"
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := base
			tc.change(&r)
			var b bytes.Buffer
			if err := r.WriteText(&b); err != nil {
				t.Fatal(err)
			}
			goldenfile.Check(t, "report-"+tc.name+".txt", b.Bytes())
		})
	}
}
