package main

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/twinforge/twinforge/internal/kubetest"
	"github.com/twinforge/twinforge/internal/testenv"
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

// `twinforge build --builder tcp://A --rebuilder tcp://B` builds on one
// stand-in host and rebuilds on another, each reached over TCP with
// mutual TLS and checked for its certificate's identity; the result names
// both workers. Two workers of one host are refused, as are the flags that
// make no sense together.
func TestBuildOnRemoteWorkersCLI(t *testing.T) {
	pool := testenv.NewWorkerPool(t, "builds")
	ha := testenv.NewHost(t, "host-a")
	a := ha.StartWorker(t, pool, "worker-a")
	a2 := ha.StartWorker(t, pool, "worker-a2")
	b := testenv.NewHost(t, "host-b").StartWorker(t, pool, "worker-b")
	testenv.BaseImages(t)
	c := newCLI(t)
	tls := []string{"--tlscacert", pool.CAFile, "--tlscert", pool.ClientCert, "--tlskey", pool.ClientKey}
	example := filepath.Join(testenv.RepoRoot(t), "examples", "files")

	args := append([]string{"build", "--progress", "plain", "-o", "json", "--oci-layout", filepath.Join(t.TempDir(), "img"),
		"--builder", a.Addr, "--builder-identity", a.Identity, "--rebuilder", b.Addr, "--rebuilder-identity", b.Identity}, tls...)
	r := c.must(append(args, example)...)
	var got struct {
		Reproduction string
		Builder      struct{ Identity, Node string }
		Rebuild      struct {
			Builder struct{ Identity, Node string }
		}
	}
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil {
		t.Fatalf("output: %v\n%s", err, r.stdout)
	}
	if got.Reproduction != "reproduced" || got.Builder.Identity != a.Identity || got.Builder.Node != "host-a" ||
		got.Rebuild.Builder.Identity != b.Identity || got.Rebuild.Builder.Node != "host-b" {
		t.Errorf("result: %+v", got)
	}

	same := append([]string{"build", "--oci-layout", filepath.Join(t.TempDir(), "img"), "--builder", a.Addr, "--rebuilder", a2.Addr}, tls...)
	if r := c.run(append(same, example)...); r.code != 1 || !strings.Contains(r.stderr, "not on separate machines") || !strings.Contains(r.stderr, "host-a") {
		t.Errorf("two workers on one host: exit %d: %s", r.code, r.stderr)
	}
	wrong := append([]string{"build", "--oci-layout", filepath.Join(t.TempDir(), "img"), "--builder", a.Addr, "--builder-identity", b.Identity, "--rebuilder", b.Addr}, tls...)
	if r := c.run(append(wrong, example)...); r.code != 1 || !strings.Contains(r.stderr, "certificate does not match") {
		t.Errorf("a worker with another's identity: exit %d: %s", r.code, r.stderr)
	}
	for _, bad := range [][]string{
		{"--rebuilder", b.Addr, "--no-rebuild"},
		{"--rebuilder", b.Addr, "--strict-variations"},
		{"--rebuilder-identity", b.Identity},
		{"--rebuilder-cluster", "other"},
		{"--builder", a.Addr, "--rebuilder", b.Addr, "--workers", "k8s://builds"},
		{"--workers", "builds"},
	} {
		if r := c.run(append(append([]string{"build"}, bad...), append(tls, example)...)...); r.code != 2 {
			t.Errorf("%v: exit %d, want 2: %s", bad, r.code, r.stderr)
		}
	}
	c.assertClean()
}
