package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sigstore/sigstore-go/pkg/bundle"

	"github.com/twinforge/twinforge/internal/sigtest"
)

// writeAttackLayout writes the image of an attack as an OCI layout with
// its evidence beside it, where twinforge build puts it, and the policy
// and trusted root files; it returns their paths.
func writeAttackLayout(t *testing.T, at sigtest.Attack) (layout, policy, trustedRoot string) {
	t.Helper()
	dir := t.TempDir()
	layout = filepath.Join(dir, "image")
	hex := strings.TrimPrefix(at.Digest, "sha256:")
	write(t, mkdirs(t, filepath.Join(layout, "oci-layout")), `{"imageLayoutVersion":"1.0.0"}`)
	write(t, filepath.Join(layout, "index.json"), fmt.Sprintf(`{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":%q,"size":%d}]}`, at.Digest, len(at.Manifest)))
	write(t, mkdirs(t, filepath.Join(layout, "blobs", "sha256", hex)), string(at.Manifest))
	put := func(path string, b *bundle.Bundle) {
		if b == nil {
			return
		}
		data, err := b.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		write(t, mkdirs(t, path), string(data))
	}
	put(filepath.Join(layout, "attestations", "provenance.sigstore.json"), at.Provenance)
	put(filepath.Join(layout, "attestations", "image.sigstore.json"), at.Image)
	for i, v := range at.Verdicts {
		put(filepath.Join(layout, "attestations", "verdicts", fmt.Sprintf("%02d.sigstore.json", i)), v)
	}
	policy = filepath.Join(dir, "policy.yaml")
	write(t, policy, at.Policy)
	trJSON, err := at.TrustedRoot.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	trustedRoot = filepath.Join(dir, "trusted_root.json")
	write(t, trustedRoot, string(trJSON))
	return layout, policy, trustedRoot
}

func mkdirs(t *testing.T, file string) string {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		t.Fatal(err)
	}
	return file
}

// TestVerifyExits4OnAttacks runs twinforge verify on each piece of forged
// evidence of sigtest's catalogue, stored as twinforge build stores it:
// each exits 4, and --output json names the check that refused it; the
// good evidence exits 0, and so does evidence beside a bundle no policy
// identity signed, which is skipped.
func TestVerifyExits4OnAttacks(t *testing.T) {
	auth, err := sigtest.New()
	if err != nil {
		t.Fatal(err)
	}
	attacks, err := sigtest.Attacks(auth)
	if err != nil {
		t.Fatal(err)
	}
	c := newCLI(t)
	refused := 0
	for _, at := range attacks {
		t.Run(at.Name, func(t *testing.T) {
			layout, policy, tr := writeAttackLayout(t, at)
			r := c.run("verify", "--output", "json", "--policy", policy, "--trusted-root", tr, layout)
			var got struct {
				Verified bool
				Digest   string
				Check    string
			}
			if err := json.Unmarshal([]byte(r.stdout), &got); err != nil {
				t.Fatalf("exit %d, output is not JSON: %v\n%s%s", r.code, err, r.stdout, r.stderr)
			}
			if at.Check == "" {
				if r.code != exitOK || !got.Verified || got.Digest != at.Digest {
					t.Fatalf("good evidence: exit %d, %+v\n%s", r.code, got, r.stderr)
				}
				return
			}
			if at.IgnoredInRegistry {
				// twinforge verify finds evidence as admission does
				// (attest/evidence), in a layout as in a registry: a
				// bundle no policy identity signed is skipped, and the
				// image verifies by its other evidence.
				if r.code != exitOK || !got.Verified || got.Digest != at.Digest {
					t.Fatalf("a bundle no policy identity signed was not skipped: exit %d, %+v\n%s", r.code, got, r.stderr)
				}
				return
			}
			if r.code != exitRefused || got.Verified {
				t.Fatalf("exit %d, verified %v; want 4 (refused by %s)\n%s", r.code, got.Verified, at.Check, r.stderr)
			}
			if got.Check != at.Check || got.Digest != at.Digest {
				t.Fatalf("refused by %q about %s, want %q about %s\n%s", got.Check, got.Digest, at.Check, at.Digest, r.stderr)
			}
			assertContains(t, "stderr", r.stderr, "refused")
			refused++
		})
	}
	t.Logf("%d attacks exited 4, each naming its check", refused)
}
