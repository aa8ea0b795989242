package main

import (
	"errors"
	"log/slog"
	"os"
	"strings"

	"github.com/urfave/cli/v2"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/twinforge/twinforge/admission"
	"github.com/twinforge/twinforge/admission/nodeagent"
)

func nodeAgentCommand() *cli.Command {
	return &cli.Command{
		Name:  "node-agent",
		Usage: "verify, on a node, that running containers run what admission verified",
		Description: `Runs on every node (the DaemonSet of 'admission manifests --node-agent') and
checks each running container: it asks the container runtime over the CRI for
the image the container was started from, compares it with the digest the
mutating webhook recorded and signed on the pod (--record-public-key), and
verifies that digest again with the current policies, trusted root and
revocation list (the webhook's files, re-read as they change). Passes run at
start, every --interval, on container events and on file changes; results are
cached by digest as in the webhook.

A container that runs another image than recorded, a pod with no record or
with a record that does not verify, a revoked digest or one that no longer
passes is a violation: the metric twinforge_node_agent_violations, a warning
in the log and a Warning Event on the pod, and with --on-mismatch evict an
eviction through the Eviction API (PodDisruptionBudgets hold). When the agent
cannot check (runtime, API server or registry unreachable) it reports that and
keeps running; it evicts then only with --on-error evict. /metrics, /healthz
and /report are served on --metrics-addr. Logs are JSON on stderr.

Examples:
  twinforge node-agent --node "$NODE_NAME" --cri unix:///run/containerd/containerd.sock \
      --policy-config /etc/twinforge/config/config.yaml --trusted-root /etc/twinforge/config/trusted_root.json \
      --record-public-key /etc/twinforge/config/record.pub --interval 1m --on-mismatch evict`,
		Flags: slicesConcat(admissionPolicyFlags(), []cli.Flag{
			&cli.StringFlag{Name: "node", Usage: "`NAME` of the node the agent runs on", EnvVars: []string{"NODE_NAME"}},
			&cli.StringFlag{Name: "cri", Value: "unix:///run/containerd/containerd.sock", Usage: "container runtime's CRI `ENDPOINT` (unix:///PATH)"},
			&cli.StringFlag{Name: "record-public-key", Usage: "PEM `FILE` of the public keys admission records are signed with (required)"},
			&cli.DurationFlag{Name: "interval", Value: nodeagent.DefaultInterval, Usage: "check every `DURATION`, besides on container events and file changes"},
			&cli.StringFlag{Name: "on-mismatch", Value: string(nodeagent.Alert), Usage: "`ACTION` on a violation: alert, or evict the pod"},
			&cli.StringFlag{Name: "on-error", Value: string(nodeagent.Alert), Usage: "`ACTION` when a container cannot be checked: alert, or evict (fail closed)"},
			&cli.StringSliceFlag{Name: "exempt-namespace", Usage: "`NAMESPACE` whose containers are not checked, as the webhook exempts it (repeatable)"},
			&cli.StringFlag{Name: "metrics-addr", Value: ":9102", Usage: "serve /metrics, /healthz and /report on `ADDRESS` (plain HTTP; empty: off)"},
			&cli.DurationFlag{Name: "poll-interval", Value: admission.DefaultPollInterval, Usage: "how often the files are checked for changes (0: never)"},
			&cli.BoolFlag{Name: "image-pull-secrets", Usage: "reach registries with the pods' imagePullSecrets and service accounts' pull secrets too"},
			&cli.StringFlag{Name: "kube-api", Usage: "Kubernetes API server `URL` (https://HOST:PORT); default: the pod's service account (in-cluster)"},
			&cli.StringFlag{Name: "kube-token-file", Usage: "bearer token `FILE` for --kube-api"},
			&cli.StringFlag{Name: "kube-ca-file", Usage: "PEM `FILE` of the CA of --kube-api's certificate"},
		}, admissionRegistryFlags()),
		Action: runNodeAgent,
	}
}

