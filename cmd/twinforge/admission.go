package main

import (
	"log/slog"
	"os"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/twinforge/twinforge/admission"
)

func admissionCommand() *cli.Command {
	return &cli.Command{
		Name:        "admission",
		Usage:       "the Kubernetes admission webhook that admits only verified images",
		Description: helpText("admission"),
		Subcommands: []*cli.Command{admissionServeCommand(), admissionReverifyCommand(), admissionManifestsCommand()},
	}
}

func admissionServeCommand() *cli.Command {
	return &cli.Command{
		Name:        "serve",
		Usage:       "serve the admission webhook over HTTPS",
		Description: helpText("admission-serve"),
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
func admissionSourceFrom(c *cli.Context) admission.Source {
	return admission.Source{ConfigFile: c.String("policy-config"), PolicyFile: c.String("policy"),
		TrustedRootFile: c.String("trusted-root"), RevocationsFile: c.String("revocations")}
}

// admissionRegistryFrom reads the registry flags.
func admissionRegistryFrom(c *cli.Context) admission.RegistryAccess {
	return admission.RegistryAccess{CACertFile: c.String("registry-ca-cert"), InsecureLoopbackUnsafe: c.Bool("insecure-registry-loopback")}
}

// kubeAccessFrom reads --kube-api, --kube-token-file and --kube-ca-file.
func kubeAccessFrom(c *cli.Context) admission.KubeAccess {
	return admission.KubeAccess{API: c.String("kube-api"), TokenFile: c.String("kube-token-file"), CAFile: c.String("kube-ca-file")}
}

// reverifySettingsFrom reads the re-verification flags.
func reverifySettingsFrom(c *cli.Context) admission.ReverifySettings {
	return admission.ReverifySettings{Interval: c.Duration("reverify-interval"), Kube: kubeAccessFrom(c), ExemptNamespaces: c.StringSlice("reverify-exempt-namespace")}
}

// admissionLogger logs JSON on stderr at --log-level when given, def
// otherwise (the program's default suits interactive commands, not a
// server).
func admissionLogger(c *cli.Context, def slog.Level) *slog.Logger {
	var l slog.Level
	if !c.IsSet("log-level") || l.UnmarshalText([]byte(c.String("log-level"))) != nil {
		// setupLogging has refused a level that does not parse.
		l = def
	}
	return slog.New(slog.NewJSONHandler(c.App.ErrWriter, &slog.HandlerOptions{Level: l}))
}

func runAdmissionServe(c *cli.Context) error {
	if err := noArgs(c); err != nil {
		return err
	}
	s := admission.ServerSettings{
		Source: admissionSourceFrom(c), CertFile: c.String("tls-cert"), KeyFile: c.String("tls-key"),
		Addr: c.String("addr"), MetricsAddr: c.String("metrics-addr"), MetricsTokenFile: c.String("metrics-token-file"),
		ValidationOnly: !c.Bool("mutating"), AllowTagsUnsafe: c.Bool("allow-tags"),
		CacheTTL: c.Duration("cache-ttl"), Deadline: c.Duration("deadline"), PollInterval: c.Duration("poll-interval"),
		Registry: admissionRegistryFrom(c), Reverify: reverifySettingsFrom(c),
		RecordKeyFile: c.String("record-key"), ImagePullSecrets: c.Bool("image-pull-secrets"), Kube: kubeAccessFrom(c),
		ReleaseRefresh: c.Duration("release-refresh"),
	}
	if c.IsSet("negative-cache-ttl") {
		s.NegativeCacheTTL = ptr(c.Duration("negative-cache-ttl"))
	}
	if c.IsSet("cache-size") {
		s.CacheSize = ptr(c.Int("cache-size"))
	}
	if c.Bool("leader-elect") {
		s.LeaderElection = &admission.LeaderElection{Namespace: c.String("leader-elect-namespace"), Name: c.String("leader-elect-name"), Identity: os.Getenv("POD_NAME")}
	}
	var err error
	if s.Release, err = releaseReaderFrom(c, registryOptions(false, c.String("registry-ca-cert"))); err != nil {
		return err
	}
	return s.Run(c.Context, admissionLogger(c, slog.LevelInfo), admission.InClusterKubeConfig)
}

func ptr[T any](v T) *T { return &v }

func admissionManifestsCommand() *cli.Command {
	return &cli.Command{
		Name:        "manifests",
		Usage:       "print the Kubernetes objects that install the webhook (YAML)",
		Description: helpText("admission-manifests"),
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
	if err := noArgs(c); err != nil {
		return err
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
		Namespace: c.String("namespace"), Name: c.String("name"), CABundle: ca, URL: c.String("url"),
		ValidatingOnly: !c.Bool("mutating"), Image: c.String("image"), Replicas: int32(replicas),
		Revocations: c.Bool("revocations"), ExemptNamespaces: c.StringSlice("exempt-namespace"), ReverifyInterval: c.Duration("reverify-interval"),
		RecordKey: c.Bool("record-key"), ImagePullSecrets: c.Bool("image-pull-secrets"), NodeAgent: c.Bool("node-agent"),
		NodeAgentOnMismatch: c.String("node-agent-on-mismatch"), NodeAgentInterval: c.Duration("node-agent-interval"), NodeAgentCRISocket: c.String("node-agent-cri-socket"),
	}
	return usageError(admission.WriteManifests(c.App.Writer, o))
}

func admissionReverifyCommand() *cli.Command {
	return &cli.Command{
		Name:        "reverify",
		Usage:       "verify the images of the running pods again; report those that no longer pass",
		Description: helpText("admission-reverify"),
		Flags: slicesConcat(admissionPolicyFlags(), []cli.Flag{
			&cli.BoolFlag{Name: "once", Usage: "run one pass, print the results and exit (4 if any pod image fails)"},
			&cli.DurationFlag{Name: "reverify-interval", Value: admission.DefaultReverifyInterval, Usage: "without --once: a pass every `DURATION`"},
			&cli.DurationFlag{Name: "poll-interval", Value: admission.DefaultPollInterval, Usage: "without --once: how often the files are checked for changes (0: never)"},
			&cli.DurationFlag{Name: "deadline", Value: admission.DefaultDeadline, Usage: "time to verify one image"},
			outputFlag("result format on stdout: text or json (without --once: one JSON report per line)"),
		}, admissionRegistryFlags(), admissionKubeFlags()),
		Action: runAdmissionReverify,
	}
}

func runAdmissionReverify(c *cli.Context) error {
	if err := noArgs(c); err != nil {
		return err
	}
	once := c.Bool("once")
	// One pass prints its results on stdout; the log only says what went
	// wrong. Continuous passes log like the webhook.
	level := slog.LevelInfo
	if once {
		level = slog.LevelError
	}
	return admission.ReverifyRun{
		Source: admissionSourceFrom(c), Registry: admissionRegistryFrom(c), Reverify: reverifySettingsFrom(c),
		Once: once, PacingGiven: c.IsSet("reverify-interval") || c.IsSet("poll-interval"),
		PollInterval: c.Duration("poll-interval"), Deadline: c.Duration("deadline"), Format: c.String("output"),
	}.Run(c.Context, c.App.Writer, admissionLogger(c, level), admission.InClusterKubeConfig)
}
