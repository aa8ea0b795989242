package main

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/twinforge/twinforge/internal/testenv"
)

// TestNodeAgentUsage: bad flags of node-agent and of the serve flags it
// brought are usage errors (exit 2) that name the flag.
func TestNodeAgentUsage(t *testing.T) {
	c := newCLI(t)
	dir := t.TempDir()
	policy, token := filepath.Join(dir, "policy.yaml"), filepath.Join(dir, "token")
	write(t, policy, "apiVersion: twinforge.dev/v2\nkind: Policy\nidentities:\n  - publicKey: "+
		filepath.Join(testenv.RepoRoot(t), "attest", "testdata", "keys", "cosign.pub")+
		"\nrequireSignedTimestamp: false\nrequireTransparencyLog: false\n")
	write(t, token, "t")
	t.Setenv("KUBERNETES_SERVICE_HOST", "")
	agent := []string{"node-agent", "--node", "n1", "--policy", policy, "--record-public-key", policy}
	kube := []string{"--kube-api", "https://127.0.0.1:6443", "--kube-token-file", token}
	serve := []string{"admission", "serve", "--policy", policy, "--tls-cert", policy, "--tls-key", policy}
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"node-agent", "--policy", policy, "--record-public-key", policy}, []string{"node"}},
		{[]string{"node-agent", "--node", "n1", "--policy", policy}, []string{"record-public-key"}},
		{append(agent, "--cri", "tcp://127.0.0.1:1"), []string{"--cri", "unix://"}},
		{append(agent, "--on-mismatch", "delete"), []string{"--on-mismatch", "alert or evict"}},
		{append(agent, "--on-error", "panic"), []string{"--on-error"}},
		{append(agent, "--interval", "0s"), []string{"--interval"}},
		{append(agent, "--exempt-namespace", "Kube_System"), []string{"Kube_System"}},
		{agent, []string{"not running in a pod", "--kube-api"}},
		{append(slicesOf(agent, "--node", "Not A Node"), kube...), []string{"--node"}},
		{append(serve, "--record-key", policy), []string{"--record-key"}},
		{append(serve, "--leader-elect"), []string{"--leader-elect needs --reverify-interval"}},
		{append(serve, "--image-pull-secrets"), []string{"not running in a pod"}},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			r := c.run(tc.args...)
			if r.code != exitUsage {
				t.Fatalf("exit %d, want %d\n%s", r.code, exitUsage, r.stderr)
			}
			assertContains(t, "stderr", r.stderr, tc.want...)
		})
	}
}

// slicesOf is args with flag's value replaced.
func slicesOf(args []string, flag, value string) []string {
	out := append([]string(nil), args...)
	for i := range out {
		if out[i] == flag && i+1 < len(out) {
			out[i+1] = value
		}
	}
	return out
}
