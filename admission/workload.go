package admission

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// containerImage is one image of a workload and where it is in the object.
type containerImage struct {
	// Image is the image reference as written.
	Image string
	// Path is the JSON pointer of the image field, for a JSONPatch
	// ("/spec/template/spec/containers/0/image").
	Path string
	// Field and Name say which container (or image volume) it is:
	// "containers", "initContainers", "ephemeralContainers" or "volumes",
	// and its name.
	Field, Name string
}

// workloadKind is a kind the webhook decides, and where its pod spec is.
type workloadKind struct {
	gvk metav1.GroupVersionKind
	// specPath is the JSON pointer of the pod spec.
	specPath string
	// podSpec decodes an object and returns its pod spec.
	podSpec func(raw []byte) (*corev1.PodSpec, error)
}

// workloadKinds are the kinds the webhook decides, with the resource names
// Manifests puts in the webhook rules.
var workloadKinds = []struct {
	workloadKind
	resource string
}{
	{workloadKind{metav1.GroupVersionKind{Group: "", Version: "v1", Kind: "Pod"}, "/spec", decodeSpec(func(o *corev1.Pod) *corev1.PodSpec { return &o.Spec })}, "pods"},
	{workloadKind{metav1.GroupVersionKind{Group: "apps", Version: "v1", Kind: "Deployment"}, "/spec/template/spec", decodeSpec(func(o *appsv1.Deployment) *corev1.PodSpec { return &o.Spec.Template.Spec })}, "deployments"},
	{workloadKind{metav1.GroupVersionKind{Group: "apps", Version: "v1", Kind: "StatefulSet"}, "/spec/template/spec", decodeSpec(func(o *appsv1.StatefulSet) *corev1.PodSpec { return &o.Spec.Template.Spec })}, "statefulsets"},
	{workloadKind{metav1.GroupVersionKind{Group: "apps", Version: "v1", Kind: "DaemonSet"}, "/spec/template/spec", decodeSpec(func(o *appsv1.DaemonSet) *corev1.PodSpec { return &o.Spec.Template.Spec })}, "daemonsets"},
	{workloadKind{metav1.GroupVersionKind{Group: "apps", Version: "v1", Kind: "ReplicaSet"}, "/spec/template/spec", decodeSpec(func(o *appsv1.ReplicaSet) *corev1.PodSpec { return &o.Spec.Template.Spec })}, "replicasets"},
	{workloadKind{metav1.GroupVersionKind{Group: "batch", Version: "v1", Kind: "Job"}, "/spec/template/spec", decodeSpec(func(o *batchv1.Job) *corev1.PodSpec { return &o.Spec.Template.Spec })}, "jobs"},
	{workloadKind{metav1.GroupVersionKind{Group: "batch", Version: "v1", Kind: "CronJob"}, "/spec/jobTemplate/spec/template/spec", decodeSpec(func(o *batchv1.CronJob) *corev1.PodSpec { return &o.Spec.JobTemplate.Spec.Template.Spec })}, "cronjobs"},
}

func decodeSpec[T any](spec func(*T) *corev1.PodSpec) func([]byte) (*corev1.PodSpec, error) {
	return func(raw []byte) (*corev1.PodSpec, error) {
		var obj T
		if err := json.Unmarshal(raw, &obj); err != nil {
			return nil, err
		}
		return spec(&obj), nil
	}
}

// kindFor returns how to read objects of gvk; false for kinds the webhook
// does not decide.
func kindFor(gvk metav1.GroupVersionKind) (workloadKind, bool) {
	for _, k := range workloadKinds {
		if k.gvk == gvk {
			return k.workloadKind, true
		}
	}
	return workloadKind{}, false
}

// images lists every container, init container and ephemeral container
// image of an object of this kind, in that order, then the image of every
// image volume (ImageVolumeSource): mounted into a container, its files run
// like the container's own.
func (k workloadKind) images(raw []byte) ([]containerImage, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, fmt.Errorf("%w: the request carries no %s", errInvalidObject, k.gvk.Kind)
	}
	spec, err := k.podSpec(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: decoding %s: %v", errInvalidObject, k.gvk.Kind, err)
	}
	var out []containerImage
	add := func(field string, i int, name, image string) {
		out = append(out, containerImage{Image: image, Path: k.specPath + "/" + field + "/" + strconv.Itoa(i) + "/image", Field: field, Name: name})
	}
	for i, c := range spec.Containers {
		add("containers", i, c.Name, c.Image)
	}
	for i, c := range spec.InitContainers {
		add("initContainers", i, c.Name, c.Image)
	}
	for i, c := range spec.EphemeralContainers {
		add("ephemeralContainers", i, c.Name, c.Image)
	}
	for i, v := range spec.Volumes {
		if v.Image != nil {
			out = append(out, containerImage{Image: v.Image.Reference, Path: k.specPath + "/volumes/" + strconv.Itoa(i) + "/image/reference", Field: "volumes", Name: v.Name})
		}
	}
	return out, nil
}

// gvkString names a kind for messages: "apps/v1 Deployment", "v1 Pod".
func gvkString(gvk metav1.GroupVersionKind) string {
	return strings.TrimPrefix(gvk.Group+"/"+gvk.Version, "/") + " " + gvk.Kind
}
