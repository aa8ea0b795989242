package main

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"

	"github.com/urfave/cli/v2"

	"github.com/twinforge/twinforge/isolation/kube"
	"github.com/twinforge/twinforge/isolation/workercert"
)

func workersCommand() *cli.Command {
	return &cli.Command{
		Name:        "workers",
		Usage:       "run build workers on Kubernetes, or make certificates for workers elsewhere",
		Description: helpText("workers"),
		Subcommands: []*cli.Command{
			workersDeployCommand(),
			workersListCommand(),
			workersDeleteCommand(),
			workersCertsCommand(),
		},
	}
}

// clusterFlags select a pool on a cluster, as kubectl selects a cluster.
func clusterFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "namespace", Aliases: []string{"n"}, Usage: "the pool's namespace (required)"},
		&cli.StringFlag{Name: "pool", Value: kube.DefaultPool, Usage: "the pool's name in the namespace"},
		&cli.StringFlag{Name: "kubeconfig", Usage: "kubeconfig file (default: $KUBECONFIG, else ~/.kube/config)", EnvVars: []string{"KUBECONFIG"}},
		&cli.StringFlag{Name: "context", Usage: "kubeconfig context (default: its current context)"},
	}
}

func clusterFrom(c *cli.Context) (kube.Cluster, error) {
	if c.String("namespace") == "" {
		return kube.Cluster{}, usageErrorf("--namespace is required: the namespace the pool lives in")
	}
	k, err := kube.ParseWorkers("k8s://" + c.String("namespace") + "/" + c.String("pool"))
	if err != nil {
		return kube.Cluster{}, usageError(err)
	}
	k.Kubeconfig, k.Context = c.String("kubeconfig"), c.String("context")
	return k, nil
}

func workersDeployCommand() *cli.Command {
	return &cli.Command{
		Name:        "deploy",
		Usage:       "deploy or update a pool of BuildKit workers on Kubernetes",
		Description: helpText("workers-deploy"),
		Flags: append(clusterFlags(),
			&cli.IntFlag{Name: "replicas", Value: 2, Usage: "how many workers (at least 2: a build and its rebuild)"},
			&cli.StringFlag{Name: "image", Value: kube.DefaultImage, Usage: "worker image (buildkitd, runc, CNI loopback plugin); pin it by digest"},
			&cli.StringFlag{Name: "image-pull-policy", Value: string(corev1.PullIfNotPresent), Usage: "Always, IfNotPresent or Never"},
			&cli.StringFlag{Name: "cpu", Value: "1", Usage: "CPU request of each worker"},
			&cli.StringFlag{Name: "memory", Value: "2Gi", Usage: "memory request of each worker"},
			&cli.StringFlag{Name: "cpu-limit", Usage: "CPU limit of each worker (default: none)"},
			&cli.StringFlag{Name: "memory-limit", Usage: "memory limit of each worker (default: none)"},
			&cli.StringFlag{Name: "snapshotter", Value: "overlayfs", Usage: "workers' snapshotter: overlayfs or native"},
			&cli.StringSliceFlag{Name: "node-selector", Usage: "KEY=VALUE a node must carry to run workers (repeatable)"},
			&cli.BoolFlag{Name: "preferred-anti-affinity", Usage: "spread workers over nodes where possible instead of requiring it"},
			&cli.StringFlag{Name: "certs-dir", Usage: "where the pool's CA is kept (default: ~/.config/twinforge/workers/NAMESPACE/POOL)"},
			&cli.BoolFlag{Name: "dry-run", Usage: "change nothing; print what would be applied (with -o yaml)"},
			&cli.DurationFlag{Name: "wait", Value: 0, Usage: "wait this long for the workers to be ready (0: do not wait)"},
			outputFlag("text, json or yaml (yaml prints the objects, Secrets included)"),
		),
		Action: runWorkersDeploy,
	}
}

