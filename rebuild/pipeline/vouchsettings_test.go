package pipeline

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/twinforge/twinforge/attest"
	"github.com/twinforge/twinforge/isolation/kube"
	"github.com/twinforge/twinforge/rebuild"
)

func TestNewVouch(t *testing.T) {
	dir := t.TempDir()
	key, other := filepath.Join(dir, "builder.key"), filepath.Join(dir, "rebuilder.key")
	for _, f := range []string{key, other} {
		if err := os.WriteFile(f, []byte("k"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	str := func(s string) *string { return &s }
	remote := &rebuild.Workers{Rebuild: "tcp://b:1"}
	signed := attest.SignSettings{Sign: "key=" + key, TSAURL: "https://tsa.example", RekorURL: "https://rekor.example"}
	for _, tc := range []struct {
		name    string
		s       VouchSettings
		workers *rebuild.Workers
		b       attest.SignSettings
		err     string
		want    string // the rebuilder's key or token file
	}{
		{name: "off", s: VouchSettings{}},
		{name: "password without method", s: VouchSettings{KeyPasswordFile: str("")}, err: "--rebuilder-key-password-file applies to --rebuilder-sign only"},
		{name: "token without method", s: VouchSettings{IDTokenFile: str("t")}, err: "--rebuilder-identity-token-file applies to --rebuilder-sign only"},
		{name: "private rebuild", s: VouchSettings{Method: "key=" + other}, b: signed, err: "--rebuilder-sign: the rebuilder vouches only for a rebuild on a worker of its own"},
		{name: "pool rebuild", s: VouchSettings{Method: "key=" + other}, workers: &rebuild.Workers{Pool: &kube.Cluster{}}, b: signed, want: other},
		{name: "unsigned build", s: VouchSettings{Method: "keyless"}, workers: remote, b: attest.SignSettings{Sign: "none"}, err: "--rebuilder-sign vouches for a signed provenance"},
		{name: "keyless without token", s: VouchSettings{Method: "keyless"}, workers: remote, b: signed, err: "--rebuilder-sign keyless needs the rebuilder's own token"},
		{name: "keyless with password", s: VouchSettings{Method: "keyless", IDTokenFile: str(other), KeyPasswordFile: str(key)}, workers: remote, b: signed,
			err: "--rebuilder-key-password-file applies to --rebuilder-sign key=FILE only"},
		{name: "key with token", s: VouchSettings{Method: "key=" + other, IDTokenFile: str(key)}, workers: remote, b: signed,
			err: "--rebuilder-identity-token-file applies to --rebuilder-sign keyless only"},
		{name: "builder's own key", s: VouchSettings{Method: "key=" + key}, workers: remote, b: signed,
			err: "--rebuilder-sign key=" + key + " is the builder's own key (--sign): a builder does not vouch for itself"},
		{name: "unknown method", s: VouchSettings{Method: "boom"}, workers: remote, b: signed, err: `--rebuilder-sign "boom": use key=FILE or keyless`},
		{name: "missing key", s: VouchSettings{Method: "key=nope"}, workers: remote, b: signed, err: "--rebuilder-sign: stat nope"},
		{name: "keyless", s: VouchSettings{Method: "keyless", IDTokenFile: str(other)}, workers: remote, b: signed, want: other},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, err := NewVouch(tc.s, tc.workers, tc.b)
			switch {
			case tc.err != "":
				if err == nil || !strings.HasPrefix(err.Error(), tc.err) {
					t.Fatalf("NewVouch error = %v, want %q", err, tc.err)
				}
			case err != nil:
				t.Fatal(err)
			case tc.want == "":
				if v != nil {
					t.Fatalf("NewVouch = %+v, want nil", v)
				}
			case v.Signer.KeyPath != tc.want && v.Signer.IDTokenFile != tc.want:
				t.Fatalf("NewVouch signer = %+v, want %s", v.Signer, tc.want)
			case v.Signer.KeyPath != "" && v.Signer.TSAURL != "":
				t.Errorf("a key signature got the default timestamp authority %s", v.Signer.TSAURL)
			}
		})
	}
}
