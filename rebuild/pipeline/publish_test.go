package pipeline

import (
	"strings"
	"testing"

	"github.com/twinforge/twinforge/attest"
	"github.com/twinforge/twinforge/distribute"
)

func TestPublishSettingsCheck(t *testing.T) {
	none := attest.SignSettings{Sign: "none"}
	keyless := attest.SignSettings{Sign: "keyless"}
	for _, tc := range []struct {
		name   string
		s      PublishSettings
		method string
		push   string
		err    string
	}{
		{"nothing", PublishSettings{SignSettings: none}, "none", "", ""},
		{"push signed", PublishSettings{SignSettings: keyless, SignGiven: true, Push: "reg.example/a:1"}, "keyless", "reg.example/a:1", ""},
		{"push unsigned on purpose", PublishSettings{SignSettings: none, SignGiven: true, Push: "reg.example/a:1"}, "none", "reg.example/a:1", ""},
		{"push without --sign", PublishSettings{SignSettings: none, Push: "reg.example/a:1"}, "", "", "--push publishes only what was signed"},
		{"bad push", PublishSettings{SignSettings: keyless, SignGiven: true, Push: "bad!"}, "", "", `--push "bad!"`},
		{"bad sign", PublishSettings{SignSettings: attest.SignSettings{Sign: "bogus"}}, "", "", `--sign "bogus"`},
		{"bad sbom", PublishSettings{SignSettings: keyless, SBOM: []string{"spdx", "foo"}}, "", "", `--sbom: SBOM format "foo"`},
		{"unsigned sbom", PublishSettings{SignSettings: none, SBOM: []string{"spdx"}}, "", "", "--sbom attests the SBOM"},
		{"bad CA", PublishSettings{SignSettings: none, Registry: distribute.RegistrySettings{CACertFile: "/does/not/exist"}}, "", "", "--ca-cert /does/not/exist"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := tc.s.Check()
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("Check() error = %v; want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if p.Method != tc.method {
				t.Errorf("Method = %q; want %q", p.Method, tc.method)
			}
			if got := ""; p.Push != nil {
				got = p.Push.String()
				if got != tc.push {
					t.Errorf("Push = %q; want %q", got, tc.push)
				}
			} else if tc.push != "" {
				t.Errorf("Push = nil; want %q", tc.push)
			}
		})
	}
}

func TestPublishingApply(t *testing.T) {
	p, err := PublishSettings{SignSettings: attest.SignSettings{Sign: "none"}, SignGiven: true, Push: "127.0.0.1:5000/a:1", BuilderID: "https://b", SBOM: nil}.Check()
	if err != nil {
		t.Fatal(err)
	}
	var r Request
	if err := p.Apply(t.Context(), &r); err != nil {
		t.Fatal(err)
	}
	if r.BuilderID != "https://b" || r.Signer != nil || r.Pusher == nil {
		t.Errorf("Apply set BuilderID %q, Signer %v, Pusher %v; want https://b, nil, a pusher", r.BuilderID, r.Signer, r.Pusher)
	}
}
