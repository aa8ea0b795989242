package kubetest

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/twinforge/twinforge/internal/offline"
	"github.com/twinforge/twinforge/internal/regtest"
)

// TestNode runs a Deployment on a real node: the controller manager makes
// its pod, the scheduler binds it, the kubelet has containerd pull its image
// from a loopback registry and run it with runc, and kubectl logs reads what
// it printed. Stopping the node leaves no process, mount, cgroup or pod
// network namespace behind.
func TestNode(t *testing.T) {
	c := Start(t)
	n := StartNode(t, c)
	reg := regtest.StartDistribution(t)
	n.UseRegistry(t, reg.Host)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	base, err := offline.Base(offline.DefaultBusybox)
	if err != nil {
		t.Fatal(err)
	}
	img, err := withEntrypoint(base, []string{"/bin/sh", "-c", "echo hello from the node; exec sleep 3600"})
	if err != nil {
		t.Fatal(err)
	}
	ref, err := name.ParseReference(reg.Host + "/kubetest/hello:1")
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img); err != nil {
		t.Fatal(err)
	}
	digest, _ := img.Digest()

	deployment := fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata: {name: hello, namespace: default}
spec:
  replicas: 1
  selector: {matchLabels: {app: hello}}
  template:
    metadata: {labels: {app: hello}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: hello
        image: %s
`, ref)
	if _, _, err := c.Kubectl(ctx, []byte(deployment), "apply", "-f", "-"); err != nil {
		t.Fatal(err)
	}
	pod := WaitPodRunning(t, c, "default", "app=hello")
	out, _, err := c.Kubectl(ctx, nil, "get", "pod", pod, "-o", "jsonpath={.spec.nodeName} {.status.containerStatuses[0].imageID}")
	if err != nil {
		t.Fatal(err)
	}
	if want := NodeName + " " + reg.Host + "/kubetest/hello@" + digest.String(); out != want {
		t.Errorf("node and image ID %q, want %q", out, want)
	}
	logs, _, err := c.Kubectl(ctx, nil, "logs", pod)
	if err != nil || !strings.Contains(logs, "hello from the node") {
		t.Errorf("kubectl logs: %q, %v", logs, err)
	}

	// The pod's cgroups are under the node's own root.
	found := false
	for _, dir := range n.cgroups {
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			if e.Name() == "kubepods" {
				found = true
			}
		}
	}
	if !found {
		t.Errorf("no kubepods cgroup under %s", n.CgroupRoot)
	}

	n.Stop(t)
	if len(n.PodNetworkNamespaces()) == 0 {
		t.Error("no pod network namespace was seen: the check of what is left proves nothing")
	}
	if left := n.Leftovers(); len(left) > 0 {
		t.Errorf("left behind: %v", left)
	}
}
