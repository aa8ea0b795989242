package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"

	"github.com/twinforge/twinforge/admission"
	"github.com/twinforge/twinforge/distribute"
	"github.com/twinforge/twinforge/internal/kubetest"
	"github.com/twinforge/twinforge/internal/regtest"
	"github.com/twinforge/twinforge/internal/testenv"
)

// TestAdmissionReverifyUsage: conflicting or incomplete re-verification
// flags are usage errors, before anything is contacted.
func TestAdmissionReverifyUsage(t *testing.T) {
	c := newCLI(t)
	dir := t.TempDir()
	policy, token := filepath.Join(dir, "policy.yaml"), filepath.Join(dir, "token")
	write(t, policy, "apiVersion: twinforge.dev/v2\nkind: Policy\nidentities:\n  - publicKey: "+
		filepath.Join(testenv.RepoRoot(t), "attest", "testdata", "keys", "cosign.pub")+
		"\nrequireSignedTimestamp: false\nrequireTransparencyLog: false\n")
	write(t, token, "t")
	t.Setenv("KUBERNETES_SERVICE_HOST", "") // not in a pod, whatever runs the test
	serve := []string{"admission", "serve", "--policy", policy, "--tls-cert", policy, "--tls-key", policy}
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"admission", "reverify", "--once"}, []string{"--policy"}},
		{[]string{"admission", "reverify", "--once", "--policy", policy}, []string{"not running in a pod", "--kube-api"}},
		{[]string{"admission", "reverify", "--policy", policy, "--reverify-interval", "0"}, []string{"--reverify-interval", "--once"}},
		{[]string{"admission", "reverify", "--once", "--reverify-interval", "1m", "--policy", policy}, []string{"--once runs one pass"}},
		{[]string{"admission", "reverify", "--once", "--policy", policy, "--kube-token-file", token}, []string{"need --kube-api"}},
		{[]string{"admission", "reverify", "--once", "--policy", policy, "--kube-api", "https://127.0.0.1:6443"}, []string{"needs --kube-token-file"}},
		{[]string{"admission", "reverify", "--once", "--policy", policy, "--kube-api", "http://127.0.0.1:6443", "--kube-token-file", token}, []string{"https"}},
		{[]string{"admission", "reverify", "--once", "--policy", policy, "--kube-api", "https://127.0.0.1:6443", "--kube-token-file", token + ".missing"}, []string{"--kube-token-file"}},
		{[]string{"admission", "reverify", "--once", "--policy", policy, "--output", "yaml"}, []string{"--output"}},
		{append(serve, "--kube-api", "https://127.0.0.1:6443", "--kube-token-file", token), []string{"need --reverify-interval"}},
		{append(serve, "--reverify-interval", "10m"), []string{"not running in a pod"}},
		{append(serve, "--reverify-interval", "10m", "--reverify-exempt-namespace", "Kube_System", "--kube-api", "https://127.0.0.1:6443", "--kube-token-file", token), []string{"Kube_System"}},
	} {
		t.Run(strings.Join(tc.args[2:], " "), func(t *testing.T) {
			r := c.run(tc.args...)
			if r.code != exitUsage {
				t.Fatalf("exit %d, want %d\n%s", r.code, exitUsage, r.stderr)
			}
			assertContains(t, "stderr", r.stderr, tc.want...)
		})
	}
}

