package admission

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// imageVolume is a volume of an image's files (ImageVolumeSource).
func imageVolume(name, image string) corev1.Volume {
	return corev1.Volume{Name: name, VolumeSource: corev1.VolumeSource{Image: &corev1.ImageVolumeSource{Reference: image}}}
}

// An image volume puts an image's files into a container, which may run
// them: a pod of verified containers mounting an unverified image is
// denied, in pods and workload templates, and on mutation the volume is
// pinned like a container image.
func TestImageVolumes(t *testing.T) {
	reg := newMemRegistry(t)
	key := newTestKey(t)
	good := signedImage(t, reg.host, "team/app", "v1", key.signer(t))
	tools := signedImage(t, reg.host, "team/tools", "v1", key.signer(t))
	img, _, _ := randomImage(t)
	unsigned := push(t, reg.host, "team/unsigned", "v1", img, nil)
	wh := newTestWebhook(t, Source{PolicyFile: keyPolicy(t, t.TempDir(), key)}, WithMutation())

	pod := func(volumeImage string) *corev1.Pod {
		p := podObject(good.tag)
		p.Spec.Volumes = []corev1.Volume{{Name: "scratch", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}, imageVolume("bin", volumeImage)}
		p.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "bin", MountPath: "/usr/local/bin"}}
		return p
	}
	_, resp := post(t, wh, PathValidate, reviewBody(t, podKind, admissionv1.Create, "default", pod(unsigned.tag), nil))
	if resp.Allowed {
		t.Fatal("a pod mounting an unsigned image volume was admitted")
	}
	if msg := message(resp); !strings.Contains(msg, unsigned.tag) || !strings.Contains(msg, `check "signature"`) {
		t.Errorf("denial %q does not name the volume's image and the failed check", msg)
	}
	d := deploymentObject(good.tag)
	d.Spec.Template.Spec.Volumes = []corev1.Volume{imageVolume("bin", unsigned.pinned)}
	if _, resp := post(t, wh, PathValidate, reviewBody(t, deploymentKind, admissionv1.Create, "default", d, nil)); resp.Allowed {
		t.Fatal("a deployment mounting an unsigned image volume was admitted")
	}
	empty := pod("")
	if _, resp := post(t, wh, PathValidate, reviewBody(t, podKind, admissionv1.Create, "default", empty, nil)); resp.Allowed {
		t.Fatal("an image volume without a reference was admitted")
	}

	_, resp = post(t, wh, PathMutate, reviewBody(t, podKind, admissionv1.Create, "default", pod(tools.tag), nil))
	if !resp.Allowed {
		t.Fatalf("a pod mounting a signed image volume was denied: %s", message(resp))
	}
	var ops []jsonPatchOp
	if err := json.Unmarshal(resp.Patch, &ops); err != nil {
		t.Fatal(err)
	}
	want := []jsonPatchOp{
		{Op: "replace", Path: "/spec/containers/0/image", Value: good.pinned},
		{Op: "replace", Path: "/spec/volumes/1/image/reference", Value: tools.pinned},
	}
	if fmt.Sprint(ops) != fmt.Sprint(want) {
		t.Fatalf("patch:\n got %v\nwant %v", ops, want)
	}

	// An UPDATE that swaps the volume's image decides the new one.
	old := pod(tools.pinned)
	if _, resp := post(t, wh, PathValidate, reviewBody(t, podKind, admissionv1.Update, "default", pod(unsigned.tag), old)); resp.Allowed {
		t.Fatal("an UPDATE to an unsigned image volume was admitted")
	}
}

// Re-verification looks at image volumes too, at the digest the kubelet
// reports it mounted.
func TestPodImagesVolumes(t *testing.T) {
	digest := "sha256:" + strings.Repeat("a", 64)
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "app"}}
	p.Spec.Containers = []corev1.Container{{Name: "app", Image: "registry.test/app:1"}}
	p.Spec.Volumes = []corev1.Volume{imageVolume("bin", "registry.test/tools:1"), imageVolume("data", "registry.test/data:2")}
	p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "app", VolumeMounts: []corev1.VolumeMountStatus{
		{Name: "bin", MountPath: "/bin", VolumeStatus: &corev1.VolumeStatus{Image: &corev1.ImageVolumeStatus{ImageRef: "registry.test/tools@" + digest}}},
	}}}
	var got []string
	for _, img := range podImages(p) {
		got = append(got, img.container+"="+img.ref+"|"+img.source+"|"+img.fieldPath)
	}
	want := []string{
		"app=registry.test/app:1||spec.containers{app}",
		"volume bin=registry.test/tools@" + digest + "|" + DigestFromStatus + "|spec.volumes{bin}",
		"volume data=registry.test/data:2||spec.volumes{data}",
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("pod images:\n got %v\nwant %v", got, want)
	}
}
