package main

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/twinforge/twinforge/internal/kubetest"
)

// `twinforge workers deploy` puts a pool on a real API server, prints its
// objects without applying them on --dry-run, lists it and removes it.
func TestWorkersDeployCLI(t *testing.T) {
	cluster := kubetest.Start(t)
	if _, stderr, err := cluster.Kubectl(context.Background(), nil, "create", "namespace", "builds"); err != nil {
		t.Fatalf("kubectl create namespace: %v: %s", err, stderr)
	}
	cli := newCLI(t)
	certs := filepath.Join(t.TempDir(), "certs")
	common := []string{"--kubeconfig", cluster.Kubeconfig, "--namespace", "builds", "--certs-dir", certs}

	r := cli.run(append([]string{"workers", "deploy", "--replicas", "2", "--dry-run", "-o", "yaml"}, common...)...)
	if r.code != 0 {
		t.Fatalf("dry run: exit %d: %s", r.code, r.stderr)
	}
	for _, want := range []string{"kind: StatefulSet", "requiredDuringSchedulingIgnoredDuringExecution", "kind: NetworkPolicy", "topologyKey: kubernetes.io/hostname"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("dry run output lacks %q", want)
		}
	}
	if out, _, _ := cluster.Kubectl(context.Background(), nil, "-n", "builds", "get", "statefulsets", "-o", "name"); strings.TrimSpace(out) != "" {
		t.Fatalf("the dry run applied: %s", out)
	}

	r = cli.run(append([]string{"workers", "deploy", "--replicas", "3", "--cpu", "250m", "-o", "json"}, common...)...)
	if r.code != 0 {
		t.Fatalf("deploy: exit %d: %s", r.code, r.stderr)
	}
	var dep struct {
		Workers []string `json:"workers"`
		NewCA   bool     `json:"newCA"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &dep); err != nil || len(dep.Workers) != 3 || !dep.NewCA {
		t.Fatalf("deploy output %q: %v", r.stdout, err)
	}
	out, stderr, err := cluster.Kubectl(context.Background(), nil, "-n", "builds", "get", "statefulsets", "-o", "name")
	if err != nil || strings.Count(out, "statefulset.apps/") != 3 {
		t.Fatalf("kubectl get statefulsets: %v %s: %s", err, stderr, out)
	}

	r = cli.run(append([]string{"workers", "list"}, common[:4]...)...)
	if r.code != 0 || !strings.Contains(r.stdout, "twinforge-workers-2") || !strings.Contains(r.stdout, "no pod") {
		t.Errorf("list: exit %d: %s %s", r.code, r.stdout, r.stderr)
	}
	if r := cli.run("workers", "deploy", "--namespace", "builds", "--replicas", "1", "--kubeconfig", cluster.Kubeconfig); r.code != 2 {
		t.Errorf("--replicas 1: exit %d, want 2: %s", r.code, r.stderr)
	}
	if r := cli.run("workers", "deploy", "--replicas", "2", "--kubeconfig", cluster.Kubeconfig); r.code != 2 || !strings.Contains(r.stderr, "--namespace") {
		t.Errorf("no --namespace: exit %d, want 2: %s", r.code, r.stderr)
	}
	r = cli.run(append([]string{"workers", "delete"}, common[:4]...)...)
	if r.code != 0 {
		t.Fatalf("delete: exit %d: %s", r.code, r.stderr)
	}
	if out, _, _ := cluster.Kubectl(context.Background(), nil, "-n", "builds", "get", "statefulsets,leases,secrets", "-o", "name"); strings.Contains(out, "twinforge") {
		t.Errorf("left after delete: %s", out)
	}
}

// `twinforge workers certs` makes a CA and the certificates of workers and
// clients, and reuses the CA on a second run.
func TestWorkersCertsCLI(t *testing.T) {
	cli := newCLI(t)
	dir := filepath.Join(t.TempDir(), "certs")
	r := cli.run("workers", "certs", "--dir", dir, "--pool", "builds", "--worker", "a=a.example", "--client", "ci", "-o", "json")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	var f struct {
		NewCA      bool              `json:"newCA"`
		Identities map[string]string `json:"identities"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &f); err != nil || !f.NewCA || f.Identities["a"] != "spiffe://twinforge/workers/builds/a" || f.Identities["ci"] != "spiffe://twinforge/clients/builds/ci" {
		t.Fatalf("output %q: %v", r.stdout, err)
	}
	r = cli.run("workers", "certs", "--dir", dir, "--pool", "builds", "--worker", "b=10.0.0.2", "-o", "json")
	if r.code != 0 || strings.Contains(r.stdout, `"newCA": true`) {
		t.Errorf("second run: exit %d: %s %s", r.code, r.stdout, r.stderr)
	}
	if r := cli.run("workers", "certs", "--dir", dir, "--pool", "other", "--worker", "c=c.example"); r.code == 0 || !strings.Contains(r.stderr, "pool") {
		t.Errorf("another pool's name with the same CA: exit %d: %s", r.code, r.stderr)
	}
	if r := cli.run("workers", "certs", "--dir", dir, "--pool", "builds", "--worker", "nohost"); r.code != 2 {
		t.Errorf("--worker without hosts: exit %d, want 2", r.code)
	}
}
