package admission

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/twinforge/twinforge/distribute"
	"github.com/twinforge/twinforge/distribute/release"
)

// ConfigError is a setting of ServerSettings, ReverifySettings or
// KubeAccess that cannot work: a file that cannot be read, a malformed
// address, settings that contradict each other. Setting names the
// command-line flag at fault (without dashes), and the message names it as
// `twinforge admission` spells it, so the CLI reports it as a usage error.
type ConfigError struct {
	Setting string
	Err     error
}

func (e *ConfigError) Error() string { return e.Err.Error() }
func (e *ConfigError) Unwrap() error { return e.Err }

func configErrorf(setting, format string, args ...any) error {
	return &ConfigError{Setting: setting, Err: fmt.Errorf(format, args...)}
}

// CheckSource checks that exactly one of the policy and the multi-tenant
// configuration is named, and that every file s names can be read.
func CheckSource(s Source) error {
	switch {
	case s.ConfigFile == "" && s.PolicyFile == "":
		return configErrorf("policy", "give --policy FILE or --policy-config FILE")
	case s.ConfigFile != "" && s.PolicyFile != "":
		return configErrorf("policy", "give --policy or --policy-config, not both")
	}
	return CheckFiles(map[string]string{"policy": s.PolicyFile, "policy-config": s.ConfigFile,
		"trusted-root": s.TrustedRootFile, "revocations": s.RevocationsFile})
}

// CheckFiles fails with a *ConfigError for a setting naming a file that
// cannot be read; files maps settings to paths, and empty paths are not
// checked.
func CheckFiles(files map[string]string) error {
	for setting, path := range files {
		if path == "" {
			continue
		}
		if fi, err := os.Stat(path); err != nil || fi.IsDir() {
			return configErrorf(setting, "--%s %s: not a readable file", setting, path)
		}
	}
	return nil
}

// RegistryAccess says how registries are reached.
type RegistryAccess struct {
	// CACertFile (registry-ca-cert) holds CA certificates trusted besides
	// the system's, for registries with a private CA.
	CACertFile string
	// InsecureLoopbackUnsafe (insecure-registry-loopback) allows plain
	// HTTP to loopback registries; for tests.
	InsecureLoopbackUnsafe bool
}

// Options are the webhook options of r.
func (r RegistryAccess) Options() ([]Option, error) {
	var opts []Option
	if r.InsecureLoopbackUnsafe {
		opts = append(opts, WithInsecureLoopbackUnsafe())
	}
	if r.CACertFile != "" {
		if err := CheckFiles(map[string]string{"registry-ca-cert": r.CACertFile}); err != nil {
			return nil, err
		}
		opts = append(opts, WithRegistryOptions(distribute.WithCACert(r.CACertFile)))
	}
	return opts, nil
}

// KubeAccess says how the API server is reached: at API with the bearer
// token of TokenFile and the CA of CAFile, or, with API empty, as the
// pod's service account.
type KubeAccess struct {
	// API (kube-api) is https://HOST:PORT; TokenFile (kube-token-file) is
	// read again for every request; CAFile (kube-ca-file) defaults to the
	// system's roots.
	API, TokenFile, CAFile string
}

func (k KubeAccess) given() bool { return k.API != "" || k.TokenFile != "" || k.CAFile != "" }

func (k KubeAccess) check() error {
	switch {
	case k.API == "" && (k.TokenFile != "" || k.CAFile != ""):
		return configErrorf("kube-api", "--kube-token-file and --kube-ca-file need --kube-api (without it, the pod's service account is used)")
	case k.API != "" && k.TokenFile == "":
		return configErrorf("kube-token-file", "--kube-api needs --kube-token-file")
	}
	return nil
}

func inClusterConfig(inCluster func() (KubeConfig, error)) (KubeConfig, error) {
	k, err := inCluster()
	if err != nil {
		return k, configErrorf("kube-api", "%w; outside a cluster give --kube-api and --kube-token-file", err)
	}
	return k, nil
}

