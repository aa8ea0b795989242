package main

import (
	"log/slog"
	"slices"

	"github.com/urfave/cli/v2"

	"github.com/twinforge/twinforge/admission"
	"github.com/twinforge/twinforge/admission/nodeagent"
)

func nodeAgentCommand() *cli.Command {
	s := &nodeagent.Settings{}
	var exempt cli.StringSlice
	return &cli.Command{
		Name:        "node-agent",
		Usage:       "verify, on a node, that running containers run what admission verified",
		Description: helpText("node-agent"),
		Flags: slices.Concat(admissionPolicyFlags(&s.Source), []cli.Flag{
			&cli.StringFlag{Name: "node", Usage: "`NAME` of the node the agent runs on", EnvVars: []string{"NODE_NAME"}, Destination: &s.Node},
			&cli.StringFlag{Name: "cri", Value: "unix:///run/containerd/containerd.sock", Usage: "container runtime's CRI `ENDPOINT` (unix:///PATH)", Destination: &s.CRIEndpoint},
			&cli.StringFlag{Name: "record-public-key", Usage: "PEM `FILE` of the public keys admission records are signed with (required)", Destination: &s.RecordKeyFile},
			&cli.DurationFlag{Name: "interval", Value: nodeagent.DefaultInterval, Usage: "check every `DURATION`, besides on container events and file changes", Destination: &s.Interval},
			&cli.StringFlag{Name: "on-mismatch", Value: string(nodeagent.Alert), Usage: "`ACTION` on a violation: alert, or evict the pod", Destination: &s.OnMismatch},
			&cli.StringFlag{Name: "on-error", Value: string(nodeagent.Alert), Usage: "`ACTION` when a container cannot be checked: alert, or evict (fail closed)", Destination: &s.OnError},
			&cli.StringSliceFlag{Name: "exempt-namespace", Usage: "`NAMESPACE` whose containers are not checked, as the webhook exempts it (repeatable)", Destination: &exempt},
			&cli.StringFlag{Name: "metrics-addr", Value: ":9102", Usage: "serve /metrics, /healthz and /report on `ADDRESS` (plain HTTP; empty: off)", Destination: &s.Addr},
			&cli.DurationFlag{Name: "poll-interval", Value: admission.DefaultPollInterval, Usage: "how often the files are checked for changes (0: never)", Destination: &s.PollInterval},
			&cli.BoolFlag{Name: "image-pull-secrets", Usage: "reach registries with the pods' imagePullSecrets and service accounts' pull secrets too", Destination: &s.ImagePullSecrets},
			&cli.StringFlag{Name: "kube-api", Usage: "Kubernetes API server `URL` (https://HOST:PORT); default: the pod's service account (in-cluster)", Destination: &s.Kube.API},
			&cli.StringFlag{Name: "kube-token-file", Usage: "bearer token `FILE` for --kube-api", Destination: &s.Kube.TokenFile},
			&cli.StringFlag{Name: "kube-ca-file", Usage: "PEM `FILE` of the CA of --kube-api's certificate", Destination: &s.Kube.CAFile},
		}, admissionRegistryFlags(&s.Registry)),
		Action: func(c *cli.Context) error {
			if err := noArgs(c); err != nil {
				return err
			}
			s.ExemptNamespaces = exempt.Value()
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
		},
	}
}
