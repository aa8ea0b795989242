package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/urfave/cli/v2"

	"github.com/twinforge/twinforge/admission"
)

func admissionCommand() *cli.Command {
	return &cli.Command{
		Name:  "admission",
		Usage: "the Kubernetes admission webhook that admits only verified images",
		Description: `Runs and installs twinforge's validating (and optionally mutating) admission
webhook: every container image of a Pod, Deployment, StatefulSet, DaemonSet,
ReplicaSet, Job or CronJob must carry twinforge evidence (provenance and image
signature, pushed as OCI 1.1 referrers) that verifies against the policy of
its namespace, as 'twinforge verify' checks it. Anything else is denied, with
the image and the failed check in the message kubectl shows.`,
		Subcommands: []*cli.Command{admissionServeCommand(), admissionManifestsCommand()},
	}
}

func admissionServeCommand() *cli.Command {
	return &cli.Command{
		Name:  "serve",
		Usage: "serve the admission webhook over HTTPS",
		Description: `Serves /validate (and with --mutating /mutate), /healthz, /readyz and /metrics
over HTTPS until SIGTERM or SIGINT, then finishes the reviews in progress.

The policy is one attest policy for every namespace (--policy, see
attest/policy.md) or a multi-tenant configuration mapping namespaces and image
patterns to policies (--policy-config, see admission/config.md). Every file is
re-read when it changes; one that no longer parses is reported and the last
good version stays. Registry, Sigstore and timeout errors deny (fail closed),
within --deadline. Logs are JSON on stderr.

Examples:
  twinforge admission serve --policy policy.yaml --trusted-root trusted_root.json \
      --tls-cert tls.crt --tls-key tls.key
  twinforge admission serve --policy-config tenants.yaml --trusted-root trusted_root.json \
      --tls-cert tls.crt --tls-key tls.key --mutating --revocations revoked.txt`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "policy", Usage: "one policy `FILE` for every namespace and image (attest/policy.md)"},
			&cli.StringFlag{Name: "policy-config", Usage: "multi-tenant configuration `FILE` (admission/config.md)"},
			&cli.StringFlag{Name: "trusted-root", Usage: "Sigstore trusted root `FILE` (trusted_root.json)"},
			&cli.StringFlag{Name: "tls-cert", Usage: "serving certificate PEM `FILE`", Required: true},
			&cli.StringFlag{Name: "tls-key", Usage: "serving key PEM `FILE`", Required: true},
			&cli.StringFlag{Name: "addr", Value: ":8443", Usage: "listen `ADDRESS`"},
			&cli.BoolFlag{Name: "mutating", Usage: "also serve /mutate: pin images named by tag to the digest verified"},
			&cli.StringFlag{Name: "revocations", Usage: "revocation list `FILE`: one sha256 digest per line, denied at once"},
			&cli.DurationFlag{Name: "cache-ttl", Value: admission.DefaultCacheTTL, Usage: "how long an admitted digest stays verified (0: no cache)"},
			&cli.DurationFlag{Name: "negative-cache-ttl", Value: admission.DefaultNegativeCacheTTL, Usage: "how long a refused digest stays refused"},
			&cli.IntFlag{Name: "cache-size", Value: admission.DefaultCacheSize, Usage: "decisions the cache holds"},
			&cli.DurationFlag{Name: "deadline", Value: admission.DefaultDeadline, Usage: "time to decide one review; below the webhook's timeoutSeconds (10s)"},
			&cli.DurationFlag{Name: "poll-interval", Value: admission.DefaultPollInterval, Usage: "how often the files are checked for changes (0: never)"},
			&cli.StringFlag{Name: "registry-ca-cert", Usage: "trust the CA certificates in PEM `FILE` too, for registries with a private CA"},
			&cli.BoolFlag{Name: "insecure-registry-loopback", Usage: "allow plain HTTP to loopback registries (127.0.0.0/8, ::1, localhost); for tests"},
		},
		Action: runAdmissionServe,
	}
}

