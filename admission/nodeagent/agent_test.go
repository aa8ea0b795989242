package nodeagent_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/twinforge/twinforge/admission"
	"github.com/twinforge/twinforge/admission/nodeagent"
	"github.com/twinforge/twinforge/attest"
	"github.com/twinforge/twinforge/attest/verify"
	"github.com/twinforge/twinforge/distribute"
	"github.com/twinforge/twinforge/internal/kubetest"
	"github.com/twinforge/twinforge/internal/offline"
	"github.com/twinforge/twinforge/internal/regtest"
	"github.com/twinforge/twinforge/internal/testenv"
)

// TestNodeAgent is the proof, on a real node (containerd, runc, kubelet):
// a signed image is pushed to a real registry, a Deployment is applied with
// kubectl through the mutating webhook, which pins its image and signs the
// record onto the pod, and the pod runs. The agent, asking containerd over
// the CRI, finds it verified. Then the image behind the running container is
// replaced in containerd's store under the same name and the container is
// restarted through the CRI: the agent reports the mismatch (metric, log,
// Event), and with evict evicts the pod through the Eviction API, which a
// PodDisruptionBudget holds until it is removed. A digest revoked is
// reported on the next pass; pods without a record, or with a forged one,
// are reported too.
func TestNodeAgent(t *testing.T) {
	cluster := kubetest.Start(t) // skips under -short
	node := kubetest.StartNode(t, cluster)
	reg := regtest.StartReferrers(t)
	node.UseRegistry(t, reg.Host)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	kubectl := func(stdin []byte, args ...string) string {
		t.Helper()
		out, _, err := cluster.Kubectl(ctx, stdin, args...)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}

	// Two signed images that run, and one the registry never sees.
	key := newSigningKey(t)
	signer, err := attest.NewKeySigner(key.priv, nil)
	if err != nil {
		t.Fatal(err)
	}
	app := pushSigned(t, signer, reg.Host, "apps/app", "v1", runnable(t, "app"))
	worker := pushSigned(t, signer, reg.Host, "apps/worker", "v1", runnable(t, "worker"))
	intruder := runnable(t, "intruder")

	// The webhook, mutating, signing records, on loopback.
	dir := t.TempDir()
	policy := filepath.Join(dir, "policy.yaml")
	writeFile(t, policy, fmt.Sprintf(`apiVersion: twinforge.dev/v2
kind: Policy
identities:
  - publicKey: %q
requireSignedTimestamp: false
requireTransparencyLog: false
`, key.pub))
	revocations := filepath.Join(dir, "revoked.txt")
	writeFile(t, revocations, "")
	src := admission.Source{PolicyFile: policy, RevocationsFile: revocations}
	_, recordKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	log := testenv.Logger(t)
	wh, err := admission.New(src, admission.WithRecordKey(recordKey), admission.WithInsecureLoopbackUnsafe(), admission.WithLogger(log))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { wh.Close() })
	serveWebhook(t, cluster, wh)
	for _, ns := range []string{"apps", "unwatched", "twinforge-system"} {
		kubectl(nil, "create", "namespace", ns)
	}
	// The objects that install the agent are what the API server accepts.
	var installed bytes.Buffer
	if err := admission.WriteManifests(&installed, admission.ManifestOptions{Namespace: "twinforge-system", CABundle: caOf(t, cluster),
		Image: "registry.example/twinforge@sha256:" + strings.Repeat("a", 64), RecordKey: true, NodeAgent: true, NodeAgentOnMismatch: "evict",
		ReverifyInterval: time.Minute, ImagePullSecrets: true, Revocations: true}); err != nil {
		t.Fatal(err)
	}
	if out := kubectl(installed.Bytes(), "apply", "--dry-run=server", "-f", "-"); !strings.Contains(out, "daemonset.apps/twinforge-admission-node-agent created (server dry run)") {
		t.Errorf("the node agent's manifests: %s", out)
	}

	deploy := func(name, image string) {
		kubectl([]byte(fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata: {name: %[1]s, namespace: apps}
spec:
  replicas: 1
  selector: {matchLabels: {app: %[1]s}}
  template:
    metadata: {labels: {app: %[1]s}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: main
        image: %[2]s
`, name, image)), "apply", "-f", "-")
	}
	deploy("app", app.tag)
	deploy("worker", worker.tag)
	appPod := kubetest.WaitPodRunning(t, cluster, "apps", "app=app")
	kubetest.WaitPodRunning(t, cluster, "apps", "app=worker")
	var pod struct {
		Metadata metav1.ObjectMeta `json:"metadata"`
		Spec     struct {
			Containers []struct{ Image string } `json:"containers"`
		} `json:"spec"`
	}
	if err := json.Unmarshal([]byte(kubectl(nil, "get", "pod", "-n", "apps", appPod, "-o", "json")), &pod); err != nil {
		t.Fatal(err)
	}
	pub := []ed25519.PublicKey{recordKey.Public().(ed25519.PublicKey)}
	rec, err := admission.VerifyRecord(pod.Metadata.Annotations, "apps", pub)
	if err != nil || pod.Spec.Containers[0].Image != app.pinned {
		t.Fatalf("the admitted pod: image %v, record %v", pod.Spec.Containers, err)
	}
	if c, ok := rec.Container("containers", "main"); !ok || c.Digest != app.digest {
		t.Fatalf("record %+v", rec)
	}

	// Pods the webhook does not see (an exempt namespace): one without a
	// record, one with a forged one.
	pause := kubetest.PauseImage
	kubectl([]byte(fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata: {name: bare, namespace: unwatched, labels: {app: bare}}
spec:
  terminationGracePeriodSeconds: 1
  containers: [{name: main, image: %[1]s, imagePullPolicy: Never}]
---
apiVersion: v1
kind: Pod
metadata:
  name: forged
  namespace: unwatched
  labels: {app: forged}
  annotations:
    %[2]s: '{"version":1,"namespace":"unwatched","containers":[]}'
    %[3]s: %[4]q
spec:
  terminationGracePeriodSeconds: 1
  containers: [{name: main, image: %[1]s, imagePullPolicy: Never}]
`, pause, admission.AnnotationRecord, admission.AnnotationRecordSignature, pod.Metadata.Annotations[admission.AnnotationRecordSignature])), "apply", "-f", "-")
	kubetest.WaitPodRunning(t, cluster, "unwatched", "app=bare")
	kubetest.WaitPodRunning(t, cluster, "unwatched", "app=forged")

	// The agent, as the DaemonSet runs it, but as a process of the test.
	verifier, err := admission.NewVerifier(src, admission.WithInsecureLoopbackUnsafe(), admission.WithPollInterval(0), admission.WithLogger(log))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { verifier.Close() })
	cri, conn, err := nodeagent.DialCRI(node.CRIEndpoint)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	kube := kubeClient(t, cluster)
	agent, err := nodeagent.New(node.Name, cri, kube, verifier, pub, nodeagent.WithLogger(log), nodeagent.WithInterval(time.Hour),
		nodeagent.WithExemptNamespaces("kube-system"))
	if err != nil {
		t.Fatal(err)
	}
	rep := pass(t, agent)
	want := map[string]string{"apps/app": nodeagent.ResultVerified, "apps/worker": nodeagent.ResultVerified,
		"unwatched/bare": nodeagent.ResultNoRecord, "unwatched/forged": nodeagent.ResultInvalidRecord}
	checkResults(t, rep, want)
	if rep.Violations != 2 || len(rep.Evicted) != 0 {
		t.Errorf("violations %d, evicted %v", rep.Violations, rep.Evicted)
	}
	kubectl(nil, "delete", "namespace", "unwatched", "--wait=false")

	// Behind the registry's back: another image under the recorded name,
	// and the container restarted through the CRI.
	node.ImportImage(t, app.pinned, intruder)
	intruderID, _ := intruder.ConfigName()
	old := runningContainer(t, node, "apps", appPod)
	if _, err := node.CRI(t).StopContainer(ctx, &runtimeapi.StopContainerRequest{ContainerId: old.Id, Timeout: 0}); err != nil {
		t.Fatal(err)
	}
	restarted := waitContainer(t, node, "apps", appPod, func(c *runtimeapi.Container) bool { return c.Id != old.Id })
	if restarted.ImageRef != intruderID.String() {
		t.Fatalf("the restarted container runs %s, want the intruder %s", restarted.ImageRef, intruderID)
	}
	// The kubelet reports the recorded digest all the same: it takes the
	// name from containerd's store (docs/runtime-verification.md).
	if id := kubectl(nil, "get", "pod", "-n", "apps", appPod, "-o", "jsonpath={.status.containerStatuses[0].imageID}"); !strings.HasSuffix(id, app.digest) {
		t.Errorf("kubelet image ID %s, want the recorded digest %s", id, app.digest)
	}
	want = map[string]string{"apps/app": nodeagent.ResultMismatch, "apps/worker": nodeagent.ResultVerified}
	rep = waitPass(t, agent, want)
	events := kubectl(nil, "get", "events", "-n", "apps", "--field-selector", "involvedObject.name="+appPod+",reason=ImageMismatch", "-o", "jsonpath={.items[*].source.component}")
	if !strings.Contains(events, nodeagent.EventSourceComponent) {
		t.Errorf("no ImageMismatch Event from %s: %q", nodeagent.EventSourceComponent, events)
	}
	metrics := scrape(t, agent)
	if !strings.Contains(metrics, `twinforge_node_agent_violations{container="main",namespace="apps",pod="`+appPod+`",result="mismatch"} 1`) {
		t.Errorf("no violation metric:\n%s", grep(metrics, "twinforge_node_agent_violations"))
	}

	// Evict: a disruption budget holds it, then it goes.
	kubectl([]byte(`apiVersion: policy/v1
kind: PodDisruptionBudget
metadata: {name: app, namespace: apps}
spec:
  minAvailable: 1
  selector: {matchLabels: {app: app}}
`), "apply", "-f", "-")
	waitFor(t, "the budget's status", func() bool {
		return kubectl(nil, "get", "pdb", "-n", "apps", "app", "-o", "jsonpath={.status.currentHealthy}") == "1"
	})
	evicting, err := nodeagent.New(node.Name, cri, kube, verifier, pub, nodeagent.WithLogger(log), nodeagent.WithInterval(time.Hour),
		nodeagent.WithOnViolation(nodeagent.Evict), nodeagent.WithExemptNamespaces("kube-system", "unwatched"))
	if err != nil {
		t.Fatal(err)
	}
	if rep = pass(t, evicting); len(rep.Evicted) != 0 {
		t.Fatalf("evicted %v despite the disruption budget", rep.Evicted)
	}
	if !strings.Contains(scrape(t, evicting), `twinforge_node_agent_evictions_total{result="refused"} 1`) {
		t.Errorf("the refused eviction is not counted:\n%s", grep(scrape(t, evicting), "evictions"))
	}
	kubectl(nil, "delete", "pdb", "-n", "apps", "app")
	if rep = pass(t, evicting); !slices.Equal(rep.Evicted, []string{"apps/" + appPod}) {
		t.Fatalf("evicted %v, want apps/%s", rep.Evicted, appPod)
	}
	waitFor(t, "the evicted pod to go", func() bool {
		out, _, err := cluster.Kubectl(ctx, nil, "get", "pod", "-n", "apps", appPod, "-o", "name", "--ignore-not-found")
		return err == nil && out == ""
	})

	// Revoked: reported on the next pass.
	kubectl(nil, "scale", "deployment", "-n", "apps", "app", "--replicas=0")
	writeFile(t, revocations, worker.digest+"\n")
	if err := verifier.Reload(); err != nil {
		t.Fatal(err)
	}
	rep = waitPass(t, agent, map[string]string{"apps/worker": nodeagent.ResultRevoked})
	for _, r := range rep.Results {
		if r.Result == nodeagent.ResultRevoked && !strings.Contains(r.Reason, worker.digest) {
			t.Errorf("revoked, but the reason does not name the digest: %s", r.Reason)
		}
	}

	// The API server unreachable: the pass fails and says so, nothing is
	// evicted, the violations reported stay.
	token := filepath.Join(t.TempDir(), "token")
	writeFile(t, token, cluster.Token)
	dead, err := admission.NewKubernetesClient(admission.KubeConfig{URL: "https://127.0.0.1:1", TokenFile: token, CAFile: cluster.CAFile}, "twinforge-test")
	if err != nil {
		t.Fatal(err)
	}
	cut, err := nodeagent.New(node.Name, cri, dead, verifier, pub, nodeagent.WithOnError(nodeagent.Evict), nodeagent.WithOnViolation(nodeagent.Evict))
	if err != nil {
		t.Fatal(err)
	}
	if rep, err := cut.Pass(ctx); err == nil || !strings.Contains(rep.Error, "Kubernetes API") || len(rep.Evicted) != 0 {
		t.Errorf("pass without the API server: %v %+v", err, rep)
	}
}

