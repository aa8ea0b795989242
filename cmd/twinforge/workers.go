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
func clusterFlags(k *kube.Cluster) []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "namespace", Aliases: []string{"n"}, Usage: "the pool's namespace (required)", Destination: &k.Namespace},
		&cli.StringFlag{Name: "pool", Value: kube.DefaultPool, Usage: "the pool's name in the namespace", Destination: &k.Pool},
		&cli.StringFlag{Name: "kubeconfig", Usage: "kubeconfig file (default: $KUBECONFIG, else ~/.kube/config)", EnvVars: []string{"KUBECONFIG"}, Destination: &k.Kubeconfig},
		&cli.StringFlag{Name: "context", Usage: "kubeconfig context (default: its current context)", Destination: &k.Context},
	}
}

type workersDeployOptions struct {
	kube.DeploySettings
	output       string
	nodeSelector cli.StringSlice
}

func workersDeployCommand() *cli.Command {
	o := &workersDeployOptions{}
	return &cli.Command{
		Name:        "deploy",
		Usage:       "deploy or update a pool of BuildKit workers on Kubernetes",
		Description: helpText("workers-deploy"),
		Flags: append(clusterFlags(&o.Cluster),
			&cli.IntFlag{Name: "replicas", Value: 2, Usage: "how many workers (at least 2: a build and its rebuild)", Destination: &o.Options.Replicas},
			&cli.StringFlag{Name: "image", Value: kube.DefaultImage, Usage: "worker image (buildkitd, runc, CNI loopback plugin); pin it by digest", Destination: &o.Options.Image},
			&cli.StringFlag{Name: "image-pull-policy", Value: string(corev1.PullIfNotPresent), Usage: "Always, IfNotPresent or Never", Destination: &o.PullPolicy},
			&cli.StringFlag{Name: "cpu", Value: "1", Usage: "CPU request of each worker", Destination: &o.Options.CPU},
			&cli.StringFlag{Name: "memory", Value: "2Gi", Usage: "memory request of each worker", Destination: &o.Options.Memory},
			&cli.StringFlag{Name: "cpu-limit", Usage: "CPU limit of each worker (default: none)", Destination: &o.Options.CPULimit},
			&cli.StringFlag{Name: "memory-limit", Usage: "memory limit of each worker (default: none)", Destination: &o.Options.MemoryLimit},
			&cli.StringFlag{Name: "snapshotter", Value: "overlayfs", Usage: "workers' snapshotter: overlayfs or native", Destination: &o.Options.Snapshotter},
			&cli.StringSliceFlag{Name: "node-selector", Usage: "KEY=VALUE a node must carry to run workers (repeatable)", Destination: &o.nodeSelector},
			&cli.BoolFlag{Name: "preferred-anti-affinity", Usage: "spread workers over nodes where possible instead of requiring it", Destination: &o.Options.PreferredAntiAffinity},
			&cli.StringFlag{Name: "certs-dir", Usage: "where the pool's CA is kept (default: ~/.config/twinforge/workers/NAMESPACE/POOL)", Destination: &o.CertsDir},
			&cli.BoolFlag{Name: "dry-run", Usage: "change nothing; print what would be applied (with -o yaml)", Destination: &o.DryRun},
			&cli.DurationFlag{Name: "wait", Value: 0, Usage: "wait this long for the workers to be ready (0: do not wait)", Destination: &o.Wait},
			outputFlag(&o.output, "text, json or yaml (yaml prints the objects, Secrets included)"),
		),
		Action: o.run,
	}
}

func (o *workersDeployOptions) run(c *cli.Context) error {
	k, err := o.Cluster.Check()
	if err != nil {
		return err
	}
	if err := checkOutput(o.output, "text", "json", "yaml"); err != nil {
		return err
	}
	o.NodeSelector = o.nodeSelector.Value()
	dep, err := o.Run(c.Context, func(ready, want int) {
		fmt.Fprintf(c.App.ErrWriter, "%d of %d workers ready\n", ready, want)
	})
	if err != nil {
		return err
	}
	if o.output == "yaml" {
		return dep.WriteYAML(c.App.Writer)
	}
	return writeOutput(c.App.Writer, o.output, dep.Report(k, o.DryRun))
}

func workersListCommand() *cli.Command {
	var cluster kube.Cluster
	var output string
	return &cli.Command{
		Name:  "list",
		Usage: "show a pool's workers, which node each runs on, who is building on it, and who waits",
		Flags: append(clusterFlags(&cluster), outputFlag(&output, "text or json")),
		Action: func(c *cli.Context) error {
			k, err := cluster.Check()
			if err != nil {
				return err
			}
			if err := checkOutput(output); err != nil {
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
	var cluster kube.Cluster
	return &cli.Command{
		Name:  "delete",
		Usage: "remove a pool's workers and everything deployed with them (refused while one builds)",
		Flags: clusterFlags(&cluster),
		Action: func(c *cli.Context) error {
			k, err := cluster.Check()
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
	var dir, pool, output string
	var workers, clients cli.StringSlice
	return &cli.Command{
		Name:        "certs",
		Usage:       "make certificates for workers that are not on Kubernetes",
		Description: helpText("workers-certs"),
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "dir", Required: true, Usage: "directory of the CA and the certificates", Destination: &dir},
			&cli.StringFlag{Name: "pool", Required: true, Usage: "the pool's name, part of every identity", Destination: &pool},
			&cli.StringSliceFlag{Name: "worker", Usage: "NAME=HOST[,HOST...]: a worker and the names clients reach it by (repeatable)", Destination: &workers},
			&cli.StringSliceFlag{Name: "client", Usage: "NAME of a client certificate (repeatable)", Destination: &clients},
			outputFlag(&output, "text or json"),
		},
		Action: func(c *cli.Context) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			f, err := workercert.IssueRequest{Dir: dir, Pool: pool, Workers: workers.Value(), Clients: clients.Value()}.Issue()
			if err != nil {
				return err
			}
			return writeOutput(c.App.Writer, output, f)
		},
	}
}
