package main

import (
	"log/slog"
	"os"
	"slices"
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

type admissionServeOptions struct {
	admission.ServerSettings
	exempt                      cli.StringSlice
	mutating, leaderElect       bool
	negativeCacheTTL            time.Duration
	cacheSize                   int
	leaderNamespace, leaderName string
}

func admissionServeCommand() *cli.Command {
	o := &admissionServeOptions{}
	s := &o.ServerSettings
	return &cli.Command{
		Name:        "serve",
		Usage:       "serve the admission webhook over HTTPS",
		Description: helpText("admission-serve"),
		Flags: slices.Concat(admissionPolicyFlags(&s.Source), []cli.Flag{
			&cli.StringFlag{Name: "tls-cert", Usage: "serving certificate PEM `FILE`", Required: true, Destination: &s.CertFile},
			&cli.StringFlag{Name: "tls-key", Usage: "serving key PEM `FILE`", Required: true, Destination: &s.KeyFile},
			&cli.StringFlag{Name: "addr", Value: ":8443", Usage: "listen `ADDRESS`", Destination: &s.Addr},
			&cli.StringFlag{Name: "metrics-addr", Value: "127.0.0.1:9090", Usage: "serve /metrics and /reverify over HTTP on `ADDRESS`, never the webhook's port (\"\": off); off loopback it needs --metrics-token-file", Destination: &s.MetricsAddr},
			&cli.StringFlag{Name: "metrics-token-file", Usage: "bearer token `FILE` every /metrics and /reverify request must present", Destination: &s.MetricsTokenFile},
			&cli.BoolFlag{Name: "mutating", Value: true, Usage: "also serve /mutate, pinning images named by tag to the digest verified; --mutating=false validates only, and then denies images named by tag (see --allow-tags)", Destination: &o.mutating},
			&cli.BoolFlag{Name: "allow-tags", Usage: "with --mutating=false, admit images named by tag for every tenant, verified at admission only (a tenant's allowTags does it for one)", Destination: &s.AllowTagsUnsafe},
			&cli.DurationFlag{Name: "cache-ttl", Value: admission.DefaultCacheTTL, Usage: "how long an admitted digest stays verified (0: no cache)", Destination: &s.CacheTTL},
			&cli.DurationFlag{Name: "negative-cache-ttl", Value: admission.DefaultNegativeCacheTTL, Usage: "how long a refused digest stays refused", Destination: &o.negativeCacheTTL},
			&cli.IntFlag{Name: "cache-size", Value: admission.DefaultCacheSize, Usage: "decisions the cache holds", Destination: &o.cacheSize},
			&cli.DurationFlag{Name: "deadline", Value: admission.DefaultDeadline, Usage: "time to decide one review; below the webhook's timeoutSeconds (10s)", Destination: &s.Deadline},
			&cli.DurationFlag{Name: "poll-interval", Value: admission.DefaultPollInterval, Usage: "how often the files are checked for changes (0: never)", Destination: &s.PollInterval},
			&cli.DurationFlag{Name: "reverify-interval", Usage: "re-verify the images of running pods every `DURATION` and on every change of the files (0: never)", Destination: &s.Reverify.Interval},
			&cli.StringFlag{Name: "record-key", Usage: "sign an admission record (the digest verified per container, the policies that passed) onto every admitted pod with the Ed25519 key in PEM `FILE`; node agents verify it with the public key", Destination: &s.RecordKeyFile},
			&cli.BoolFlag{Name: "image-pull-secrets", Usage: "reach registries with the pod's imagePullSecrets and its service account's pull secrets too (read through the API server)", Destination: &s.ImagePullSecrets},
			&cli.BoolFlag{Name: "leader-elect", Usage: "run re-verification passes on one replica at a time, elected with a Lease", Destination: &o.leaderElect},
			&cli.StringFlag{Name: "leader-elect-namespace", EnvVars: []string{"POD_NAMESPACE"}, Usage: "`NAMESPACE` of the Lease (default: the pod's)", Destination: &o.leaderNamespace},
			&cli.StringFlag{Name: "leader-elect-name", Value: "twinforge-admission-reverify", Usage: "`NAME` of the Lease", Destination: &o.leaderName},
			&cli.DurationFlag{Name: "release-refresh", Value: admission.DefaultReleaseRefresh, Usage: "how often the --release-repo index is read again", Destination: &s.ReleaseRefresh},
		}, admissionRegistryFlags(&s.Registry), admissionKubeFlags(&s.Kube, &o.exempt), readerFlags(&s.Release, false)),
		Action: o.run,
	}
}

// admissionPolicyFlags name the files the webhook decides by.
func admissionPolicyFlags(s *admission.Source) []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "policy", Usage: "one policy `FILE` for every namespace and image (attest/policy.md)", Destination: &s.PolicyFile},
		&cli.StringFlag{Name: "policy-config", Usage: "multi-tenant configuration `FILE` (admission/config.md)", Destination: &s.ConfigFile},
		&cli.StringFlag{Name: "trusted-root", Usage: "Sigstore trusted root `FILE` (trusted_root.json)", Destination: &s.TrustedRootFile},
		&cli.StringFlag{Name: "revocations", Usage: "revocation list `FILE`: one sha256 digest per line, denied at once", Destination: &s.RevocationsFile},
	}
}

