// Package kubetest runs a real Kubernetes API server for twinforge's
// admission tests: etcd and kube-apiserver as child processes on free
// loopback ports, with their data, certificates, keys and logs in a fresh
// directory, stopped at cleanup. `make kube-tools` builds bin/etcd,
// bin/kube-apiserver and bin/kubectl from the modules pinned under
// tools/kubernetes.
//
// Start's cluster has no scheduler, controller manager or kubelet: objects
// are stored (pods stay Pending) and admission, webhooks included, runs as
// in any cluster. StartNode adds a node (containerd, runc and a kubelet) and
// the controller manager and scheduler, so that pods really run
// (docs/node.md). The ServiceAccount admission plugin is off, since no
// controller creates the default service accounts.
package kubetest

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twinforge/twinforge/internal/testenv"
)

// readyTimeout bounds the wait for etcd and for the API server to be ready.
const readyTimeout = 2 * time.Minute

// Cluster is a running etcd and kube-apiserver.
type Cluster struct {
	// URL is the API server's base URL, https://127.0.0.1:PORT.
	URL string
	// Token is a bearer token of a cluster administrator (group
	// system:masters).
	Token string
	// CAFile is the PEM file of the CA that signed the API server's
	// certificate.
	CAFile string
	// Kubeconfig is a kubeconfig file for kubectl with URL, CAFile and
	// Token.
	Kubeconfig string
	// Dir holds the cluster's files and the logs etcd.log and
	// kube-apiserver.log.
	Dir string

	kubectl string
	procs   []*process
	pki     testenv.PKI
	// tokens are the bearer tokens of the node's components, by component
	// (componentUsers).
	tokens map[string]string
	node   *Node
}

// componentUsers are the users (and groups) the components of a Node
// authenticate as: the scheduler with the role Kubernetes bootstraps for it,
// the kubelet authorized by the Node authorizer. The controller manager is
// an administrator: its own role only suffices with a service account per
// controller (--use-service-account-credentials), which needs the token
// controller and the ServiceAccount admission plugin this cluster runs
// without.
var componentUsers = map[string]string{
	"kube-controller-manager": `system:kube-controller-manager,system:kube-controller-manager,"system:masters"`,
	"kube-scheduler":          "system:kube-scheduler,system:kube-scheduler,",
	"kubelet":                 "system:node:" + NodeName + ",system:node:" + NodeName + `,"system:nodes"`,
}

// Binary returns one of the Kubernetes tools from bin/ (TWINFORGE_BIN
// overrides the directory) and fails the test when it is missing, naming the
// make target that builds it.
func Binary(t testing.TB, name string) string {
	t.Helper()
	dir := os.Getenv("TWINFORGE_BIN")
	if dir == "" {
		dir = filepath.Join(testenv.RepoRoot(t), "bin")
	}
	p := filepath.Join(dir, name)
	if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
		return p
	}
	t.Fatalf("%s not found in %s: run `make kube-tools`", name, dir)
	return ""
}

