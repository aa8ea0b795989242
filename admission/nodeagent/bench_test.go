package nodeagent_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/registry"
	"google.golang.org/grpc"
	jsonpatch "gopkg.in/evanphx/json-patch.v4"
	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/twinforge/twinforge/admission"
	"github.com/twinforge/twinforge/admission/nodeagent"
	"github.com/twinforge/twinforge/attest"
)

// benchRuntime answers the CRI calls of a pass from memory: n running
// containers, one per pod, all started from one image. The runtime's side
// is not what is measured; the agent's pass is.
type benchRuntime struct {
	runtimeapi.RuntimeServiceClient
	runtimeapi.ImageServiceClient
	containers []*runtimeapi.Container
	imageID    string
	imageRef   string
}

func (r *benchRuntime) ListContainers(context.Context, *runtimeapi.ListContainersRequest, ...grpc.CallOption) (*runtimeapi.ListContainersResponse, error) {
	return &runtimeapi.ListContainersResponse{Containers: r.containers}, nil
}

func (r *benchRuntime) ContainerStatus(_ context.Context, req *runtimeapi.ContainerStatusRequest, _ ...grpc.CallOption) (*runtimeapi.ContainerStatusResponse, error) {
	return &runtimeapi.ContainerStatusResponse{Status: &runtimeapi.ContainerStatus{
		Id: req.ContainerId, State: runtimeapi.ContainerState_CONTAINER_RUNNING, ImageId: r.imageID, ImageRef: r.imageRef,
	}}, nil
}

func (r *benchRuntime) ImageStatus(context.Context, *runtimeapi.ImageStatusRequest, ...grpc.CallOption) (*runtimeapi.ImageStatusResponse, error) {
	return &runtimeapi.ImageStatusResponse{Image: &runtimeapi.Image{Id: r.imageID, RepoDigests: []string{r.imageRef}}}, nil
}

// BenchmarkPass is one pass of the agent over 500 running containers, each
// with its pod's signed admission record: records verified (Ed25519), the
// running image compared, the recorded digest verified again through the
// webhook's cache. "steady" is a pass where nothing changed (statuses and
// verifications cached); "new-containers" has every container new (each
// status read again; verifications still cached by digest).
func BenchmarkPass(b *testing.B) {
	const n = 500
	reg := httptest.NewServer(registry.New(registry.WithReferrersSupport(true)))
	defer reg.Close()
	host := strings.TrimPrefix(reg.URL, "http://")
	key := newSigningKey(b)
	signer, err := attest.NewKeySigner(key.priv, nil)
	if err != nil {
		b.Fatal(err)
	}
	img := runnable(b, "bench")
	app := pushSigned(b, signer, host, "bench/app", "v1", img)
	dir := b.TempDir()
	policy := filepath.Join(dir, "policy.yaml")
	writeFile(b, policy, fmt.Sprintf("apiVersion: twinforge.dev/v2\nkind: Policy\nidentities:\n  - publicKey: %q\nrequireSignedTimestamp: false\nrequireTransparencyLog: false\n", key.pub))
	src := admission.Source{PolicyFile: policy}
	_, recordKey, _ := ed25519.GenerateKey(rand.Reader)

	// One record from the webhook: it binds the namespace and the
	// container, so it holds for every pod of the namespace running it.
	wh, err := admission.New(src, admission.WithRecordKey(recordKey), admission.WithInsecureLoopbackUnsafe(), admission.WithPollInterval(0))
	if err != nil {
		b.Fatal(err)
	}
	defer wh.Close()
	annotations := admit(b, wh, "bench", app.tag)

	verifier, err := admission.NewVerifier(src, admission.WithInsecureLoopbackUnsafe(), admission.WithPollInterval(0))
	if err != nil {
		b.Fatal(err)
	}
	defer verifier.Close()
	configName, _ := img.ConfigName()
	rt := &benchRuntime{imageID: configName.String(), imageRef: app.pinned}
	var objs []runtime.Object
	for i := range n {
		uid := types.UID(fmt.Sprintf("uid-%d", i))
		pod := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("app-%d", i), Namespace: "bench", UID: uid, Annotations: annotations},
			Spec:       corev1.PodSpec{NodeName: "node-1", Containers: []corev1.Container{{Name: "main", Image: app.pinned}}},
		}
		objs = append(objs, pod)
		rt.containers = append(rt.containers, &runtimeapi.Container{
			Id: fmt.Sprintf("c-%d", i), PodSandboxId: fmt.Sprintf("s-%d", i), State: runtimeapi.ContainerState_CONTAINER_RUNNING,
			Labels: map[string]string{"io.kubernetes.pod.namespace": "bench", "io.kubernetes.pod.name": pod.Name,
				"io.kubernetes.pod.uid": string(uid), "io.kubernetes.container.name": "main"},
		})
	}
	kube := fake.NewClientset(objs...)
	agent, err := nodeagent.New("node-1", nodeagent.CRI{Runtime: rt, Images: rt}, kube, verifier,
		[]ed25519.PublicKey{recordKey.Public().(ed25519.PublicKey)}, nodeagent.WithInterval(time.Hour))
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	check := func(rep *nodeagent.Report, err error) {
		if err != nil || rep.Containers != n || rep.Violations != 0 || rep.Errors != 0 {
			b.Fatalf("pass: %v, %d containers, %d violations, %d errors: %+v", err, rep.Containers, rep.Violations, rep.Errors, rep.Results[:1])
		}
	}
	check(agent.Pass(ctx)) // warm: statuses and verification cached

	b.Run("steady", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			check(agent.Pass(ctx))
		}
		b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/n, "µs/container")
	})
	b.Run("new-containers", func(b *testing.B) {
		b.ReportAllocs()
		gen := 0
		for b.Loop() {
			gen++
			for i, c := range rt.containers {
				c.Id = fmt.Sprintf("c-%d-%d", i, gen)
			}
			check(agent.Pass(ctx))
		}
		b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/n, "µs/container")
	})
}

// admit sends a pod running image through the webhook's /mutate and
// returns the annotations it gets.
func admit(b *testing.B, wh http.Handler, namespace, image string) map[string]string {
	b.Helper()
	pod := corev1.Pod{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"}, ObjectMeta: metav1.ObjectMeta{Name: "app", Namespace: namespace},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "main", Image: image}}}}
	raw, _ := json.Marshal(pod)
	review, _ := json.Marshal(admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Request: &admissionv1.AdmissionRequest{UID: "u1", Kind: metav1.GroupVersionKind{Version: "v1", Kind: "Pod"},
			Namespace: namespace, Name: "app", Operation: admissionv1.Create, Object: runtime.RawExtension{Raw: raw}},
	})
	req := httptest.NewRequest(http.MethodPost, admission.PathMutate, bytes.NewReader(review))
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	wh.ServeHTTP(rec, req)
	var out admissionv1.AdmissionReview
	if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil || out.Response == nil || !out.Response.Allowed {
		b.Fatalf("admission: %v %s", err, rec.Body)
	}
	p, err := jsonpatch.DecodePatch(out.Response.Patch)
	if err != nil {
		b.Fatal(err)
	}
	if raw, err = p.Apply(raw); err != nil {
		b.Fatal(err)
	}
	var admitted corev1.Pod
	if err := json.Unmarshal(raw, &admitted); err != nil {
		b.Fatal(err)
	}
	return admitted.Annotations
}