// nodeAgentConfigFrom reads the flags.
func nodeAgentConfigFrom(c *cli.Context, inCluster func() (admission.KubeConfig, error)) (*nodeagent.ServeConfig, slog.Level, error) {
	if c.NArg() != 0 {
		return nil, 0, usageErrorf("node-agent takes no arguments, got %q", c.Args().Slice())
	}
	src, err := admissionSourceFrom(c)
	if err != nil {
		return nil, 0, err
	}
	level, err := admissionLogLevel(c, slog.LevelInfo)
	if err != nil {
		return nil, 0, err
	}
	cfg := &nodeagent.ServeConfig{
		Node: c.String("node"), CRIEndpoint: c.String("cri"), Source: src,
		RecordKeyFile: c.String("record-public-key"), Addr: c.String("metrics-addr"),
	}
	switch {
	case cfg.Node == "":
		return nil, 0, usageErrorf("give --node NAME (or NODE_NAME): the node the agent runs on")
	case cfg.RecordKeyFile == "":
		return nil, 0, usageErrorf("give --record-public-key FILE: the public key admission records are verified with")
	}
	if errs := validation.IsDNS1123Subdomain(cfg.Node); len(errs) > 0 {
		return nil, 0, usageErrorf("--node %q: %s", cfg.Node, strings.Join(errs, "; "))
	}
	if !strings.HasPrefix(cfg.CRIEndpoint, "unix://") {
		return nil, 0, usageErrorf("--cri %q: use unix:///PATH", cfg.CRIEndpoint)
	}
	if err := checkFiles(map[string]string{"record-public-key": cfg.RecordKeyFile}); err != nil {
		return nil, 0, err
	}
	onMismatch, err := nodeagent.ParseAction(c.String("on-mismatch"))
	if err != nil {
		return nil, 0, usageErrorf("--on-mismatch: %v", err)
	}
	onError, err := nodeagent.ParseAction(c.String("on-error"))
	if err != nil {
		return nil, 0, usageErrorf("--on-error: %v", err)
	}
	if c.Duration("interval") <= 0 {
		return nil, 0, usageErrorf("--interval %s: want more than 0", c.Duration("interval"))
	}
	cfg.Options = []nodeagent.Option{
		nodeagent.WithInterval(c.Duration("interval")), nodeagent.WithOnViolation(onMismatch), nodeagent.WithOnError(onError),
	}
	if ns := c.StringSlice("exempt-namespace"); len(ns) > 0 {
		for _, n := range ns {
			if errs := validation.IsDNS1123Label(n); len(errs) > 0 {
				return nil, 0, usageErrorf("--exempt-namespace %q: %s", n, strings.Join(errs, "; "))
			}
		}
		cfg.Options = append(cfg.Options, nodeagent.WithExemptNamespaces(ns...))
	}
	if cfg.Kube, err = kubeConfigFrom(c, inCluster); err != nil {
		return nil, 0, err
	}
	reg, err := admissionRegistryOptionsFrom(c)
	if err != nil {
		return nil, 0, err
	}
	cfg.VerifierOptions = append(reg, admission.WithPollInterval(c.Duration("poll-interval")))
	if c.Bool("image-pull-secrets") {
		cfg.VerifierOptions = append(cfg.VerifierOptions, admission.WithImagePullSecrets(cfg.Kube))
	}
	return cfg, level, nil
}

// kubeConfigFrom reads --kube-api, --kube-token-file and --kube-ca-file,
// or takes the pod's service account when --kube-api is not given.
func kubeConfigFrom(c *cli.Context, inCluster func() (admission.KubeConfig, error)) (admission.KubeConfig, error) {
	api, token, ca := c.String("kube-api"), c.String("kube-token-file"), c.String("kube-ca-file")
	switch {
	case api == "" && (token != "" || ca != ""):
		return admission.KubeConfig{}, usageErrorf("--kube-token-file and --kube-ca-file need --kube-api (without it, the pod's service account is used)")
	case api != "" && token == "":
		return admission.KubeConfig{}, usageErrorf("--kube-api needs --kube-token-file")
	case api == "":
		k, err := inCluster()
		if err != nil {
			return k, usageErrorf("%w; outside a cluster give --kube-api and --kube-token-file", err)
		}
		return k, nil
	}
	if err := checkFiles(map[string]string{"kube-token-file": token, "kube-ca-file": ca}); err != nil {
		return admission.KubeConfig{}, err
	}
	k := admission.KubeConfig{URL: api, TokenFile: token, CAFile: ca}
	if _, err := admission.NewKubernetesClient(k, "twinforge"); err != nil {
		return k, usageErrorf("--kube-api: %v", err)
	}
	return k, nil
}

func runNodeAgent(c *cli.Context) error {
	cfg, level, err := nodeAgentConfigFrom(c, admission.InClusterKubeConfig)
	if err != nil {
		return err
	}
	cfg.Logger = slog.New(slog.NewJSONHandler(c.App.ErrWriter, &slog.HandlerOptions{Level: level}))
	err = nodeagent.Serve(c.Context, *cfg)
	if errors.Is(err, admission.ErrInvalidConfig) || errors.Is(err, os.ErrNotExist) {
		return usageError(err)
	}
	return err
}
