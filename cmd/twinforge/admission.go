package main

import (
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

	"github.com/urfave/cli/v2"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/twinforge/twinforge/admission"
	"github.com/twinforge/twinforge/distribute"
	"github.com/twinforge/twinforge/distribute/release"
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
		Subcommands: []*cli.Command{admissionServeCommand(), admissionReverifyCommand(), admissionManifestsCommand()},
	}
}

func admissionServeCommand() *cli.Command {
	return &cli.Command{
		Name:  "serve",
		Usage: "serve the admission webhook over HTTPS",
		Description: `Serves /validate (and with --mutating /mutate), /healthz and /readyz over HTTPS
until SIGTERM or SIGINT, then finishes the reviews in progress. /metrics and the
re-verification report /reverify, which name the images of every namespace, are
served on --metrics-addr alone (loopback by default; on any other address every
request must carry the bearer token of --metrics-token-file).

The policy is one attest policy for every namespace (--policy, see
attest/policy.md) or a multi-tenant configuration mapping namespaces and image
patterns to policies (--policy-config, see admission/config.md). Every file is
re-read when it changes; one that no longer parses is reported and the last
good version stays. Registry, Sigstore and timeout errors deny (fail closed),
within --deadline. Logs are JSON on stderr.

With --reverify-interval the webhook also verifies the images of the pods
already running again, with the same policies, trusted root and revocation
list: every interval, and at once when any of those files changes. Each image
that no longer passes is reported as the metric
twinforge_admission_runtime_violations, a warning in the log and a Warning
Event (ImageVerificationFailed) on its pod; /reverify serves the last report.
The API server is the pod's own (its service account) unless --kube-api says
otherwise; 'admission manifests --reverify-interval' adds the RBAC it needs.

Examples:
  twinforge admission serve --policy policy.yaml --trusted-root trusted_root.json \
      --tls-cert tls.crt --tls-key tls.key
  twinforge admission serve --policy-config tenants.yaml --trusted-root trusted_root.json \
      --tls-cert tls.crt --tls-key tls.key --revocations revoked.txt \
      --reverify-interval 10m --reverify-exempt-namespace twinforge-system`,
		Flags: slicesConcat(admissionPolicyFlags(), []cli.Flag{
			&cli.StringFlag{Name: "tls-cert", Usage: "serving certificate PEM `FILE`", Required: true},
			&cli.StringFlag{Name: "tls-key", Usage: "serving key PEM `FILE`", Required: true},
			&cli.StringFlag{Name: "addr", Value: ":8443", Usage: "listen `ADDRESS`"},
			&cli.StringFlag{Name: "metrics-addr", Value: "127.0.0.1:9090", Usage: "serve /metrics and /reverify over HTTP on `ADDRESS`, never the webhook's port (\"\": off); off loopback it needs --metrics-token-file"},
			&cli.StringFlag{Name: "metrics-token-file", Usage: "bearer token `FILE` every /metrics and /reverify request must present"},
			&cli.BoolFlag{Name: "mutating", Value: true, Usage: "also serve /mutate, pinning images named by tag to the digest verified; --mutating=false validates only, and then denies images named by tag (see --allow-tags)"},
			&cli.BoolFlag{Name: "allow-tags", Usage: "with --mutating=false, admit images named by tag for every tenant, verified at admission only (a tenant's allowTags does it for one)"},
			&cli.DurationFlag{Name: "cache-ttl", Value: admission.DefaultCacheTTL, Usage: "how long an admitted digest stays verified (0: no cache)"},
			&cli.DurationFlag{Name: "negative-cache-ttl", Value: admission.DefaultNegativeCacheTTL, Usage: "how long a refused digest stays refused"},
			&cli.IntFlag{Name: "cache-size", Value: admission.DefaultCacheSize, Usage: "decisions the cache holds"},
			&cli.DurationFlag{Name: "deadline", Value: admission.DefaultDeadline, Usage: "time to decide one review; below the webhook's timeoutSeconds (10s)"},
			&cli.DurationFlag{Name: "poll-interval", Value: admission.DefaultPollInterval, Usage: "how often the files are checked for changes (0: never)"},
			&cli.DurationFlag{Name: "reverify-interval", Usage: "re-verify the images of running pods every `DURATION` and on every change of the files (0: never)"},
			&cli.StringFlag{Name: "record-key", Usage: "sign an admission record (the digest verified per container, the policies that passed) onto every admitted pod with the Ed25519 key in PEM `FILE`; node agents verify it with the public key"},
			&cli.BoolFlag{Name: "image-pull-secrets", Usage: "reach registries with the pod's imagePullSecrets and its service account's pull secrets too (read through the API server)"},
			&cli.BoolFlag{Name: "leader-elect", Usage: "run re-verification passes on one replica at a time, elected with a Lease"},
			&cli.StringFlag{Name: "leader-elect-namespace", EnvVars: []string{"POD_NAMESPACE"}, Usage: "`NAMESPACE` of the Lease (default: the pod's)"},
			&cli.StringFlag{Name: "leader-elect-name", Value: "twinforge-admission-reverify", Usage: "`NAME` of the Lease"},
			&cli.DurationFlag{Name: "release-refresh", Value: admission.DefaultReleaseRefresh, Usage: "how often the --release-repo index is read again"},
		}, admissionRegistryFlags(), admissionKubeFlags(), releaseReaderFlags(false)),
		Action: runAdmissionServe,
	}
}