// TestNodeAgentFaults: a runtime or an API server that does not answer
// fails the pass, which says so, and the agent keeps running; nothing is
// evicted.
func TestNodeAgentFaults(t *testing.T) {
	cluster := kubetest.Start(t)
	dir := t.TempDir()
	policy := filepath.Join(dir, "policy.yaml")
	key := newSigningKey(t)
	writeFile(t, policy, fmt.Sprintf("apiVersion: twinforge.dev/v2\nkind: Policy\nidentities:\n  - publicKey: %q\nrequireSignedTimestamp: false\nrequireTransparencyLog: false\n", key.pub))
	verifier, err := admission.NewVerifier(admission.Source{PolicyFile: policy}, admission.WithPollInterval(0))
	if err != nil {
		t.Fatal(err)
	}
	defer verifier.Close()
	_, recordKey, _ := ed25519.GenerateKey(rand.Reader)
	pub := []ed25519.PublicKey{recordKey.Public().(ed25519.PublicKey)}

	// No runtime at the socket.
	cri, conn, err := nodeagent.DialCRI("unix://" + filepath.Join(dir, "no.sock"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	agent, err := nodeagent.New("n1", cri, kubeClient(t, cluster), verifier, pub, nodeagent.WithOnError(nodeagent.Evict), nodeagent.WithInterval(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rep, err := agent.Pass(ctx)
	if err == nil || !strings.Contains(rep.Error, "CRI") || len(rep.Evicted) != 0 {
		t.Fatalf("pass without a runtime: %v %+v", err, rep)
	}
	// Run keeps going through failed passes until it is stopped.
	rctx, rcancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer rcancel()
	if err := agent.Run(rctx); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if m := scrape(t, agent); !strings.Contains(m, `twinforge_node_agent_passes_total{result="error",trigger="retry"}`) {
		t.Errorf("no retried pass counted:\n%s", grep(m, "passes_total"))
	}

	if _, _, err := nodeagent.DialCRI("tcp://127.0.0.1:1"); err == nil {
		t.Error("a tcp CRI endpoint was accepted")
	}
}

func pass(t *testing.T, a nodeagent.Agent) *nodeagent.Report {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	rep, err := a.Pass(ctx)
	if err != nil {
		t.Fatalf("pass: %v", err)
	}
	return rep
}

// waitPass runs passes until the results of the pods in want are those.
func waitPass(t *testing.T, a nodeagent.Agent, want map[string]string) *nodeagent.Report {
	t.Helper()
	var rep *nodeagent.Report
	deadline := time.Now().Add(2 * time.Minute)
	for {
		rep = pass(t, a)
		if resultsMatch(rep, want) == "" {
			return rep
		}
		if time.Now().After(deadline) {
			t.Fatalf("results: %s", resultsMatch(rep, want))
		}
		time.Sleep(500 * time.Millisecond)
	}
}

func checkResults(t *testing.T, rep *nodeagent.Report, want map[string]string) {
	t.Helper()
	if diff := resultsMatch(rep, want); diff != "" {
		t.Fatalf("results: %s", diff)
	}
}

// resultsMatch compares the results of the pods in want, by their app
// label's prefix of the pod name ("apps/app" matches "apps/app-xyz").
func resultsMatch(rep *nodeagent.Report, want map[string]string) string {
	var diffs []string
	for key, result := range want {
		ns, prefix, _ := strings.Cut(key, "/")
		found := false
		for _, r := range rep.Results {
			if r.Namespace == ns && (r.Pod == prefix || strings.HasPrefix(r.Pod, prefix+"-")) {
				found = true
				if r.Result != result {
					diffs = append(diffs, fmt.Sprintf("%s/%s: %s (%s), want %s", r.Namespace, r.Pod, r.Result, r.Reason, result))
				}
			}
		}
		if !found {
			diffs = append(diffs, key+": not checked")
		}
	}
	slices.Sort(diffs)
	return strings.Join(diffs, "; ")
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s: timed out", what)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// runningContainer is the running container of a pod, through the CRI.
func runningContainer(t *testing.T, node *kubetest.Node, namespace, pod string) *runtimeapi.Container {
	t.Helper()
	return waitContainer(t, node, namespace, pod, func(*runtimeapi.Container) bool { return true })
}

func waitContainer(t *testing.T, node *kubetest.Node, namespace, pod string, ok func(*runtimeapi.Container) bool) *runtimeapi.Container {
	t.Helper()
	cri := node.CRI(t)
	deadline := time.Now().Add(2 * time.Minute)
	for {
		list, err := cri.ListContainers(context.Background(), &runtimeapi.ListContainersRequest{Filter: &runtimeapi.ContainerFilter{
			State:         &runtimeapi.ContainerStateValue{State: runtimeapi.ContainerState_CONTAINER_RUNNING},
			LabelSelector: map[string]string{"io.kubernetes.pod.namespace": namespace, "io.kubernetes.pod.name": pod},
		}})
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range list.Containers {
			if ok(c) {
				return c
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no such running container of %s/%s\n%s", namespace, pod, node.Logs("kubelet"))
		}
		time.Sleep(250 * time.Millisecond)
	}
}

func scrape(t *testing.T, a nodeagent.Agent) string {
	t.Helper()
	rec := httptest.NewRecorder()
	a.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	return rec.Body.String()
}

func grep(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// kubeClient is a client-go clientset of the cluster's administrator.
func kubeClient(t *testing.T, c *kubetest.Cluster) kubernetes.Interface {
	t.Helper()
	token := filepath.Join(t.TempDir(), "token")
	writeFile(t, token, c.Token)
	cs, err := admission.NewKubernetesClient(admission.KubeConfig{URL: c.URL, TokenFile: token, CAFile: c.CAFile}, "twinforge-test")
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

// serveWebhook serves wh on loopback and registers it with the cluster,
// mutating, the namespace unwatched exempt.
func serveWebhook(t *testing.T, c *kubetest.Cluster, wh admission.Webhook) {
	t.Helper()
	pki := testenv.NewPKI(t, t.TempDir())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() {
		served <- admission.Serve(ctx, ln, wh, admission.ServeConfig{CertFile: pki.ServerCert, KeyFile: pki.ServerKey, Logger: testenv.Logger(t)})
	}()
	t.Cleanup(func() {
		stop()
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	ca, err := os.ReadFile(pki.CA)
	if err != nil {
		t.Fatal(err)
	}
	var m bytes.Buffer
	if err := admission.WriteManifests(&m, admission.ManifestOptions{
		Namespace: "twinforge-system", CABundle: ca, ExemptNamespaces: []string{"unwatched", "kube-system"},
		URL: "https://" + ln.Addr().String() + admission.PathValidate,
	}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.Kubectl(context.Background(), m.Bytes(), "apply", "-f", "-"); err != nil {
		t.Fatalf("registering the webhook: %v\n%s", err, m.String())
	}
}

// runnable is a busybox image that prints what and sleeps: each what is
// another image.
func runnable(t testing.TB, what string) v1.Image {
	t.Helper()
	base, err := offline.Base(offline.DefaultBusybox)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := base.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cfg := cf.Config
	cfg.Entrypoint, cfg.Cmd = []string{"/bin/sh", "-c", "echo " + what + "; exec sleep 3600"}, nil
	img, err := mutate.Config(base, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

type signingKey struct{ priv, pub string }

func newSigningKey(t testing.TB) signingKey {
	t.Helper()
	dir := t.TempDir()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKCS8PrivateKey(k)
	pub, _ := x509.MarshalPKIXPublicKey(&k.PublicKey)
	s := signingKey{priv: filepath.Join(dir, "key.pem"), pub: filepath.Join(dir, "key.pub")}
	writeFile(t, s.priv, string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})))
	writeFile(t, s.pub, string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub})))
	return s
}

type pushed struct{ tag, digest, pinned string }

// pushSigned pushes img with a reproduced provenance and an image
// signature, as twinforge build --push attaches them.
func pushSigned(t testing.TB, s attest.Signer, host, repo, tag string, img v1.Image) pushed {
	t.Helper()
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	manifest, err := img.RawManifest()
	if err != nil {
		t.Fatal(err)
	}
	lockData, err := os.ReadFile(filepath.Join("..", "testdata", "twinforge.lock"))
	if err != nil {
		t.Fatal(err)
	}
	lock, err := attest.ParseLock(lockData)
	if err != nil {
		t.Fatal(err)
	}
	imageName := host + "/" + repo
	info := attest.BuildInfo{
		Subject: attest.Subject{Name: imageName, Digest: d.String()}, Lock: lock, ContextPath: ".",
		Build:     attest.Builder{BuildKitVersion: "v0.34.2", Snapshotter: "overlayfs"},
		StartedOn: time.Now().Add(-time.Minute), FinishedOn: time.Now(),
		Rebuild: &attest.Rebuild{Digest: d.String(), Builder: attest.Builder{BuildKitVersion: "v0.34.2", Snapshotter: "native"}},
	}
	st, err := attest.Provenance(info)
	if err != nil {
		t.Fatal(err)
	}
	statement, err := attest.MarshalStatement(st)
	if err != nil {
		t.Fatal(err)
	}
	bs, err := attest.SignBuild(context.Background(), s, statement, manifest)
	if err != nil {
		t.Fatal(err)
	}
	prov, _ := json.Marshal(bs.Provenance)
	sig, _ := json.Marshal(bs.Image)
	ref, err := name.ParseReference(imageName + ":" + tag)
	if err != nil {
		t.Fatal(err)
	}
	res, err := distribute.Push(context.Background(), img, ref, []distribute.Artifact{
		{ArtifactType: verify.BundleArtifactType, Data: prov, Annotations: map[string]string{
			verify.AnnotationBundleContent: verify.ContentDSSE, verify.AnnotationPredicateType: verify.PredicateSLSAProvenance1}},
		{ArtifactType: verify.BundleArtifactType, Data: sig, Annotations: map[string]string{
			verify.AnnotationBundleContent: verify.ContentMessageSignature}},
	}, distribute.WithInsecureLoopbackUnsafe())
	if err != nil {
		t.Fatal(err)
	}
	return pushed{tag: imageName + ":" + tag, digest: res.Digest.String(), pinned: imageName + "@" + res.Digest.String()}
}

func writeFile(t testing.TB, path, content string) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func caOf(t *testing.T, c *kubetest.Cluster) []byte {
	t.Helper()
	ca, err := os.ReadFile(c.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	return ca
}
