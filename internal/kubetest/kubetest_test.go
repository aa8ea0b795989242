package kubetest

import (
	"context"
	"strings"
	"testing"
)

// TestStart runs the API server and talks to it through kubectl.
func TestStart(t *testing.T) {
	c := Start(t)
	ctx := context.Background()
	out, _, err := c.Kubectl(ctx, nil, "get", "namespaces", "-o", "name")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "namespace/default") {
		t.Fatalf("namespaces: %q", out)
	}
	pod := []byte(`{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"},"spec":{"containers":[{"name":"c","image":"example.test/app:1"}]}}`)
	if _, _, err := c.Kubectl(ctx, pod, "apply", "-f", "-"); err != nil {
		t.Fatalf("a pod is stored without a kubelet: %v", err)
	}
	out, _, err = c.Kubectl(ctx, nil, "get", "pod", "p", "-o", "jsonpath={.status.phase}")
	if err != nil || out != "Pending" {
		t.Fatalf("pod phase %q, %v", out, err)
	}
}