func slicesConcat(fs ...[]cli.Flag) []cli.Flag {
	var out []cli.Flag
	for _, f := range fs {
		out = append(out, f...)
	}
	return out
}

// admissionPolicyFlags name the files the webhook decides by.
func admissionPolicyFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "policy", Usage: "one policy `FILE` for every namespace and image (attest/policy.md)"},
		&cli.StringFlag{Name: "policy-config", Usage: "multi-tenant configuration `FILE` (admission/config.md)"},
		&cli.StringFlag{Name: "trusted-root", Usage: "Sigstore trusted root `FILE` (trusted_root.json)"},
		&cli.StringFlag{Name: "revocations", Usage: "revocation list `FILE`: one sha256 digest per line, denied at once"},
	}
}

// admissionRegistryFlags say how registries are reached.
func admissionRegistryFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "registry-ca-cert", Usage: "trust the CA certificates in PEM `FILE` too, for registries with a private CA"},
		&cli.BoolFlag{Name: "insecure-registry-loopback", Usage: "allow plain HTTP to loopback registries (127.0.0.0/8, ::1, localhost); for tests"},
	}
}

// admissionKubeFlags say how re-verification reaches the API server and
// what it skips.
func admissionKubeFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "kube-api", Usage: "Kubernetes API server `URL` (https://HOST:PORT) for re-verification; default: the pod's service account (in-cluster)"},
		&cli.StringFlag{Name: "kube-token-file", Usage: "bearer token `FILE` for --kube-api, read again for every request"},
		&cli.StringFlag{Name: "kube-ca-file", Usage: "PEM `FILE` of the CA of --kube-api's certificate (default: the system's roots)"},
		&cli.StringSliceFlag{Name: "reverify-exempt-namespace", Usage: "`NAMESPACE` whose pods are not re-verified, as the webhook configurations exempt it (repeatable)"},
	}
}

// admissionSourceFrom reads the policy flags.
func admissionSourceFrom(c *cli.Context) (admission.Source, error) {
	src := admission.Source{
		ConfigFile:      c.String("policy-config"),
		PolicyFile:      c.String("policy"),
		TrustedRootFile: c.String("trusted-root"),
		RevocationsFile: c.String("revocations"),
	}
	switch {
	case src.ConfigFile == "" && src.PolicyFile == "":
		return src, usageErrorf("give --policy FILE or --policy-config FILE")
	case src.ConfigFile != "" && src.PolicyFile != "":
		return src, usageErrorf("give --policy or --policy-config, not both")
	}
	return src, checkFiles(map[string]string{"policy": src.PolicyFile, "policy-config": src.ConfigFile,
		"trusted-root": src.TrustedRootFile, "revocations": src.RevocationsFile})
}