// Config is the KubeConfig of k, checked by making a client of it; with
// API empty it is inCluster's (InClusterKubeConfig in a pod).
func (k KubeAccess) Config(inCluster func() (KubeConfig, error)) (KubeConfig, error) {
	if err := k.check(); err != nil {
		return KubeConfig{}, err
	}
	if k.API == "" {
		return inClusterConfig(inCluster)
	}
	if err := CheckFiles(map[string]string{"kube-token-file": k.TokenFile, "kube-ca-file": k.CAFile}); err != nil {
		return KubeConfig{}, err
	}
	c := KubeConfig{URL: k.API, TokenFile: k.TokenFile, CAFile: k.CAFile}
	if _, err := NewKubernetesClient(c, "twinforge"); err != nil {
		return c, configErrorf("kube-api", "--kube-api: %v", err)
	}
	return c, nil
}

// ReverifySettings turn on the re-verification of running pods.
type ReverifySettings struct {
	// Interval (reverify-interval) is the time between passes; 0 turns
	// re-verification off, unless the caller runs passes itself (once).
	Interval time.Duration
	// Kube is how the pods are listed.
	Kube KubeAccess
	// ExemptNamespaces (reverify-exempt-namespace) are not re-verified.
	ExemptNamespaces []string
}

// Options are the webhook options of r: nil when Interval is 0 and once
// is false (re-verification off). With once, the caller runs the passes
// (Webhook.Reverify) and Interval only paces continuous ones.
func (r ReverifySettings) Options(once bool, inCluster func() (KubeConfig, error)) ([]Option, error) {
	switch {
	case r.Interval < 0:
		return nil, configErrorf("reverify-interval", "--reverify-interval %s: want 0 (off) or more", r.Interval)
	case r.Interval == 0 && !once:
		if r.Kube.given() || len(r.ExemptNamespaces) > 0 {
			return nil, configErrorf("reverify-interval", "--kube-api, --kube-token-file, --kube-ca-file and --reverify-exempt-namespace need --reverify-interval")
		}
		return nil, nil
	}
	if err := r.Kube.check(); err != nil {
		return nil, err
	}
	if err := CheckFiles(map[string]string{"kube-token-file": r.Kube.TokenFile, "kube-ca-file": r.Kube.CAFile}); err != nil {
		return nil, err
	}
	if err := CheckNamespaces("reverify-exempt-namespace", r.ExemptNamespaces); err != nil {
		return nil, err
	}
	if api := r.Kube.API; api != "" {
		if u, err := url.Parse(api); err != nil || u.Scheme != "https" || u.Host == "" {
			return nil, configErrorf("kube-api", "--kube-api %q: use https://HOST:PORT", api)
		}
	}
	k := KubeConfig{URL: r.Kube.API, TokenFile: r.Kube.TokenFile, CAFile: r.Kube.CAFile}
	if r.Kube.API == "" {
		var err error
		if k, err = inClusterConfig(inCluster); err != nil {
			return nil, err
		}
	}
	opts := []Option{WithReverification(k), WithReverifyInterval(r.Interval)}
	if len(r.ExemptNamespaces) > 0 {
		opts = append(opts, WithReverifyExemptNamespaces(r.ExemptNamespaces...))
	}
	return opts, nil
}

// CheckNamespaces fails with a *ConfigError for a name that is not a
// namespace's (a DNS-1123 label).
func CheckNamespaces(setting string, namespaces []string) error {
	for _, ns := range namespaces {
		if errs := validation.IsDNS1123Label(ns); len(errs) > 0 {
			return configErrorf(setting, "--%s %q: %s", setting, ns, strings.Join(errs, "; "))
		}
	}
	return nil
}

// ServerSettings are what `twinforge admission serve` runs the webhook
// with, each field named after its flag. Options checks them and turns
// them into the options of New and the addresses to serve on.
type ServerSettings struct {
	Source Source
	// CertFile and KeyFile (tls-cert, tls-key) are the serving
	// certificate and key.
	CertFile, KeyFile string
	// Addr is the webhook's listen address; MetricsAddr that of
	// monitoring ("": off), and MetricsTokenFile its bearer token.
	Addr, MetricsAddr, MetricsTokenFile string
	// ValidationOnly (mutating=false) serves /validate alone;
	// AllowTagsUnsafe (allow-tags) then admits images named by tag.
	ValidationOnly, AllowTagsUnsafe bool
	// CacheTTL, Deadline and PollInterval are given to WithCacheTTL,
	// WithDeadline and WithPollInterval; NegativeCacheTTL and CacheSize,
	// when not nil, to WithNegativeCacheTTL and WithCacheSize.
	CacheTTL, Deadline, PollInterval time.Duration
	NegativeCacheTTL                 *time.Duration
	CacheSize                        *int
	Registry                         RegistryAccess
	Reverify                         ReverifySettings
	// RecordKeyFile (record-key) is the PEM Ed25519 key admission
	// records are signed with ("": no records).
	RecordKeyFile string
	// LeaderElection, when not nil, elects the replica that re-verifies.
	LeaderElection *LeaderElection
	// ImagePullSecrets (image-pull-secrets) reaches registries with the
	// pods' pull secrets too, read through the API server as Kube says.
	ImagePullSecrets bool
	Kube             KubeAccess
	// Release (release-repo, release-root, release-state), when it names
	// an index, is the release index of this cluster's region: every image
	// must also be released as the digest it resolves to. It is read
	// through Registry's CA. ReleaseRefresh (release-refresh) is how often
	// it is read again.
	Release        release.ReaderSettings
	ReleaseRefresh time.Duration
}