// admissionServeOptions is what the serve flags parse to.
type admissionServeOptions struct {
	source     admission.Source
	certFile   string
	keyFile    string
	addr       string
	registryCA string
	opts       []admission.Option
	logLevel   slog.Level
}

func admissionServeOptionsFrom(c *cli.Context) (*admissionServeOptions, error) {
	if c.NArg() != 0 {
		return nil, usageErrorf("admission serve takes no arguments, got %q", c.Args().Slice())
	}
	o := &admissionServeOptions{
		source: admission.Source{
			ConfigFile:      c.String("policy-config"),
			PolicyFile:      c.String("policy"),
			TrustedRootFile: c.String("trusted-root"),
			RevocationsFile: c.String("revocations"),
		},
		certFile:   c.String("tls-cert"),
		keyFile:    c.String("tls-key"),
		addr:       c.String("addr"),
		registryCA: c.String("registry-ca-cert"),
		logLevel:   slog.LevelInfo,
	}
	switch {
	case o.source.ConfigFile == "" && o.source.PolicyFile == "":
		return nil, usageErrorf("give --policy FILE or --policy-config FILE")
	case o.source.ConfigFile != "" && o.source.PolicyFile != "":
		return nil, usageErrorf("give --policy or --policy-config, not both")
	}
	for flag, path := range map[string]string{"policy": o.source.PolicyFile, "policy-config": o.source.ConfigFile,
		"trusted-root": o.source.TrustedRootFile, "revocations": o.source.RevocationsFile,
		"tls-cert": o.certFile, "tls-key": o.keyFile, "registry-ca-cert": o.registryCA} {
		if path == "" {
			continue
		}
		if fi, err := os.Stat(path); err != nil || fi.IsDir() {
			return nil, usageErrorf("--%s %s: not a readable file", flag, path)
		}
	}
	if _, _, err := net.SplitHostPort(o.addr); err != nil {
		return nil, usageErrorf("--addr %q: use HOST:PORT or :PORT", o.addr)
	}
	if c.IsSet("log-level") {
		if err := o.logLevel.UnmarshalText([]byte(c.String("log-level"))); err != nil {
			return nil, usageErrorf("--log-level %q: use debug, info, warn or error", c.String("log-level"))
		}
	}
	o.opts = []admission.Option{
		admission.WithCacheTTL(c.Duration("cache-ttl")),
		admission.WithDeadline(c.Duration("deadline")),
		admission.WithPollInterval(c.Duration("poll-interval")),
	}
	if c.IsSet("negative-cache-ttl") {
		o.opts = append(o.opts, admission.WithNegativeCacheTTL(c.Duration("negative-cache-ttl")))
	}
	if c.IsSet("cache-size") {
		o.opts = append(o.opts, admission.WithCacheSize(c.Int("cache-size")))
	}
	if c.Bool("mutating") {
		o.opts = append(o.opts, admission.WithMutation())
	}
	if c.Bool("insecure-registry-loopback") {
		o.opts = append(o.opts, admission.WithInsecureLoopbackUnsafe())
	}
	if o.registryCA != "" {
		rt, err := transportWithCA(o.registryCA)
		if err != nil {
			return nil, usageError(err)
		}
		o.opts = append(o.opts, admission.WithTransport(rt))
	}
	return o, nil
}

// transportWithCA is go-containerregistry's default transport trusting the
// CA certificates in a PEM file besides the system's.
func transportWithCA(path string) (http.RoundTripper, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--registry-ca-cert: %w", err)
	}
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("--registry-ca-cert %s: no PEM certificate", path)
	}
	t := remote.DefaultTransport.(*http.Transport).Clone()
	t.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	return t, nil
}

