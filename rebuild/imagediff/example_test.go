package imagediff_test

import (
	"encoding/json"
	"os"

	"github.com/twinforge/twinforge/rebuild/imagediff"
)

func ExampleReport_WriteText() {
	r := &imagediff.Report{
		A: imagediff.ImageSummary{Digest: "sha256:aaa", Platform: "linux/amd64"},
		B: imagediff.ImageSummary{Digest: "sha256:bbb", Platform: "linux/amd64"},
		Config: []imagediff.JSONChange{
			{Path: "$.created", A: json.RawMessage(`"1970-01-01T00:00:00Z"`), B: json.RawMessage(`"2026-11-25T13:40:01Z"`)},
			{Path: "$.config.Env[2]", B: json.RawMessage(`"TZ=UTC"`)},
		},
		Layers: []imagediff.LayerDiff{{
			Index:   1,
			ADiffID: "sha256:111", BDiffID: "sha256:222",
			ADigest: "sha256:111", BDigest: "sha256:222",
			Files: []imagediff.FileChange{
				{Path: "app/data", Kind: "changed", Fields: []imagediff.FieldChange{{Name: "mode", A: "0644", B: "0664"}}},
				{
					Path: "etc/build-time", Kind: "changed",
					Fields: []imagediff.FieldChange{
						{Name: "mtime", A: "0", B: "1764078001"},
						{Name: "content", A: "sha256:f586…", B: "sha256:4221…"},
					},
					TextDiff: "@@ -1 +1 @@\n-Thu Jan  1 00:00:00 UTC 1970\n+Tue Nov 25 13:40:01 UTC 2026",
				},
				{Path: "tmp/random", Kind: "added", Info: "file 0644 0:0 16 bytes"},
			},
		}},
	}
	_ = r.WriteText(os.Stdout)
	// Output:
	// --- a: sha256:aaa (linux/amd64)
	// +++ b: sha256:bbb (linux/amd64)
	// config:
	//   $.created: "1970-01-01T00:00:00Z" → "2026-11-25T13:40:01Z"
	//   $.config.Env[2]: (absent) → "TZ=UTC"
	// layer 1 (diffID sha256:111 → sha256:222):
	//   changed  app/data  mode: 0644 → 0664
	//   changed  etc/build-time  mtime: 0 → 1764078001; content: sha256:f586… → sha256:4221…
	//     @@ -1 +1 @@
	//     -Thu Jan  1 00:00:00 UTC 1970
	//     +Tue Nov 25 13:40:01 UTC 2026
	//   added    tmp/random  file 0644 0:0 16 bytes
}