// Options checks s and returns the options of New; inCluster gives the
// pod's own KubeConfig when s names no API server.
func (s ServerSettings) Options(inCluster func() (KubeConfig, error)) ([]Option, error) {
	if err := CheckSource(s.Source); err != nil {
		return nil, err
	}
	if err := CheckFiles(map[string]string{"tls-cert": s.CertFile, "tls-key": s.KeyFile, "metrics-token-file": s.MetricsTokenFile}); err != nil {
		return nil, err
	}
	if _, _, err := net.SplitHostPort(s.Addr); err != nil {
		return nil, configErrorf("addr", "--addr %q: use HOST:PORT or :PORT", s.Addr)
	}
	if s.MetricsAddr != "" {
		if _, _, err := net.SplitHostPort(s.MetricsAddr); err != nil {
			return nil, configErrorf("metrics-addr", "--metrics-addr %q: use HOST:PORT", s.MetricsAddr)
		}
	} else if s.MetricsTokenFile != "" {
		return nil, configErrorf("metrics-token-file", "--metrics-token-file needs --metrics-addr")
	}
	opts := []Option{WithCacheTTL(s.CacheTTL), WithDeadline(s.Deadline), WithPollInterval(s.PollInterval)}
	if s.NegativeCacheTTL != nil {
		opts = append(opts, WithNegativeCacheTTL(*s.NegativeCacheTTL))
	}
	if s.CacheSize != nil {
		opts = append(opts, WithCacheSize(*s.CacheSize))
	}
	if s.ValidationOnly {
		opts = append(opts, WithValidationOnly())
	}
	if s.AllowTagsUnsafe {
		if !s.ValidationOnly {
			return nil, configErrorf("allow-tags", "--allow-tags applies to --mutating=false only: with mutation every tag is pinned")
		}
		opts = append(opts, WithAllowTagsUnsafe())
	}
	reg, err := s.Registry.Options()
	if err != nil {
		return nil, err
	}
	rv, err := s.Reverify.Options(false, inCluster)
	if err != nil {
		return nil, err
	}
	opts = append(append(opts, reg...), rv...)
	if key := s.RecordKeyFile; key != "" {
		if err := CheckFiles(map[string]string{"record-key": key}); err != nil {
			return nil, err
		}
		data, err := os.ReadFile(key)
		if err != nil {
			return nil, configErrorf("record-key", "--record-key: %v", err)
		}
		k, err := ParseRecordKey(data)
		if err != nil {
			return nil, configErrorf("record-key", "--record-key %s: %v", key, err)
		}
		opts = append(opts, WithRecordKey(k))
	}
	if s.LeaderElection != nil {
		if rv == nil {
			return nil, configErrorf("leader-elect", "--leader-elect needs --reverify-interval")
		}
		opts = append(opts, WithReverifyLeaderElection(*s.LeaderElection))
	}
	if s.ImagePullSecrets {
		k, err := s.Kube.Config(inCluster)
		if err != nil {
			return nil, err
		}
		opts = append(opts, WithImagePullSecrets(k))
	}
	return opts, nil
}