func runAdmissionServe(c *cli.Context) error {
	o, err := admissionServeOptionsFrom(c)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewJSONHandler(c.App.ErrWriter, &slog.HandlerOptions{Level: o.logLevel}))
	wh, err := admission.New(o.source, append(o.opts, admission.WithLogger(log))...)
	if err != nil {
		if errors.Is(err, admission.ErrInvalidConfig) || errors.Is(err, os.ErrNotExist) {
			return usageError(err)
		}
		return err
	}
	defer wh.Close()
	ln, err := net.Listen("tcp", o.addr)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", o.addr, err)
	}
	return admission.Serve(c.Context, ln, wh, admission.ServeConfig{
		CertFile: o.certFile, KeyFile: o.keyFile, Logger: log, ShutdownTimeout: 15 * time.Second,
	})
}

func admissionManifestsCommand() *cli.Command {
	return &cli.Command{
		Name:  "manifests",
		Usage: "print the Kubernetes objects that install the webhook (YAML)",
		Description: `Prints the ValidatingWebhookConfiguration (with --mutating also the
MutatingWebhookConfiguration), and the Deployment and Service that run the
webhook in NAMESPACE, as a YAML stream for kubectl apply -f -. The
configurations fail closed (failurePolicy Fail), time out after 10 seconds,
have no side effects and cover the CREATE and UPDATE of pods and of the
workloads with pod templates; NAMESPACE itself is exempt so the webhook can
start.

The Deployment mounts the ConfigMap NAME-config (config.yaml, the policies,
trusted_root.json) and the TLS Secret NAME-tls, which you create; --ca-bundle
is the CA that signed that certificate.

With --url the webhook runs outside the cluster at that address (for example
a loopback test): the configurations point at it and no Deployment or Service
is printed.

Examples:
  twinforge admission manifests --namespace twinforge-system --ca-bundle ca.pem \
      --image registry.example/twinforge@sha256:... | kubectl apply -f -
  twinforge admission manifests --namespace twinforge-system --ca-bundle ca.pem \
      --url https://127.0.0.1:8443/validate --mutating`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "namespace", Aliases: []string{"n"}, Usage: "`NAMESPACE` the webhook runs in (exempt from it)", Required: true},
			&cli.StringFlag{Name: "ca-bundle", Usage: "PEM `FILE` of the CA of the webhook's serving certificate", Required: true},
			&cli.StringFlag{Name: "name", Value: admission.DefaultName, Usage: "`NAME` of the objects"},
			&cli.StringFlag{Name: "url", Usage: "webhook outside the cluster at `URL` (https://HOST:PORT[/validate])"},
			&cli.BoolFlag{Name: "mutating", Usage: "add the mutating webhook that pins images to verified digests"},
			&cli.StringFlag{Name: "image", Usage: "twinforge `IMAGE` the Deployment runs (required without --url)"},
			&cli.IntFlag{Name: "replicas", Value: 2, Usage: "replicas of the Deployment"},
			&cli.BoolFlag{Name: "revocations", Usage: "run the webhook with revocations.txt of the ConfigMap"},
			&cli.StringSliceFlag{Name: "exempt-namespace", Usage: "`NAMESPACE` the webhook does not see, besides --namespace (repeatable; each is a way around the policy)"},
		},
		Action: runAdmissionManifests,
	}
}

func runAdmissionManifests(c *cli.Context) error {
	if c.NArg() != 0 {
		return usageErrorf("admission manifests takes no arguments, got %q", c.Args().Slice())
	}
	ca, err := os.ReadFile(c.String("ca-bundle"))
	if err != nil {
		return usageErrorf("--ca-bundle: %w", err)
	}
	replicas := c.Int("replicas")
	if replicas < 1 || replicas > 100 {
		return usageErrorf("--replicas %d: want 1 to 100", replicas)
	}
	o := admission.ManifestOptions{
		Namespace:        c.String("namespace"),
		Name:             c.String("name"),
		CABundle:         ca,
		URL:              c.String("url"),
		Mutating:         c.Bool("mutating"),
		Image:            c.String("image"),
		Replicas:         int32(replicas),
		Revocations:      c.Bool("revocations"),
		ExemptNamespaces: c.StringSlice("exempt-namespace"),
	}
	if err := admission.WriteManifests(c.App.Writer, o); err != nil {
		return usageError(err)
	}
	return nil
}
