package release

import (
	"crypto/sha256"
	"encoding/json"
	"strings"
	"testing"

	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// FuzzTarget: a release index's targets are read from whatever TUF
// repository a reader is pointed at, and only then checked against the
// roles. Reading a target never panics, and what it accepts is a release
// twinforge could have written: a valid repository and tag that are its
// path, a sha256 image digest and a positive size.
func FuzzTarget(f *testing.F) {
	sum := sha256.Sum256([]byte("manifest"))
	f.Add("payments/app:1.2", "targets", []byte(`{"repository":"payments/app","tag":"1.2","mediaType":"application/vnd.oci.image.manifest.v1+json","provenance":"sha256:`+strings.Repeat("a", 64)+`"}`), sum[:], int64(512))
	f.Add("team/a/b:v1", "team", []byte(`{}`), sum[:], int64(1))
	f.Add("UPPER/app:1", "targets", []byte(`{"repository":"UPPER/app"}`), sum[:], int64(0))
	f.Add("app:", "targets", []byte(`null`), sum[:4], int64(-1))
	f.Fuzz(func(t *testing.T, path, role string, custom, digest []byte, length int64) {
		tf := metadata.TargetFile()
		tf.Path, tf.Length, tf.Hashes = path, length, metadata.Hashes{"sha256": digest}
		if len(custom) > 0 {
			raw := json.RawMessage(custom)
			tf.Custom = &raw
		}
		tg, err := targetFrom(path, role, tf)
		if err != nil {
			return
		}
		switch {
		case tg.Path() != path:
			t.Fatalf("target %q read as %q", path, tg.Path())
		case !sha256Digest.MatchString(tg.Digest):
			t.Fatalf("target %q: digest %q", path, tg.Digest)
		case tg.Size <= 0:
			t.Fatalf("target %q: size %d", path, tg.Size)
		case tg.Provenance != "" && !sha256Digest.MatchString(tg.Provenance):
			t.Fatalf("target %q: provenance %q", path, tg.Provenance)
		}
		if err := validateRepositoryTag(tg.Repository, tg.Tag); err != nil {
			t.Fatalf("target %q accepted with %v", path, err)
		}
		if _, err := targetFile(tg); err != nil {
			t.Fatalf("target %q accepted, but twinforge would not write it: %v", path, err)
		}
	})
}