// checkFiles fails for a flag naming a file that cannot be read.
func checkFiles(files map[string]string) error {
	for flag, path := range files {
		if path == "" {
			continue
		}
		if fi, err := os.Stat(path); err != nil || fi.IsDir() {
			return usageErrorf("--%s %s: not a readable file", flag, path)
		}
	}
	return nil
}

// admissionRegistryOptionsFrom reads the registry flags.
func admissionRegistryOptionsFrom(c *cli.Context) ([]admission.Option, error) {
	var opts []admission.Option
	if c.Bool("insecure-registry-loopback") {
		opts = append(opts, admission.WithInsecureLoopbackUnsafe())
	}
	if ca := c.String("registry-ca-cert"); ca != "" {
		if err := checkFiles(map[string]string{"registry-ca-cert": ca}); err != nil {
			return nil, err
		}
		opts = append(opts, admission.WithRegistryOptions(distribute.WithCACert(ca)))
	}
	return opts, nil
}

// admissionReverifyOptionsFrom reads the re-verification flags: nil when
// interval is 0 and once is false (re-verification off).
func admissionReverifyOptionsFrom(c *cli.Context, interval time.Duration, once bool, inCluster func() (admission.KubeConfig, error)) ([]admission.Option, error) {
	api, token, ca := c.String("kube-api"), c.String("kube-token-file"), c.String("kube-ca-file")
	exempt := c.StringSlice("reverify-exempt-namespace")
	switch {
	case interval < 0:
		return nil, usageErrorf("--reverify-interval %s: want 0 (off) or more", interval)
	case interval == 0 && !once:
		if api != "" || token != "" || ca != "" || len(exempt) > 0 {
			return nil, usageErrorf("--kube-api, --kube-token-file, --kube-ca-file and --reverify-exempt-namespace need --reverify-interval")
		}
		return nil, nil
	case api == "" && (token != "" || ca != ""):
		return nil, usageErrorf("--kube-token-file and --kube-ca-file need --kube-api (without it, the pod's service account is used)")
	case api != "" && token == "":
		return nil, usageErrorf("--kube-api needs --kube-token-file")
	}
	if err := checkFiles(map[string]string{"kube-token-file": token, "kube-ca-file": ca}); err != nil {
		return nil, err
	}
	for _, ns := range exempt {
		if errs := validation.IsDNS1123Label(ns); len(errs) > 0 {
			return nil, usageErrorf("--reverify-exempt-namespace %q: %s", ns, strings.Join(errs, "; "))
		}
	}
	if api != "" {
		if u, err := url.Parse(api); err != nil || u.Scheme != "https" || u.Host == "" {
			return nil, usageErrorf("--kube-api %q: use https://HOST:PORT", api)
		}
	}
	k := admission.KubeConfig{URL: api, TokenFile: token, CAFile: ca}
	if api == "" {
		var err error
		if k, err = inCluster(); err != nil {
			return nil, usageErrorf("%w; outside a cluster give --kube-api and --kube-token-file", err)
		}
	}
	opts := []admission.Option{admission.WithReverification(k), admission.WithReverifyInterval(interval)}
	if len(exempt) > 0 {
		opts = append(opts, admission.WithReverifyExemptNamespaces(exempt...))
	}
	return opts, nil
}

// admissionServeOptions is what the serve flags parse to.
type admissionServeOptions struct {
	source      admission.Source
	certFile    string
	keyFile     string
	addr        string
	metricsAddr string
	metricsTok  string
	opts        []admission.Option
	logLevel    slog.Level
}