// Start runs etcd and kube-apiserver for the test and returns once the API
// server's /readyz answers ok. Both are stopped at cleanup. The test is
// skipped under -short.
func Start(t testing.TB) *Cluster {
	t.Helper()
	if testing.Short() {
		t.Skip("needs etcd and kube-apiserver; skipped with -short")
	}
	etcdBin := Binary(t, "etcd")
	apiBin := Binary(t, "kube-apiserver")
	c := &Cluster{Dir: t.TempDir(), kubectl: Binary(t, "kubectl")}
	t.Cleanup(func() { c.stop(t) })

	// etcd, plain HTTP on loopback.
	var etcdURL string
	c.startReady(t, "etcd", etcdBin, 3, func(ports []string) ([]string, string) {
		etcdURL = "http://127.0.0.1:" + ports[0]
		peerURL := "http://127.0.0.1:" + ports[1]
		return []string{
			"--name=kubetest",
			"--data-dir=" + filepath.Join(c.Dir, "etcd-"+ports[0]), // fresh on a retry
			"--listen-client-urls=" + etcdURL,
			"--advertise-client-urls=" + etcdURL,
			"--listen-peer-urls=" + peerURL,
			"--initial-advertise-peer-urls=" + peerURL,
			"--initial-cluster=kubetest=" + peerURL,
			"--listen-metrics-urls=http://127.0.0.1:" + ports[2],
			"--log-level=warn",
		}, etcdURL + "/health"
	}, nil, "")

	// kube-apiserver, HTTPS with a certificate for 127.0.0.1.
	pki := testenv.NewPKI(t, filepath.Join(c.Dir, mkdir(t, c.Dir, "pki")))
	c.CAFile = pki.CA
	saKey, saPub := writeServiceAccountKey(t, filepath.Join(c.Dir, "pki"))
	c.pki = pki
	c.Token = randomToken(t)
	tokens := filepath.Join(c.Dir, "tokens.csv")
	csv := fmt.Sprintf("%s,admin,admin-uid,system:masters\n", c.Token)
	c.tokens = map[string]string{}
	for _, component := range slices.Sorted(maps.Keys(componentUsers)) {
		c.tokens[component] = randomToken(t)
		csv += c.tokens[component] + "," + componentUsers[component] + "\n"
	}
	writeFile(t, tokens, csv)
	c.startReady(t, "kube-apiserver", apiBin, 1, func(ports []string) ([]string, string) {
		c.URL = "https://127.0.0.1:" + ports[0]
		return []string{
			"--etcd-servers=" + etcdURL,
			"--bind-address=127.0.0.1",
			"--advertise-address=127.0.0.1",
			"--secure-port=" + ports[0],
			"--cert-dir=" + filepath.Join(c.Dir, "certs"),
			"--tls-cert-file=" + pki.ServerCert,
			"--tls-private-key-file=" + pki.ServerKey,
			"--client-ca-file=" + pki.CA,
			"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
			"--service-account-key-file=" + saPub,
			"--service-account-signing-key-file=" + saKey,
			"--token-auth-file=" + tokens,
			"--authorization-mode=Node,RBAC",
			"--enable-admission-plugins=NodeRestriction",
			"--kubelet-preferred-address-types=InternalIP",
			"--kubelet-client-certificate=" + pki.ClientCert,
			"--kubelet-client-key=" + pki.ClientKey,
			// Build workers run privileged, as buildkitd with runc needs.
			"--allow-privileged=true",
			"--service-cluster-ip-range=10.0.0.0/24",
			"--endpoint-reconciler-type=none",
			"--disable-admission-plugins=ServiceAccount",
			"--profiling=false",
		}, c.URL + "/readyz"
	}, &pki, c.Token)

	c.Kubeconfig = c.writeKubeconfig(t, "kubeconfig", "admin", c.Token)
	return c
}

// componentKubeconfig is the kubeconfig of a Node component
// (componentUsers).
func (c *Cluster) componentKubeconfig(t testing.TB, component string) string {
	t.Helper()
	token, ok := c.tokens[component]
	if !ok {
		t.Fatalf("no credentials for %s", component)
	}
	return c.writeKubeconfig(t, component+".kubeconfig", component, token)
}