func runWorkersDeploy(c *cli.Context) error {
	k, err := clusterFrom(c)
	if err != nil {
		return err
	}
	output, err := outputFrom(c, "text", "json", "yaml")
	if err != nil {
		return err
	}
	selector, err := parseKeyValues("node-selector", c.StringSlice("node-selector"))
	if err != nil {
		return usageError(err)
	}
	if c.Int("replicas") < 2 {
		return usageErrorf("--replicas %d: a pool needs at least 2 workers, a build and its rebuild on two nodes", c.Int("replicas"))
	}
	o := kube.Options{
		Replicas: c.Int("replicas"), Image: c.String("image"), ImagePullPolicy: corev1.PullPolicy(c.String("image-pull-policy")),
		CPU: c.String("cpu"), Memory: c.String("memory"), CPULimit: c.String("cpu-limit"), MemoryLimit: c.String("memory-limit"),
		Snapshotter: c.String("snapshotter"), NodeSelector: selector, PreferredAntiAffinity: c.Bool("preferred-anti-affinity"),
	}
	dep, err := kube.DeployAndWait(c.Context, k, o, c.String("certs-dir"), c.Bool("dry-run"), c.Duration("wait"), func(ready, want int) {
		fmt.Fprintf(c.App.ErrWriter, "%d of %d workers ready\n", ready, want)
	})
	if err != nil {
		return err
	}
	if output == "yaml" {
		return dep.WriteYAML(c.App.Writer)
	}
	return writeOutput(c.App.Writer, output, dep.Report(k, c.Bool("dry-run")))
}

func workersListCommand() *cli.Command {
	return &cli.Command{
		Name:  "list",
		Usage: "show a pool's workers, which node each runs on, who is building on it, and who waits",
		Flags: append(clusterFlags(),
			outputFlag("text or json"),
		),
		Action: func(c *cli.Context) error {
			k, err := clusterFrom(c)
			if err != nil {
				return err
			}
			output, err := outputFrom(c)
			if err != nil {
				return err
			}
			st, err := kube.List(c.Context, k)
			if err != nil {
				return err
			}
			return writeOutput(c.App.Writer, output, st)
		},
	}
}

func workersDeleteCommand() *cli.Command {
	return &cli.Command{
		Name:  "delete",
		Usage: "remove a pool's workers and everything deployed with them (refused while one builds)",
		Flags: clusterFlags(),
		Action: func(c *cli.Context) error {
			k, err := clusterFrom(c)
			if err != nil {
				return err
			}
			if err := kube.Remove(c.Context, k); err != nil {
				return err
			}
			fmt.Fprintf(c.App.Writer, "removed %s (its CA stays in %s)\n", k, kube.DefaultCertsDir(k))
			return nil
		},
	}
}

func workersCertsCommand() *cli.Command {
	return &cli.Command{
		Name:        "certs",
		Usage:       "make certificates for workers that are not on Kubernetes",
		Description: helpText("workers-certs"),
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "dir", Required: true, Usage: "directory of the CA and the certificates"},
			&cli.StringFlag{Name: "pool", Required: true, Usage: "the pool's name, part of every identity"},
			&cli.StringSliceFlag{Name: "worker", Usage: "NAME=HOST[,HOST...]: a worker and the names clients reach it by (repeatable)"},
			&cli.StringSliceFlag{Name: "client", Usage: "NAME of a client certificate (repeatable)"},
			outputFlag("text or json"),
		},
		Action: func(c *cli.Context) error {
			output, err := outputFrom(c)
			if err != nil {
				return err
			}
			workers, err := workercert.ParseWorkers(c.StringSlice("worker"))
			if err != nil {
				return usageError(err)
			}
			if len(workers) == 0 && len(c.StringSlice("client")) == 0 {
				return usageErrorf("give at least one --worker or --client")
			}
			f, err := workercert.IssueFiles(c.String("dir"), c.String("pool"), workers, c.StringSlice("client"))
			if err != nil {
				return err
			}
			return writeOutput(c.App.Writer, output, f)
		},
	}
}