func admissionServeOptionsFrom(c *cli.Context) (*admissionServeOptions, error) {
	if c.NArg() != 0 {
		return nil, usageErrorf("admission serve takes no arguments, got %q", c.Args().Slice())
	}
	src, err := admissionSourceFrom(c)
	if err != nil {
		return nil, err
	}
	o := &admissionServeOptions{
		source:      src,
		certFile:    c.String("tls-cert"),
		keyFile:     c.String("tls-key"),
		addr:        c.String("addr"),
		metricsAddr: c.String("metrics-addr"),
		metricsTok:  c.String("metrics-token-file"),
	}
	if err := checkFiles(map[string]string{"tls-cert": o.certFile, "tls-key": o.keyFile, "metrics-token-file": o.metricsTok}); err != nil {
		return nil, err
	}
	if _, _, err := net.SplitHostPort(o.addr); err != nil {
		return nil, usageErrorf("--addr %q: use HOST:PORT or :PORT", o.addr)
	}
	if o.metricsAddr != "" {
		if _, _, err := net.SplitHostPort(o.metricsAddr); err != nil {
			return nil, usageErrorf("--metrics-addr %q: use HOST:PORT", o.metricsAddr)
		}
	} else if o.metricsTok != "" {
		return nil, usageErrorf("--metrics-token-file needs --metrics-addr")
	}
	if o.logLevel, err = admissionLogLevel(c, slog.LevelInfo); err != nil {
		return nil, err
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
	if !c.Bool("mutating") {
		o.opts = append(o.opts, admission.WithValidationOnly())
	}
	if c.Bool("allow-tags") {
		if c.Bool("mutating") {
			return nil, usageErrorf("--allow-tags applies to --mutating=false only: with mutation every tag is pinned")
		}
		o.opts = append(o.opts, admission.WithAllowTagsUnsafe())
	}
	reg, err := admissionRegistryOptionsFrom(c)
	if err != nil {
		return nil, err
	}
	rv, err := admissionReverifyOptionsFrom(c, c.Duration("reverify-interval"), false, admission.InClusterKubeConfig)
	if err != nil {
		return nil, err
	}
	o.opts = append(append(o.opts, reg...), rv...)
	if key := c.String("record-key"); key != "" {
		if err := checkFiles(map[string]string{"record-key": key}); err != nil {
			return nil, err
		}
		data, err := os.ReadFile(key)
		if err != nil {
			return nil, usageErrorf("--record-key: %v", err)
		}
		k, err := admission.ParseRecordKey(data)
		if err != nil {
			return nil, usageErrorf("--record-key %s: %v", key, err)
		}
		o.opts = append(o.opts, admission.WithRecordKey(k))
	}
	if c.Bool("leader-elect") {
		if rv == nil {
			return nil, usageErrorf("--leader-elect needs --reverify-interval")
		}
		o.opts = append(o.opts, admission.WithReverifyLeaderElection(admission.LeaderElection{
			Namespace: c.String("leader-elect-namespace"), Name: c.String("leader-elect-name"), Identity: os.Getenv("POD_NAME"),
		}))
	}
	if c.Bool("image-pull-secrets") {
		k, err := kubeConfigFrom(c, admission.InClusterKubeConfig)
		if err != nil {
			return nil, err
		}
		o.opts = append(o.opts, admission.WithImagePullSecrets(k))
	}
	// The release index of this cluster's region, if any: every image
	// must also be released as the digest it resolves to.
	rc := registryConfig{caCert: c.String("registry-ca-cert")}
	relCfg, err := releaseReaderFrom(c, rc)
	if err != nil {
		return nil, err
	}
	if relCfg != nil {
		if c.Bool("insecure-registry-loopback") {
			relCfg.Registry = append(relCfg.Registry, distribute.WithLoopbackHTTPUnsafe())
		}
		client, err := release.NewClient(*relCfg)
		if err != nil {
			return nil, usageError(err)
		}
		o.opts = append(o.opts, admission.WithReleaseIndex(client, c.Duration("release-refresh")))
	}
	return o, nil
}

// admissionLogLevel is the level of --log-level when given, def otherwise
// (the program's default suits interactive commands, not a server).
func admissionLogLevel(c *cli.Context, def slog.Level) (slog.Level, error) {
	if !c.IsSet("log-level") {
		return def, nil
	}
	var l slog.Level
	if err := l.UnmarshalText([]byte(c.String("log-level"))); err != nil {
		return def, usageErrorf("--log-level %q: use debug, info, warn or error", c.String("log-level"))
	}
	return l, nil
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
	cfg := admission.ServeConfig{CertFile: o.certFile, KeyFile: o.keyFile, Logger: log, ShutdownTimeout: 15 * time.Second}
	if o.metricsAddr != "" {
		mln, err := net.Listen("tcp", o.metricsAddr)
		if err != nil {
			return fmt.Errorf("listening on %s: %w", o.metricsAddr, err)
		}
		cfg.Monitoring = &admission.MonitoringConfig{Listener: mln, Handler: wh.Monitoring(), TokenFile: o.metricsTok}
	}
	err = admission.Serve(c.Context, ln, wh, cfg)
	if errors.Is(err, admission.ErrMonitoringExposed) {
		return usageError(err)
	}
	return err
}

func admissionManifestsCommand() *cli.Command {
	return &cli.Command{
		Name:  "manifests",
		Usage: "print the Kubernetes objects that install the webhook (YAML)",
		Description: `Prints the ValidatingWebhookConfiguration and the MutatingWebhookConfiguration
(which pins images named by tag to the digest verified; --mutating=false leaves
it out, and the webhook then denies images named by tag unless their tenant
sets allowTags), and the Deployment and Service that run the
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

With --reverify-interval the webhook also re-verifies the images of running
pods (see 'admission serve'), as the ServiceAccount NAME in NAMESPACE, bound to
the ClusterRole NAME-reverify: list and watch pods, create, get and patch
Events. NAMESPACE and every --exempt-namespace are exempt from it too. With
--url, give the webhook a token of that ServiceAccount (kubectl create token).

Examples:
  twinforge admission manifests --namespace twinforge-system --ca-bundle ca.pem \
      --image registry.example/twinforge@sha256:... | kubectl apply -f -
  twinforge admission manifests --namespace twinforge-system --ca-bundle ca.pem \
      --url https://127.0.0.1:8443/validate`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "namespace", Aliases: []string{"n"}, Usage: "`NAMESPACE` the webhook runs in (exempt from it)", Required: true},
			&cli.StringFlag{Name: "ca-bundle", Usage: "PEM `FILE` of the CA of the webhook's serving certificate", Required: true},
			&cli.StringFlag{Name: "name", Value: admission.DefaultName, Usage: "`NAME` of the objects"},
			&cli.StringFlag{Name: "url", Usage: "webhook outside the cluster at `URL` (https://HOST:PORT[/validate])"},
			&cli.BoolFlag{Name: "mutating", Value: true, Usage: "add the mutating webhook that pins images to verified digests; --mutating=false validates only, and the webhook then denies images named by tag unless their tenant sets allowTags"},
			&cli.StringFlag{Name: "image", Usage: "twinforge `IMAGE` the Deployment runs (required without --url)"},
			&cli.IntFlag{Name: "replicas", Value: 2, Usage: "replicas of the Deployment"},
			&cli.BoolFlag{Name: "revocations", Usage: "run the webhook with revocations.txt of the ConfigMap"},
			&cli.StringSliceFlag{Name: "exempt-namespace", Usage: "`NAMESPACE` the webhook does not see, besides --namespace (repeatable; each is a way around the policy)"},
			&cli.DurationFlag{Name: "reverify-interval", Usage: "run the webhook with --reverify-interval `DURATION` and add the ServiceAccount, ClusterRole and ClusterRoleBinding it needs (0: off)"},
			&cli.BoolFlag{Name: "record-key", Usage: "run the webhook with --record-key from the Secret NAME-record-key (record.key): every admitted pod gets a signed admission record"},
			&cli.BoolFlag{Name: "image-pull-secrets", Usage: "run the webhook (and node agents) with --image-pull-secrets, allowed to get Secrets and ServiceAccounts"},
			&cli.BoolFlag{Name: "node-agent", Usage: "add the node agent's DaemonSet NAME-node-agent and its RBAC (needs --record-key; the ConfigMap then holds record.pub)"},
			&cli.StringFlag{Name: "node-agent-on-mismatch", Value: "alert", Usage: "the node agent's --on-mismatch `ACTION`: alert or evict"},
			&cli.DurationFlag{Name: "node-agent-interval", Value: time.Minute, Usage: "the node agent's --interval `DURATION`"},
			&cli.StringFlag{Name: "node-agent-cri-socket", Value: "/run/containerd/containerd.sock", Usage: "`PATH` of the container runtime's CRI socket on the nodes"},
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
		ValidatingOnly:   !c.Bool("mutating"),
		Image:            c.String("image"),
		Replicas:         int32(replicas),
		Revocations:      c.Bool("revocations"),
		ExemptNamespaces: c.StringSlice("exempt-namespace"),
		ReverifyInterval: c.Duration("reverify-interval"),

		RecordKey:           c.Bool("record-key"),
		ImagePullSecrets:    c.Bool("image-pull-secrets"),
		NodeAgent:           c.Bool("node-agent"),
		NodeAgentOnMismatch: c.String("node-agent-on-mismatch"),
		NodeAgentInterval:   c.Duration("node-agent-interval"),
		NodeAgentCRISocket:  c.String("node-agent-cri-socket"),
	}
	if err := admission.WriteManifests(c.App.Writer, o); err != nil {
		return usageError(err)
	}
	return nil
}

