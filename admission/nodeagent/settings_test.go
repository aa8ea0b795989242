package nodeagent

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twinforge/twinforge/admission"
)

func TestSettingsServeConfig(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "f")
	if err := os.WriteFile(file, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	inCluster := func() (admission.KubeConfig, error) { return admission.KubeConfig{URL: "https://10.0.0.1:443"}, nil }
	base := func() Settings {
		return Settings{Node: "n", CRIEndpoint: "unix:///run/c.sock", Source: admission.Source{PolicyFile: file}, RecordKeyFile: file,
			Interval: time.Minute, OnMismatch: "alert", OnError: "evict"}
	}
	for _, tc := range []struct {
		name    string
		change  func(*Settings)
		setting string
		want    string
	}{
		{"valid", func(*Settings) {}, "", ""},
		{"no policy", func(s *Settings) { s.Source.PolicyFile = "" }, "policy", "give --policy FILE or --policy-config FILE"},
		{"no node", func(s *Settings) { s.Node = "" }, "node", "give --node NAME (or NODE_NAME): the node the agent runs on"},
		{"no record key", func(s *Settings) { s.RecordKeyFile = "" }, "record-public-key", "give --record-public-key FILE: the public key admission records are verified with"},
		{"bad node", func(s *Settings) { s.Node = "N_x" }, "node", `--node "N_x": `},
		{"tcp runtime", func(s *Settings) { s.CRIEndpoint = "tcp://x" }, "cri", `--cri "tcp://x": use unix:///PATH`},
		{"missing record key", func(s *Settings) { s.RecordKeyFile = "nope" }, "record-public-key", "--record-public-key nope: not a readable file"},
		{"bad on-mismatch", func(s *Settings) { s.OnMismatch = "boom" }, "on-mismatch", "--on-mismatch: "},
		{"bad on-error", func(s *Settings) { s.OnError = "boom" }, "on-error", "--on-error: "},
		{"no interval", func(s *Settings) { s.Interval = 0 }, "interval", "--interval 0s: want more than 0"},
		{"bad exempt namespace", func(s *Settings) { s.ExemptNamespaces = []string{"X_"} }, "exempt-namespace", `--exempt-namespace "X_": `},
		{"token without api", func(s *Settings) { s.Kube.TokenFile = file }, "kube-api", "--kube-token-file and --kube-ca-file need --kube-api"},
		{"api without token", func(s *Settings) { s.Kube.API = "https://x:1" }, "kube-token-file", "--kube-api needs --kube-token-file"},
		{"registry CA missing", func(s *Settings) { s.Registry.CACertFile = "nope" }, "registry-ca-cert", "--registry-ca-cert nope: not a readable file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := base()
			tc.change(&s)
			cfg, err := s.ServeConfig(inCluster)
			if tc.want == "" {
				if err != nil || cfg.Kube.URL != "https://10.0.0.1:443" || len(cfg.Options) != 3 {
					t.Fatalf("ServeConfig = %+v, %v", cfg, err)
				}
				return
			}
			var ce *admission.ConfigError
			if !errors.As(err, &ce) || ce.Setting != tc.setting || !strings.HasPrefix(err.Error(), tc.want) {
				t.Fatalf("ServeConfig error = %v (%T); want a *admission.ConfigError for %s starting %q", err, err, tc.setting, tc.want)
			}
		})
	}
}
