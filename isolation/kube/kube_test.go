package kube_test

import (
	"context"
	"crypto/x509"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/twinforge/twinforge/internal/kubetest"
	"github.com/twinforge/twinforge/isolation/kube"
	"github.com/twinforge/twinforge/isolation/workercert"
)

// cluster starts a real API server with a namespace for a pool.
func cluster(t *testing.T) (kube.Cluster, kubernetes.Interface) {
	t.Helper()
	kc := kubetest.Start(t)
	cfg, err := clientcmd.BuildConfigFromFlags("", kc.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "builds"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	return kube.Cluster{Kubeconfig: kc.Kubeconfig, Namespace: "builds"}, cs
}

// Deploy applies a pool whose every worker has a certificate of its own
// from the deployer's CA, is required to be alone on its node, and keeps
// its certificate across deploys; workers beyond the replicas go, unless
// they are lent.
func TestDeploy(t *testing.T) {
	c, cs := cluster(t)
	ctx := context.Background()
	certs := t.TempDir()

	dry, err := kube.Deploy(ctx, c, kube.Options{Replicas: 3}, certs, true)
	if err != nil {
		t.Fatal(err)
	}
	if !dry.NewCA || len(dry.Objects) != 4+3*3 {
		t.Fatalf("dry run: new CA %v, %d objects", dry.NewCA, len(dry.Objects))
	}
	if sets, _ := cs.AppsV1().StatefulSets("builds").List(ctx, metav1.ListOptions{}); len(sets.Items) != 0 {
		t.Fatal("a dry run wrote to the cluster")
	}
	if _, err := workercert.LoadCA(certs); err == nil {
		t.Fatal("a dry run wrote the CA")
	}

	dep, err := kube.Deploy(ctx, c, kube.Options{Replicas: 3, CPU: "500m", Memory: "1Gi"}, certs, false)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := workercert.LoadCA(certs)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca.Cert)
	first := map[string][]byte{}
	for i, name := range dep.Workers {
		if want := kube.WorkerName(kube.DefaultPool, i); name != want {
			t.Errorf("worker %d = %s, want %s", i, name, want)
		}
		sts, err := cs.AppsV1().StatefulSets("builds").Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		pod := sts.Spec.Template.Spec
		anti := pod.Affinity.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution
		if *sts.Spec.Replicas != 1 || len(anti) != 1 || anti[0].TopologyKey != corev1.LabelHostname {
			t.Errorf("%s: replicas %d, anti-affinity %+v", name, *sts.Spec.Replicas, anti)
		}
		if cpu := pod.Containers[0].Resources.Requests[corev1.ResourceCPU]; cpu.String() != "500m" {
			t.Errorf("%s: cpu request %s", name, cpu.String())
		}
		if *pod.AutomountServiceAccountToken || pod.Volumes[2].EmptyDir == nil {
			t.Errorf("%s: service account token mounted or state not an emptyDir", name)
		}
		s, err := cs.CoreV1().Secrets("builds").Get(ctx, name+"-tls", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		cert, err := workercert.ParseCertificate(s.Data["tls.crt"])
		if err != nil {
			t.Fatal(err)
		}
		if _, err := cert.Verify(x509.VerifyOptions{Roots: roots, DNSName: name + ".builds"}); err != nil {
			t.Errorf("%s: certificate does not verify: %v", name, err)
		}
		if got, want := workercert.IdentityOf(cert), workercert.Identity(workercert.Worker, kube.DefaultPool, name); got != want {
			t.Errorf("%s: identity %s, want %s", name, got, want)
		}
		first[name] = s.Data["tls.crt"]
		if _, err := cs.CoordinationV1().Leases("builds").Get(ctx, name, metav1.GetOptions{}); err != nil {
			t.Errorf("%s: no lease: %v", name, err)
		}
	}
	if _, err := cs.RbacV1().Roles("builds").Get(ctx, kube.DefaultPool+"-client", metav1.GetOptions{}); err != nil {
		t.Error(err)
	}

	// Again, with one worker fewer: the others keep their certificates.
	dep, err = kube.Deploy(ctx, c, kube.Options{Replicas: 2}, certs, false)
	if err != nil {
		t.Fatal(err)
	}
	if dep.NewCA || len(dep.Removed) != 1 || dep.Removed[0] != kube.WorkerName(kube.DefaultPool, 2) {
		t.Errorf("second deploy: new CA %v, removed %v", dep.NewCA, dep.Removed)
	}
	for _, name := range dep.Workers {
		s, _ := cs.CoreV1().Secrets("builds").Get(ctx, name+"-tls", metav1.GetOptions{})
		if string(s.Data["tls.crt"]) != string(first[name]) {
			t.Errorf("%s: certificate replaced on redeploy", name)
		}
	}
	if _, err := cs.AppsV1().StatefulSets("builds").Get(ctx, kube.WorkerName(kube.DefaultPool, 2), metav1.GetOptions{}); err == nil {
		t.Error("worker 2 was not removed")
	}

	// A lent worker is not removed.
	running(t, cs, c, 0, "node-a")
	running(t, cs, c, 1, "node-b")
	lent, err := kube.Acquire(ctx, c, 1, kube.Request{Purpose: "test"})
	if err != nil {
		t.Fatal(err)
	}
	if err := kube.Remove(ctx, c); err == nil || !strings.Contains(err.Error(), "lent to") {
		t.Errorf("Remove with a lent worker: %v", err)
	}
	if err := lent[0].Release(); err != nil {
		t.Fatal(err)
	}
	if err := kube.Remove(ctx, c); err != nil {
		t.Fatal(err)
	}
	if sets, _ := cs.AppsV1().StatefulSets("builds").List(ctx, metav1.ListOptions{}); len(sets.Items) != 0 {
		t.Errorf("%d StatefulSets left after Remove", len(sets.Items))
	}
}

// running stands in for the scheduler and the kubelet: worker i's pod,
// bound to node and reported Running and Ready.
func running(t *testing.T, cs kubernetes.Interface, c kube.Cluster, i int, node string) {
	t.Helper()
	ctx := context.Background()
	name := kube.WorkerName(kube.DefaultPool, i)
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name + "-0", Labels: map[string]string{kube.LabelPool: kube.DefaultPool, kube.LabelWorker: name}},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "buildkitd", Image: kube.DefaultImage}}},
	}
	if _, err := cs.CoreV1().Pods(c.Namespace).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := cs.CoreV1().Pods(c.Namespace).Bind(ctx, &corev1.Binding{ObjectMeta: metav1.ObjectMeta{Name: pod.Name}, Target: corev1.ObjectReference{Kind: "Node", Name: node}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	p, err := cs.CoreV1().Pods(c.Namespace).Get(ctx, pod.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	p.Status.Phase = corev1.PodRunning
	p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}
	if _, err := cs.CoreV1().Pods(c.Namespace).UpdateStatus(ctx, p, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// Workers are lent one build at a time, a pair always on two nodes, in
// the order builds started waiting, with the position visible; a wait
// that runs out or is cancelled leaves the queue and says who holds what.
func TestAcquireQueue(t *testing.T) {
	c, cs := cluster(t)
	ctx := context.Background()
	if _, err := kube.Deploy(ctx, c, kube.Options{Replicas: 3}, t.TempDir(), false); err != nil {
		t.Fatal(err)
	}
	running(t, cs, c, 0, "node-a")
	running(t, cs, c, 1, "node-a")
	running(t, cs, c, 2, "node-b")

	pair, err := kube.Acquire(ctx, c, 2, kube.Request{Purpose: "build of a"})
	if err != nil {
		t.Fatal(err)
	}
	if pair[0].Node == pair[1].Node || pair[0].Worker != kube.WorkerName(kube.DefaultPool, 0) || pair[1].Worker != kube.WorkerName(kube.DefaultPool, 2) {
		t.Fatalf("pair: %s on %s, %s on %s", pair[0].Worker, pair[0].Node, pair[1].Worker, pair[1].Node)
	}

	// Only worker 1 is free, and it shares node-a with the held worker 0.
	_, err = kube.Acquire(ctx, c, 2, kube.Request{Purpose: "build of b", ExcludeNodes: []string{"node-b"}})
	if !errors.Is(err, kube.ErrNoWorker) || !strings.Contains(err.Error(), "1 node(s) other than node-b") {
		t.Errorf("pair without node-b: %v, want ErrNoWorker at once", err)
	}
	var statuses []kube.QueueStatus
	_, err = kube.Acquire(ctx, c, 2, kube.Request{Purpose: "build of b", Wait: 3 * time.Second, Progress: func(s kube.QueueStatus) { statuses = append(statuses, s) }})
	if !errors.Is(err, kube.ErrNoWorker) || !strings.Contains(err.Error(), "held by") || !strings.Contains(err.Error(), "build of a") {
		t.Errorf("busy pool: %v, want ErrNoWorker naming the holder", err)
	}
	if len(statuses) == 0 || statuses[0].Position != 1 || statuses[0].Busy != 2 || statuses[0].Ready != 3 {
		t.Errorf("queue status while waiting: %+v", statuses)
	}

	// Two builds wait; the first served is the first that waited.
	var wg sync.WaitGroup
	var mu sync.Mutex
	served := map[string][]*kube.Lent{}
	positions := map[string][]int{}
	cctx, cancelC := context.WithCancel(ctx)
	wait := func(name string, ctx context.Context) {
		defer wg.Done()
		l, err := kube.Acquire(ctx, c, 2, kube.Request{Purpose: name, Wait: time.Minute, Progress: func(s kube.QueueStatus) {
			mu.Lock()
			positions[name] = append(positions[name], s.Position)
			mu.Unlock()
		}})
		mu.Lock()
		defer mu.Unlock()
		if err == nil {
			served[name] = l
		} else if name != "c" || !errors.Is(err, context.Canceled) {
			t.Errorf("waiter %s: %v", name, err)
		}
	}
	wg.Add(1)
	go wait("b", ctx)
	waitFor(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(positions["b"]) > 0 })
	wg.Add(1)
	go wait("c", cctx)
	waitFor(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(positions["c"]) > 0 && positions["c"][0] == 2
	})
	for _, l := range pair {
		if err := l.Release(); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, func() bool { mu.Lock(); defer mu.Unlock(); return served["b"] != nil })
	waitFor(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		p := positions["c"]
		return p[len(p)-1] == 1
	})
	mu.Lock()
	if served["c"] != nil {
		t.Error("c was served while b held the only pair")
	}
	mu.Unlock()
	cancelC()
	wg.Wait()
	queue, err := cs.CoordinationV1().Leases("builds").List(ctx, metav1.ListOptions{LabelSelector: kube.LabelQueue})
	if err != nil {
		t.Fatal(err)
	}
	if len(queue.Items) != 0 {
		t.Errorf("%d queue tickets left after every waiter left", len(queue.Items))
	}
	status, err := kube.List(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	held := 0
	for _, w := range status.Workers {
		if w.Holder != "" {
			held++
			if w.Purpose != "b" {
				t.Errorf("%s held for %q, want b", w.Name, w.Purpose)
			}
		}
	}
	if held != 2 {
		t.Errorf("%d workers held, want b's 2: %+v", held, status.Workers)
	}
	for _, l := range served["b"] {
		_ = l.Release()
	}

	// A holder that stopped renewing loses its worker once the lease ran out.
	l, _ := cs.CoordinationV1().Leases("builds").Get(ctx, kube.WorkerName(kube.DefaultPool, 2), metav1.GetOptions{})
	dead := "crashed-host/1/x"
	secs := int32(1)
	past := metav1.NewMicroTime(time.Now().Add(-time.Minute))
	l.Spec.HolderIdentity, l.Spec.LeaseDurationSeconds, l.Spec.RenewTime = &dead, &secs, &past
	if _, err := cs.CoordinationV1().Leases("builds").Update(ctx, l, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	got, err := kube.Acquire(ctx, c, 2, kube.Request{Purpose: "after a crash", Wait: 10 * time.Second})
	if err != nil {
		t.Fatalf("a lease of a dead holder was not taken over: %v", err)
	}
	for _, l := range got {
		_ = l.Release()
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 30s")
		}
		time.Sleep(50 * time.Millisecond)
	}
}