func (c *Cluster) writeKubeconfig(t testing.TB, file, user, token string) string {
	t.Helper()
	path := filepath.Join(c.Dir, file)
	writeFile(t, path, fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: kubetest
  cluster:
    server: %[1]s
    certificate-authority: %[2]s
users:
- name: %[3]s
  user:
    token: %[4]s
contexts:
- name: kubetest
  context:
    cluster: kubetest
    user: %[3]s
    namespace: default
current-context: kubetest
`, c.URL, c.CAFile, user, token))
	return path
}

// Kubectl runs bin/kubectl against the cluster, with stdin when not nil, and
// returns its standard output and standard error.
func (c *Cluster) Kubectl(ctx context.Context, stdin []byte, args ...string) (stdout, stderr string, err error) {
	cmd := exec.CommandContext(ctx, c.kubectl, append([]string{"--kubeconfig", c.Kubeconfig}, args...)...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	err = cmd.Run()
	if err != nil {
		err = fmt.Errorf("kubectl %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(errOut.String()))
	}
	return out.String(), errOut.String(), err
}

// Logs returns the end of a component's log ("etcd" or "kube-apiserver").
func (c *Cluster) Logs(component string) string {
	data, _ := os.ReadFile(filepath.Join(c.Dir, component+".log"))
	if len(data) > 8192 {
		data = data[len(data)-8192:]
	}
	return string(data)
}

// process is a running component.
type process struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

func (c *Cluster) start(t testing.TB, name, bin string, args ...string) *process {
	t.Helper()
	logf, err := os.Create(filepath.Join(c.Dir, name+".log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		t.Fatalf("starting %s: %v", name, err)
	}
	p := &process{name: name, cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		logf.Close()
		close(p.done)
	}()
	c.procs = append(c.procs, p)
	return p
}

// startReady starts a component on free loopback ports (args makes its
// arguments and the URL to poll from them) and waits until the URL answers
// 200. A component that exits first because a port was taken meanwhile (by
// another test) is started again on other ports.
func (c *Cluster) startReady(t testing.TB, name, bin string, nports int, args func(ports []string) ([]string, string), pki *testenv.PKI, token string) {
	t.Helper()
	for attempt := 1; ; attempt++ {
		ports := make([]string, nports)
		for i := range ports {
			ports[i] = testenv.FreePort(t)
		}
		a, url := args(ports)
		p := c.start(t, name, bin, a...)
		err := c.waitReady(p, url, pki, token)
		if err == nil {
			return
		}
		logs := c.Logs(name)
		if attempt < 3 && strings.Contains(logs, "address already in use") {
			c.procs = c.procs[:len(c.procs)-1]
			continue
		}
		t.Fatalf("%v\n%s", err, logs)
	}
}

// waitReady polls url until it answers 200, the process exits or
// readyTimeout passes.
func (c *Cluster) waitReady(p *process, url string, pki *testenv.PKI, token string) error {
	client := &http.Client{Timeout: 5 * time.Second}
	if pki != nil {
		pool := x509.NewCertPool()
		ca, err := os.ReadFile(pki.CA)
		if err != nil {
			return err
		}
		pool.AppendCertsFromPEM(ca)
		client.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}
	}
	deadline := time.Now().Add(readyTimeout)
	for {
		req, _ := http.NewRequest(http.MethodGet, url, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := client.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-p.done:
			return fmt.Errorf("%s exited before it was ready: %v", p.name, p.err)
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready at %s after %s", p.name, url, readyTimeout)
		}
	}
}

// stop ends the components, newest first: SIGTERM, then SIGKILL after 10s.
func (c *Cluster) stop(t testing.TB) {
	for i := len(c.procs) - 1; i >= 0; i-- {
		p := c.procs[i]
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.done
			t.Logf("%s had to be killed", p.name)
		}
	}
	c.procs = nil
}

func writeServiceAccountKey(t testing.TB, dir string) (keyFile, pubFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	keyFile, pubFile = filepath.Join(dir, "sa.key"), filepath.Join(dir, "sa.pub")
	writeFile(t, keyFile, string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})))
	writeFile(t, pubFile, string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub})))
	return keyFile, pubFile
}

func randomToken(t testing.TB) string {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

func writeFile(t testing.TB, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func mkdir(t testing.TB, parent, name string) string {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(parent, name), 0o700); err != nil {
		t.Fatal(err)
	}
	return name
}

// LoopbackListener listens on a free port of 127.0.0.1, for a webhook the
// API server calls.
func LoopbackListener(t testing.TB) net.Listener {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}
