package imagediff

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"

	"github.com/twinforge/twinforge/internal/golden"
)

// goldenImages builds two images from uncompressed (static) layers so that
// their digests do not depend on the gzip implementation.
func goldenImages(t *testing.T) (v1.Image, v1.Image) {
	t.Helper()
	l0 := tarBytes(t,
		tfile{name: "app/", typ: tar.TypeDir},
		tfile{name: "app/data", body: "payload\n"},
	)
	l1a := tarBytes(t,
		tfile{name: "etc/", typ: tar.TypeDir},
		tfile{name: "etc/build-time", body: "Thu Jan  1 00:00:00 UTC 1970\n"},
		tfile{name: "etc/config", body: "a=1\nb=2\nc=3\nd=4\ne=5\nf=6\ng=7\nh=8\n"},
		tfile{name: "usr/bin/tool", mode: 0o755, body: "\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00" + "\x03\x00\x3e\x00\x01\x00\x00\x00 build-id 1111"},
		tfile{name: "usr/bin/sh", typ: tar.TypeSymlink, link: "busybox"},
		tfile{name: ".wh.old", body: ""},
	)
	l1b := tarBytes(t,
		tfile{name: "etc/", typ: tar.TypeDir},
		tfile{name: "etc/build-time", mtime: 1764078001, body: "Tue Nov 25 13:40:01 UTC 2026\n"},
		tfile{name: "etc/config", body: "a=1\nb=2\nc=3\nd=4\ne=5\nf=6\ng=7\nh=eight\ni=9\n"},
		tfile{name: "usr/bin/tool", mode: 0o775, body: "\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00" + "\x03\x00\x3e\x00\x01\x00\x00\x00 build-id 2222"},
		tfile{name: "usr/bin/sh", typ: tar.TypeSymlink, uid: 1000, link: "dash"},
		tfile{name: "tmp/random", body: "0123456789abcdef"},
	)
	mk := func(l1 []byte, created time.Time, env []string) v1.Image {
		img := buildImage(t, imgSpec{layers: [][]byte{l0, l1}, env: env, uncompressed: []bool{true, true}})
		cf, err := img.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		cf = cf.DeepCopy()
		cf.Created = v1.Time{Time: created}
		img, err = mutate.ConfigFile(img, cf)
		if err != nil {
			t.Fatal(err)
		}
		return img
	}
	a := mk(l1a, time.Unix(0, 0).UTC(), []string{"PATH=/usr/bin", "SOURCE_DATE_EPOCH=0"})
	b := mk(l1b, time.Date(2026, 11, 25, 13, 40, 1, 0, time.UTC), []string{"PATH=/usr/bin", "SOURCE_DATE_EPOCH=1764078001"})
	return a, b
}

func TestGoldenReport(t *testing.T) {
	a, b := goldenImages(t)
	r, err := Compare(context.Background(), viaLayout(t, a), viaLayout(t, b))
	if err != nil {
		t.Fatal(err)
	}
	var txt bytes.Buffer
	if err := r.WriteText(&txt); err != nil {
		t.Fatal(err)
	}
	golden.Check(t, "report.golden.txt", txt.Bytes())

	js, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	golden.Check(t, "report.golden.json", append(js, '\n'))
}