// ReleaseIndexOption is WithReleaseIndex for the index cfg names, reached
// over plain HTTP when it is on a loopback registry and
// insecureLoopbackUnsafe allows it (RegistryAccess.InsecureLoopbackUnsafe).
func ReleaseIndexOption(cfg release.ClientConfig, insecureLoopbackUnsafe bool, refresh time.Duration) (Option, error) {
	if insecureLoopbackUnsafe {
		cfg.Registry = append(cfg.Registry, distribute.WithLoopbackHTTPUnsafe())
	}
	client, err := release.NewClient(cfg)
	if err != nil {
		return nil, &ConfigError{Setting: "release-repo", Err: err}
	}
	return WithReleaseIndex(client, refresh), nil
}

// IsConfigError reports whether err, of New or of the settings' checks, is
// the configuration's fault (a setting that cannot work, a file that is
// missing or does not parse) rather than the environment's.
func IsConfigError(err error) bool {
	var ce *ConfigError
	return errors.As(err, &ce) || errors.Is(err, ErrInvalidConfig) || errors.Is(err, os.ErrNotExist)
}

// WriteText writes the report as the table `twinforge admission reverify`
// prints; with header, a first line names the pass (continuous passes).
func (rep *ReverifyReport) WriteText(w io.Writer, header bool) error {
	if header {
		if _, err := fmt.Fprintf(w, "# %s pass at %s\n", rep.Trigger, rep.Start.UTC().Format(time.RFC3339)); err != nil {
			return err
		}
	}
	if rep.Error != "" {
		_, err := fmt.Fprintf(w, "error: %s\n", rep.Error)
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	if len(rep.Results) > 0 {
		fmt.Fprintln(tw, "NAMESPACE\tPOD\tIMAGE\tDIGEST\tRESULT\tREASON")
	}
	for _, r := range rep.Results {
		digest := r.Digest
		if digest == "" {
			digest = "-"
		} else if r.DigestSource == DigestFromStatus {
			digest += " (running)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.Namespace, r.Pod, r.Image, digest, r.Result, strings.ReplaceAll(r.Reason, "\n", " "))
	}
	fmt.Fprintf(tw, "%d pod%s checked, %d skipped, %d image%s, %d violation%s\n", rep.Pods, plural(rep.Pods),
		rep.Skipped, rep.Images, plural(rep.Images), rep.Violations, plural(rep.Violations))
	if rep.EventErrors > 0 {
		fmt.Fprintf(tw, "%d Event%s could not be recorded (see the log)\n", rep.EventErrors, plural(rep.EventErrors))
	}
	return tw.Flush()
}

// WriteJSONLine writes the report as one line of JSON, as continuous
// passes print it.
func (rep *ReverifyReport) WriteJSONLine(w io.Writer) error { return json.NewEncoder(w).Encode(rep) }

// ViolationError is the error of a pass with violations; nil without.
func (rep *ReverifyReport) ViolationError() error {
	switch n := rep.Violations; n {
	case 0:
		return nil
	case 1:
		return errors.New("1 pod image no longer passes verification")
	default:
		return fmt.Errorf("%d pod images no longer pass verification", n)
	}
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// ListenAndServe serves wh as s says: the webhook on Addr and, unless
// MetricsAddr is empty, its monitoring endpoints on MetricsAddr, until ctx
// ends (see Serve).
func (s ServerSettings) ListenAndServe(ctx context.Context, wh Webhook, log *slog.Logger) error {
	ln, err := net.Listen("tcp", s.Addr)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", s.Addr, err)
	}
	cfg := ServeConfig{CertFile: s.CertFile, KeyFile: s.KeyFile, Logger: log, ShutdownTimeout: 15 * time.Second}
	if s.MetricsAddr != "" {
		mln, err := net.Listen("tcp", s.MetricsAddr)
		if err != nil {
			return fmt.Errorf("listening on %s: %w", s.MetricsAddr, err)
		}
		cfg.Monitoring = &MonitoringConfig{Listener: mln, Handler: wh.Monitoring(), TokenFile: s.MetricsTokenFile}
	}
	return Serve(ctx, ln, wh, cfg)
}

// WriteReports writes each report of a continuous re-verification (see
// WithReverifyReports) to w as it comes, as text or one JSON line, until
// ctx ends or reports is closed.
func WriteReports(ctx context.Context, w io.Writer, asJSON bool, reports <-chan *ReverifyReport) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case rep, ok := <-reports:
			if !ok {
				return nil
			}
			var err error
			if asJSON {
				err = rep.WriteJSONLine(w)
			} else {
				err = rep.WriteText(w, true)
			}
			if err != nil {
				return err
			}
		}
	}
}