// admissionRegistryFlags say how registries are reached.
func admissionRegistryFlags(r *admission.RegistryAccess) []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "registry-ca-cert", Usage: "trust the CA certificates in PEM `FILE` too, for registries with a private CA", Destination: &r.CACertFile},
		&cli.BoolFlag{Name: "insecure-registry-loopback", Usage: "allow plain HTTP to loopback registries (127.0.0.0/8, ::1, localhost); for tests", Destination: &r.InsecureLoopbackUnsafe},
	}
}

// admissionKubeFlags say how re-verification reaches the API server and
// what it skips.
func admissionKubeFlags(k *admission.KubeAccess, exempt *cli.StringSlice) []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "kube-api", Usage: "Kubernetes API server `URL` (https://HOST:PORT) for re-verification; default: the pod's service account (in-cluster)", Destination: &k.API},
		&cli.StringFlag{Name: "kube-token-file", Usage: "bearer token `FILE` for --kube-api, read again for every request", Destination: &k.TokenFile},
		&cli.StringFlag{Name: "kube-ca-file", Usage: "PEM `FILE` of the CA of --kube-api's certificate (default: the system's roots)", Destination: &k.CAFile},
		&cli.StringSliceFlag{Name: "reverify-exempt-namespace", Usage: "`NAMESPACE` whose pods are not re-verified, as the webhook configurations exempt it (repeatable)", Destination: exempt},
	}
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

func (o *admissionServeOptions) run(c *cli.Context) error {
	if err := noArgs(c); err != nil {
		return err
	}
	s := &o.ServerSettings
	s.ValidationOnly = !o.mutating
	s.Reverify.Kube, s.Reverify.ExemptNamespaces = s.Kube, o.exempt.Value()
	if c.IsSet("negative-cache-ttl") {
		s.NegativeCacheTTL = &o.negativeCacheTTL
	}
	if c.IsSet("cache-size") {
		s.CacheSize = &o.cacheSize
	}
	if o.leaderElect {
		s.LeaderElection = &admission.LeaderElection{Namespace: o.leaderNamespace, Name: o.leaderName, Identity: os.Getenv("POD_NAME")}
	}
	return s.Run(c.Context, admissionLogger(c, slog.LevelInfo), admission.InClusterKubeConfig)
}