// TestAdmissionReverifyOnce: `admission reverify --once` against a real
// kube-apiserver and registry prints every pod image with its result, records
// an Event on the pod whose image fails and exits 4; once that pod is gone it
// exits 0.
func TestAdmissionReverifyOnce(t *testing.T) {
	cluster := kubetest.Start(t) // skips under -short
	reg := regtest.StartDistribution(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	img, err := random.Image(256, 1)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := name.ParseReference(reg.Host + "/team/app:v1")
	if err != nil {
		t.Fatal(err)
	}
	pushed, err := distribute.Push(ctx, img, ref, nil, distribute.WithInsecureLoopbackUnsafe())
	if err != nil {
		t.Fatal(err)
	}
	c := newCLI(t)
	dir := t.TempDir()
	policy, token := filepath.Join(dir, "policy.yaml"), filepath.Join(dir, "token")
	write(t, policy, "apiVersion: twinforge.dev/v2\nkind: Policy\nidentities:\n  - publicKey: "+
		filepath.Join(testenv.RepoRoot(t), "attest", "testdata", "keys", "cosign.pub")+
		"\nrequireSignedTimestamp: false\nrequireTransparencyLog: false\n")
	write(t, token, cluster.Token)
	kubectl := func(stdin string, args ...string) string {
		t.Helper()
		var in []byte
		if stdin != "" {
			in = []byte(stdin)
		}
		out, _, err := cluster.Kubectl(ctx, in, args...)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	kubectl("", "create", "namespace", "team")
	kubectl(`{"apiVersion":"v1","kind":"Pod","metadata":{"name":"app","namespace":"team"},"spec":{"containers":[{"name":"app","image":"`+ref.String()+`"}]}}`, "apply", "-f", "-")
	reverify := []string{"admission", "reverify", "--once", "--policy", policy, "--insecure-registry-loopback",
		"--kube-api", cluster.URL, "--kube-token-file", token, "--kube-ca-file", cluster.CAFile,
		"--reverify-exempt-namespace", "kube-system"}

	r := c.run(reverify...)
	if r.code != exitRefused {
		t.Fatalf("exit %d, want %d\n%s\n%s", r.code, exitRefused, r.stdout, r.stderr)
	}
	t.Logf("stdout:\n%s", r.stdout)
	assertContains(t, "stdout", r.stdout, "NAMESPACE", "team", "app", ref.String(), pushed.Digest.String(), admission.ResultVerification, `check "signature"`, "1 violation")
	assertContains(t, "stderr", r.stderr, "1 pod image no longer passes verification")

	r = c.run(append(reverify, "--output", "json")...)
	var rep admission.ReverifyReport
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil || r.code != exitRefused {
		t.Fatalf("exit %d, %v:\n%s", r.code, err, r.stdout)
	}
	if f := rep.Failed(); rep.Pods != 1 || len(f) != 1 || f[0].Digest != pushed.Digest.String() || f[0].DigestSource != admission.DigestFromTag {
		t.Fatalf("report %+v", rep)
	}

	var events struct {
		Items []struct {
			Reason         string `json:"reason"`
			Count          int    `json:"count"`
			InvolvedObject struct {
				Name string `json:"name"`
			} `json:"involvedObject"`
		} `json:"items"`
	}
	if err := json.Unmarshal([]byte(kubectl("", "get", "events", "-n", "team", "-o", "json")), &events); err != nil {
		t.Fatal(err)
	}
	// Each run is a new process: the second one counted the violation on
	// the Event of the first.
	if len(events.Items) != 1 || events.Items[0].Reason != admission.EventReasonVerificationFailed || events.Items[0].InvolvedObject.Name != "app" || events.Items[0].Count != 2 {
		t.Fatalf("events: %+v", events.Items)
	}

	// admission serve --reverify-interval reports the same at /reverify and
	// in /metrics.
	pki := testenv.NewPKI(t, t.TempDir())
	addr := "127.0.0.1:" + testenv.FreePort(t)
	metricsAddr := "127.0.0.1:" + testenv.FreePort(t)
	sctx, stop := context.WithCancel(ctx)
	serve := c.command(sctx, append([]string{"admission", "serve", "--tls-cert", pki.ServerCert, "--tls-key", pki.ServerKey, "--addr", addr,
		"--metrics-addr", metricsAddr, "--reverify-interval", "1h"}, reverify[3:]...)...)
	var serveLog bytes.Buffer
	serve.Stderr = &serveLog
	serve.Cancel = func() error { return serve.Process.Signal(syscall.SIGTERM) }
	if err := serve.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		stop()
		serve.Wait()
		t.Logf("serve's log:\n%s", serveLog.String())
	}()
	ca, err := os.ReadFile(pki.CA)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}, Timeout: 10 * time.Second}
	fetch := func(url string) (int, string) {
		resp, err := client.Get(url)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	get := func(path string) (int, string) { return fetch("http://" + metricsAddr + path) }
	var body string
	for code := 0; code != http.StatusOK; {
		if ctx.Err() != nil {
			t.Fatalf("serve never answered %s: %d %s\n%s", admission.PathReverify, code, body, serveLog.String())
		}
		time.Sleep(100 * time.Millisecond)
		code, body = get(admission.PathReverify)
	}
	if err := json.Unmarshal([]byte(body), &rep); err != nil || rep.Violations != 1 || rep.Trigger != admission.TriggerStart {
		t.Fatalf("%s: %v\n%s", admission.PathReverify, err, body)
	}
	if _, metrics := get(admission.PathMetrics); !strings.Contains(metrics, `twinforge_admission_runtime_violations{digest="`+pushed.Digest.String()+`"`) {
		t.Errorf("no violation in /metrics:\n%s", metrics)
	}
	// Not on the webhook's port, which every pod can reach.
	for _, p := range []string{admission.PathMetrics, admission.PathReverify} {
		if code, _ := fetch("https://" + addr + p); code != http.StatusNotFound {
			t.Errorf("the webhook's port answers %s: %d", p, code)
		}
	}

	kubectl("", "delete", "pod", "app", "-n", "team", "--wait=false")
	r = c.must(reverify...)
	assertContains(t, "stdout", r.stdout, "0 pods checked", "0 violations")
}
