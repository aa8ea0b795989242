package main

import (
	"log/slog"

	"github.com/urfave/cli/v2"

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

func runNodeAgent(c *cli.Context) error {
	if c.NArg() != 0 {
		return usageErrorf("node-agent takes no arguments, got %q", c.Args().Slice())
	}
	s := nodeagent.Settings{
		Node: c.String("node"), CRIEndpoint: c.String("cri"), Source: admissionSourceFrom(c),
		RecordKeyFile: c.String("record-public-key"), Addr: c.String("metrics-addr"),
		Interval: c.Duration("interval"), OnMismatch: c.String("on-mismatch"), OnError: c.String("on-error"),
		ExemptNamespaces: c.StringSlice("exempt-namespace"), PollInterval: c.Duration("poll-interval"),
		ImagePullSecrets: c.Bool("image-pull-secrets"), Registry: admissionRegistryFrom(c), Kube: kubeAccessFrom(c),
	}
	cfg, err := s.ServeConfig(admission.InClusterKubeConfig)
	if err != nil {
		return usageError(err)
	}
	cfg.Logger = slog.New(slog.NewJSONHandler(c.App.ErrWriter, &slog.HandlerOptions{Level: admissionLogLevel(c, slog.LevelInfo)}))
	return admissionUsage(nodeagent.Serve(c.Context, *cfg))
}
