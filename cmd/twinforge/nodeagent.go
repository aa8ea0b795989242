package main

import (
	"log/slog"

	"github.com/urfave/cli/v2"

	"github.com/twinforge/twinforge/admission"
	"github.com/twinforge/twinforge/admission/nodeagent"
)

func nodeAgentCommand() *cli.Command {
	return &cli.Command{
		Name:        "node-agent",
		Usage:       "verify, on a node, that running containers run what admission verified",
		Description: helpText("node-agent"),
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
	if err := noArgs(c); err != nil {
		return err
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
	cfg.Logger = admissionLogger(c, slog.LevelInfo)
	err = nodeagent.Serve(c.Context, *cfg)
	if admission.IsConfigError(err) {
		return usageError(err)
	}
	return err
}
