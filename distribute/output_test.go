package distribute

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

func TestPushResultText(t *testing.T) {
	h := v1.Hash{Algorithm: "sha256", Hex: "aa"}
	for _, tc := range []struct {
		res  PushResult
		want string
	}{
		{PushResult{Repository: "r.example/app", Digest: h}, "pushed     r.example/app@sha256:aa\n"},
		{PushResult{Repository: "r.example/app", Digest: h, Tag: "1.0", Referrers: []Referrer{{Digest: h, ArtifactType: SigstoreBundleType}}, ReferrersMode: "api"},
			"pushed     r.example/app@sha256:aa\ntag        1.0 (moved after verification)\nreferrer   sha256:aa " + SigstoreBundleType + "\nreferrers  listed by api\n"},
	} {
		var b bytes.Buffer
		if err := tc.res.WriteText(&b); err != nil || b.String() != tc.want {
			t.Errorf("WriteText = %q, %v; want %q", b.String(), err, tc.want)
		}
	}
}

func TestDestResultReport(t *testing.T) {
	repo, _ := name.NewRepository("mirror.example/app")
	h := v1.Hash{Algorithm: "sha256", Hex: "aa"}
	for _, tc := range []struct {
		r    DestResult
		want string
	}{
		{DestResult{Repository: repo, Digest: h, Referrers: []v1.Hash{h}, ReferrersMode: "tag", Duration: 2 * time.Second},
			`{"destination":"mirror.example/app","digest":"sha256:aa","referrers":["sha256:aa"],"referrersMode":"tag","status":"copied","durationMs":2000}`},
		{DestResult{Repository: repo, Digest: h, Skipped: true}, `{"destination":"mirror.example/app","digest":"sha256:aa","referrers":[],"status":"present","durationMs":0}`},
		{DestResult{Repository: repo, Err: errors.New("refused")}, `{"destination":"mirror.example/app","digest":":","referrers":[],"status":"failed","error":"refused","durationMs":0}`},
	} {
		if doc, err := json.Marshal(tc.r.Report()); err != nil || string(doc) != tc.want {
			t.Errorf("Report = %s, %v; want %s", doc, err, tc.want)
		}
	}
}