func admissionReverifyCommand() *cli.Command {
	return &cli.Command{
		Name:  "reverify",
		Usage: "verify the images of the running pods again; report those that no longer pass",
		Description: `Lists the pods of the namespaces the policy covers from the Kubernetes API
server and verifies every image they run (containers, init and ephemeral
containers; the digest the kubelet reports running, else the image of the pod
spec, a tag resolved now) exactly as 'admission serve' admits images, with the
same policy files, trusted root and revocation list. Each image that no longer
passes gets a Warning Event (ImageVerificationFailed) on its pod.

With --once it runs one pass, prints every pod image with its result and exits
4 if any fails (1 if the pods cannot be listed): for cron jobs and CI. Without
--once it runs a pass every --reverify-interval and whenever a file changes,
printing each report, until SIGINT or SIGTERM. 'admission serve
--reverify-interval' does the same inside the webhook, with metrics.

Examples:
  twinforge admission reverify --once --policy-config tenants.yaml \
      --trusted-root trusted_root.json --revocations revoked.txt
  twinforge admission reverify --once --output json --policy policy.yaml \
      --trusted-root trusted_root.json --kube-api https://10.0.0.1:6443 \
      --kube-token-file token --kube-ca-file ca.crt`,
		Flags: slicesConcat(admissionPolicyFlags(), []cli.Flag{
			&cli.BoolFlag{Name: "once", Usage: "run one pass, print the results and exit (4 if any pod image fails)"},
			&cli.DurationFlag{Name: "reverify-interval", Value: admission.DefaultReverifyInterval, Usage: "without --once: a pass every `DURATION`"},
			&cli.DurationFlag{Name: "poll-interval", Value: admission.DefaultPollInterval, Usage: "without --once: how often the files are checked for changes (0: never)"},
			&cli.DurationFlag{Name: "deadline", Value: admission.DefaultDeadline, Usage: "time to verify one image"},
			&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Value: "text", Usage: "result format on stdout: text or json (without --once: one JSON report per line)"},
		}, admissionRegistryFlags(), admissionKubeFlags()),
		Action: runAdmissionReverify,
	}
}