func admissionManifestsCommand() *cli.Command {
	o := &admission.ManifestOptions{Replicas: new(int)}
	var mutating bool
	var exempt cli.StringSlice
	return &cli.Command{
		Name:        "manifests",
		Usage:       "print the Kubernetes objects that install the webhook (YAML)",
		Description: helpText("admission-manifests"),
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "namespace", Aliases: []string{"n"}, Usage: "`NAMESPACE` the webhook runs in (exempt from it)", Required: true, Destination: &o.Namespace},
			&cli.StringFlag{Name: "ca-bundle", Usage: "PEM `FILE` of the CA of the webhook's serving certificate", Required: true, Destination: &o.CABundleFile},
			&cli.StringFlag{Name: "name", Value: admission.DefaultName, Usage: "`NAME` of the objects", Destination: &o.Name},
			&cli.StringFlag{Name: "url", Usage: "webhook outside the cluster at `URL` (https://HOST:PORT[/validate])", Destination: &o.URL},
			&cli.BoolFlag{Name: "mutating", Value: true, Usage: "add the mutating webhook that pins images to verified digests; --mutating=false validates only, and the webhook then denies images named by tag unless their tenant sets allowTags", Destination: &mutating},
			&cli.StringFlag{Name: "image", Usage: "twinforge `IMAGE` the Deployment runs (required without --url)", Destination: &o.Image},
			&cli.IntFlag{Name: "replicas", Value: 2, Usage: "replicas of the Deployment", Destination: o.Replicas},
			&cli.BoolFlag{Name: "revocations", Usage: "run the webhook with revocations.txt of the ConfigMap", Destination: &o.Revocations},
			&cli.StringSliceFlag{Name: "exempt-namespace", Usage: "`NAMESPACE` the webhook does not see, besides --namespace (repeatable; each is a way around the policy)", Destination: &exempt},
			&cli.DurationFlag{Name: "reverify-interval", Usage: "run the webhook with --reverify-interval `DURATION` and add the ServiceAccount, ClusterRole and ClusterRoleBinding it needs (0: off)", Destination: &o.ReverifyInterval},
			&cli.BoolFlag{Name: "record-key", Usage: "run the webhook with --record-key from the Secret NAME-record-key (record.key): every admitted pod gets a signed admission record", Destination: &o.RecordKey},
			&cli.BoolFlag{Name: "image-pull-secrets", Usage: "run the webhook (and node agents) with --image-pull-secrets, allowed to get Secrets and ServiceAccounts", Destination: &o.ImagePullSecrets},
			&cli.BoolFlag{Name: "node-agent", Usage: "add the node agent's DaemonSet NAME-node-agent and its RBAC (needs --record-key; the ConfigMap then holds record.pub)", Destination: &o.NodeAgent},
			&cli.StringFlag{Name: "node-agent-on-mismatch", Value: "alert", Usage: "the node agent's --on-mismatch `ACTION`: alert or evict", Destination: &o.NodeAgentOnMismatch},
			&cli.DurationFlag{Name: "node-agent-interval", Value: time.Minute, Usage: "the node agent's --interval `DURATION`", Destination: &o.NodeAgentInterval},
			&cli.StringFlag{Name: "node-agent-cri-socket", Value: "/run/containerd/containerd.sock", Usage: "`PATH` of the container runtime's CRI socket on the nodes", Destination: &o.NodeAgentCRISocket},
		},
		Action: func(c *cli.Context) error {
			if err := noArgs(c); err != nil {
				return err
			}
			o.ValidatingOnly, o.ExemptNamespaces = !mutating, exempt.Value()
			return usageError(admission.WriteManifests(c.App.Writer, *o))
		},
	}
}

func admissionReverifyCommand() *cli.Command {
	o := &admission.ReverifyRun{}
	var exempt cli.StringSlice
	return &cli.Command{
		Name:        "reverify",
		Usage:       "verify the images of the running pods again; report those that no longer pass",
		Description: helpText("admission-reverify"),
		Flags: slices.Concat(admissionPolicyFlags(&o.Source), []cli.Flag{
			&cli.BoolFlag{Name: "once", Usage: "run one pass, print the results and exit (4 if any pod image fails)", Destination: &o.Once},
			&cli.DurationFlag{Name: "reverify-interval", Value: admission.DefaultReverifyInterval, Usage: "without --once: a pass every `DURATION`", Destination: &o.Reverify.Interval},
			&cli.DurationFlag{Name: "poll-interval", Value: admission.DefaultPollInterval, Usage: "without --once: how often the files are checked for changes (0: never)", Destination: &o.PollInterval},
			&cli.DurationFlag{Name: "deadline", Value: admission.DefaultDeadline, Usage: "time to verify one image", Destination: &o.Deadline},
			outputFlag(&o.Format, "result format on stdout: text or json (without --once: one JSON report per line)"),
		}, admissionRegistryFlags(&o.Registry), admissionKubeFlags(&o.Reverify.Kube, &exempt)),
		Action: func(c *cli.Context) error {
			if err := noArgs(c); err != nil {
				return err
			}
			// One pass prints its results on stdout; the log only says what
			// went wrong. Continuous passes log like the webhook.
			level := slog.LevelInfo
			if o.Once {
				level = slog.LevelError
			}
			o.PacingGiven = c.IsSet("reverify-interval") || c.IsSet("poll-interval")
			o.Reverify.ExemptNamespaces = exempt.Value()
			return o.Run(c.Context, c.App.Writer, admissionLogger(c, level), admission.InClusterKubeConfig)
		},
	}
}
