package admission

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestServerSettingsOptions(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "f")
	if err := os.WriteFile(file, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	notInCluster := func() (KubeConfig, error) { return KubeConfig{}, errors.New("not in a cluster") }
	base := func() ServerSettings {
		return ServerSettings{
			Source: Source{PolicyFile: file}, CertFile: file, KeyFile: file, Addr: ":8443", MetricsAddr: "127.0.0.1:9090",
			CacheTTL: DefaultCacheTTL, Deadline: DefaultDeadline, PollInterval: DefaultPollInterval,
		}
	}
	for _, tc := range []struct {
		name    string
		change  func(*ServerSettings)
		setting string
		want    string
	}{
		{"valid", func(*ServerSettings) {}, "", ""},
		{"no policy", func(s *ServerSettings) { s.Source.PolicyFile = "" }, "policy", "give --policy FILE or --policy-config FILE"},
		{"both policies", func(s *ServerSettings) { s.Source.ConfigFile = file }, "policy", "give --policy or --policy-config, not both"},
		{"missing key", func(s *ServerSettings) { s.KeyFile = filepath.Join(dir, "nope") }, "tls-key", "--tls-key " + filepath.Join(dir, "nope") + ": not a readable file"},
		{"directory as policy", func(s *ServerSettings) { s.Source.PolicyFile = dir }, "policy", "--policy " + dir + ": not a readable file"},
		{"bad addr", func(s *ServerSettings) { s.Addr = "bad" }, "addr", `--addr "bad": use HOST:PORT or :PORT`},
		{"bad metrics addr", func(s *ServerSettings) { s.MetricsAddr = "bad" }, "metrics-addr", `--metrics-addr "bad": use HOST:PORT`},
		{"token without metrics", func(s *ServerSettings) { s.MetricsAddr, s.MetricsTokenFile = "", file }, "metrics-token-file", "--metrics-token-file needs --metrics-addr"},
		{"allow tags with mutation", func(s *ServerSettings) { s.AllowTagsUnsafe = true }, "allow-tags", "--allow-tags applies to --mutating=false only: with mutation every tag is pinned"},
		{"allow tags validating", func(s *ServerSettings) { s.AllowTagsUnsafe, s.ValidationOnly = true, true }, "", ""},
		{"registry CA missing", func(s *ServerSettings) { s.Registry.CACertFile = "nope" }, "registry-ca-cert", "--registry-ca-cert nope: not a readable file"},
		{"negative interval", func(s *ServerSettings) { s.Reverify.Interval = -time.Second }, "reverify-interval", "--reverify-interval -1s: want 0 (off) or more"},
		{"kube without interval", func(s *ServerSettings) { s.Reverify.Kube.API = "https://x:1" }, "reverify-interval", "--kube-api, --kube-token-file, --kube-ca-file and --reverify-exempt-namespace need --reverify-interval"},
		{"token without api", func(s *ServerSettings) {
			s.Reverify = ReverifySettings{Interval: time.Minute, Kube: KubeAccess{TokenFile: file}}
		}, "kube-api", "--kube-token-file and --kube-ca-file need --kube-api (without it, the pod's service account is used)"},
		{"api without token", func(s *ServerSettings) {
			s.Reverify = ReverifySettings{Interval: time.Minute, Kube: KubeAccess{API: "https://x:1"}}
		}, "kube-token-file", "--kube-api needs --kube-token-file"},
		{"plain http api", func(s *ServerSettings) {
			s.Reverify = ReverifySettings{Interval: time.Minute, Kube: KubeAccess{API: "http://x:1", TokenFile: file}}
		}, "kube-api", `--kube-api "http://x:1": use https://HOST:PORT`},
		{"bad exempt namespace", func(s *ServerSettings) {
			s.Reverify = ReverifySettings{Interval: time.Minute, Kube: KubeAccess{API: "https://x:1", TokenFile: file}, ExemptNamespaces: []string{"Bad_NS"}}
		}, "reverify-exempt-namespace", `--reverify-exempt-namespace "Bad_NS": `},
		{"outside a cluster", func(s *ServerSettings) { s.Reverify.Interval = time.Minute }, "kube-api", "not in a cluster; outside a cluster give --kube-api and --kube-token-file"},
		{"reverify with api", func(s *ServerSettings) {
			s.Reverify = ReverifySettings{Interval: time.Minute, Kube: KubeAccess{API: "https://x:1", TokenFile: file}}
		}, "", ""},
		{"record key not PEM", func(s *ServerSettings) { s.RecordKeyFile = file }, "record-key", "--record-key " + file + ": "},
		{"leader election without reverify", func(s *ServerSettings) { s.LeaderElection = &LeaderElection{Name: "l"} }, "leader-elect", "--leader-elect needs --reverify-interval"},
		{"pull secrets outside a cluster", func(s *ServerSettings) { s.ImagePullSecrets = true }, "kube-api", "not in a cluster; outside a cluster give --kube-api and --kube-token-file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := base()
			tc.change(&s)
			opts, err := s.Options(notInCluster)
			if tc.want == "" {
				if err != nil || len(opts) == 0 {
					t.Fatalf("Options = %d options, %v; want options", len(opts), err)
				}
				return
			}
			var ce *ConfigError
			if !errors.As(err, &ce) || ce.Setting != tc.setting || !strings.HasPrefix(err.Error(), tc.want) {
				t.Fatalf("Options error = %v (%T); want a *ConfigError for %s starting %q", err, err, tc.setting, tc.want)
			}
			if !IsConfigError(err) {
				t.Error("IsConfigError = false")
			}
		})
	}
}

func TestReverifySettingsOff(t *testing.T) {
	opts, err := ReverifySettings{}.Options(false, nil)
	if opts != nil || err != nil {
		t.Fatalf("Options of no re-verification = %v, %v; want nil, nil", opts, err)
	}
}

func TestReverifyReportText(t *testing.T) {
	for _, tc := range []struct {
		name   string
		rep    ReverifyReport
		header bool
		want   []string
		err    string
	}{
		{"failed pass", ReverifyReport{Trigger: "interval", Start: time.Unix(0, 0), Error: "listing pods: refused"}, true,
			[]string{"# interval pass at 1970-01-01T00:00:00Z", "error: listing pods: refused"}, ""},
		{"one violation", ReverifyReport{Pods: 1, Images: 1, Violations: 1, Results: []PodImageResult{
			{Namespace: "ns", Pod: "p", Image: "r/a:1", Digest: "sha256:aa", DigestSource: DigestFromStatus, Result: "denied", Reason: "a\nb"}}}, false,
			[]string{"NAMESPACE  POD  IMAGE  DIGEST               RESULT  REASON", "ns         p    r/a:1  sha256:aa (running)  denied  a b", "1 pod checked, 0 skipped, 1 image, 1 violation"},
			"1 pod image no longer passes verification"},
		{"several", ReverifyReport{Pods: 2, Images: 3, Violations: 2, EventErrors: 2}, false,
			[]string{"2 pods checked, 0 skipped, 3 images, 2 violations", "2 Events could not be recorded (see the log)"},
			"2 pod images no longer pass verification"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var b bytes.Buffer
			if err := tc.rep.WriteText(&b, tc.header); err != nil {
				t.Fatal(err)
			}
			got := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("WriteText =\n%s\nwant\n%s", b.String(), strings.Join(tc.want, "\n"))
			}
			err := tc.rep.ViolationError()
			if (err == nil) != (tc.err == "") || err != nil && err.Error() != tc.err {
				t.Errorf("ViolationError = %v, want %q", err, tc.err)
			}
		})
	}
}