// admissionReverifyOptions is what the reverify flags parse to.
type admissionReverifyOptions struct {
	source   admission.Source
	once     bool
	output   string
	opts     []admission.Option
	logLevel slog.Level
}

func admissionReverifyOptionsFromFlags(c *cli.Context, inCluster func() (admission.KubeConfig, error)) (*admissionReverifyOptions, error) {
	if c.NArg() != 0 {
		return nil, usageErrorf("admission reverify takes no arguments, got %q", c.Args().Slice())
	}
	src, err := admissionSourceFrom(c)
	if err != nil {
		return nil, err
	}
	o := &admissionReverifyOptions{source: src, once: c.Bool("once"), output: c.String("output")}
	if err := oneOf("output", o.output, "text", "json"); err != nil {
		return nil, usageError(err)
	}
	interval, poll := c.Duration("reverify-interval"), c.Duration("poll-interval")
	switch {
	case o.once && (c.IsSet("reverify-interval") || c.IsSet("poll-interval")):
		return nil, usageErrorf("--once runs one pass: --reverify-interval and --poll-interval do not apply")
	case o.once:
		interval, poll = 0, 0
	case interval <= 0:
		return nil, usageErrorf("--reverify-interval %s: want more than 0 (or --once)", interval)
	}
	// One pass prints its results on stdout; the log only says what went
	// wrong. Continuous passes log like the webhook.
	def := slog.LevelInfo
	if o.once {
		def = slog.LevelError
	}
	if o.logLevel, err = admissionLogLevel(c, def); err != nil {
		return nil, err
	}
	reg, err := admissionRegistryOptionsFrom(c)
	if err != nil {
		return nil, err
	}
	rv, err := admissionReverifyOptionsFrom(c, interval, true, inCluster)
	if err != nil {
		return nil, err
	}
	o.opts = append([]admission.Option{admission.WithDeadline(c.Duration("deadline")), admission.WithPollInterval(poll)}, append(reg, rv...)...)
	return o, nil
}

func runAdmissionReverify(c *cli.Context) error {
	o, err := admissionReverifyOptionsFromFlags(c, admission.InClusterKubeConfig)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewJSONHandler(c.App.ErrWriter, &slog.HandlerOptions{Level: o.logLevel}))
	opts := append(o.opts, admission.WithLogger(log))
	var reports chan *admission.ReverifyReport
	if !o.once {
		reports = make(chan *admission.ReverifyReport)
		opts = append(opts, admission.WithReverifyReports(reports))
	}
	wh, err := admission.New(o.source, opts...)
	if err != nil {
		if errors.Is(err, admission.ErrInvalidConfig) || errors.Is(err, os.ErrNotExist) {
			return usageError(err)
		}
		return err
	}
	defer wh.Close()

	if o.once {
		rep, err := wh.Reverify(c.Context)
		if err != nil {
			return err
		}
		if err := writeReverifyReport(c.App.Writer, o.output, rep, true); err != nil {
			return err
		}
		if n := rep.Violations; n > 0 {
			return refused(fmt.Errorf("%d pod image%s no longer pass%s verification", n, attestPlural(n, "", "s"), attestPlural(n, "es", "")))
		}
		return nil
	}
	for {
		select {
		case <-c.Context.Done():
			return nil
		case rep, ok := <-reports:
			if !ok {
				return nil
			}
			if err := writeReverifyReport(c.App.Writer, o.output, rep, false); err != nil {
				return err
			}
		}
	}
}

// writeReverifyReport prints a report: a table, or JSON (indented for one
// pass, one line per report for continuous passes).
func writeReverifyReport(w io.Writer, format string, rep *admission.ReverifyReport, once bool) error {
	if format == "json" {
		if once {
			return writeAttestJSON(w, rep)
		}
		return json.NewEncoder(w).Encode(rep)
	}
	if !once {
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
		} else if r.DigestSource == admission.DigestFromStatus {
			digest += " (running)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.Namespace, r.Pod, r.Image, digest, r.Result, strings.ReplaceAll(r.Reason, "\n", " "))
	}
	fmt.Fprintf(tw, "%d pod%s checked, %d skipped, %d image%s, %d violation%s\n", rep.Pods, attestPlural(rep.Pods, "", "s"),
		rep.Skipped, rep.Images, attestPlural(rep.Images, "", "s"), rep.Violations, attestPlural(rep.Violations, "", "s"))
	if rep.EventErrors > 0 {
		fmt.Fprintf(tw, "%d Event%s could not be recorded (see the log)\n", rep.EventErrors, attestPlural(rep.EventErrors, "", "s"))
	}
	return tw.Flush()
}
