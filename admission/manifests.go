package admission

import (
	"bytes"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
)

// Names Manifests gives the webhooks (webhook names must be fully
// qualified) and the default object name.
const (
	ValidatingWebhookName = "verify.admission.twinforge.dev"
	MutatingWebhookName   = "pin.admission.twinforge.dev"
	DefaultName           = "twinforge-admission"
	// WebhookTimeoutSeconds is the webhooks' timeoutSeconds, the API
	// server's maximum; the webhook decides within DefaultDeadline.
	WebhookTimeoutSeconds = 10
)

// Paths of the files inside the Deployment's pod.
const (
	manifestConfigDir = "/etc/twinforge/config"
	manifestTLSDir    = "/etc/twinforge/tls"
	manifestPort      = 8443
	manifestAgentPort = 9102
	manifestRecordDir = "/etc/twinforge/record"
)

// ManifestOptions describe the objects Manifests makes.
type ManifestOptions struct {
	// Namespace is where the webhook runs; it is exempt from the webhook,
	// so that the webhook's own pods can start. Required.
	Namespace string
	// Name names the Deployment, Service, configurations and the
	// ConfigMap and Secret the Deployment mounts. The default is
	// DefaultName.
	Name string
	// CABundle is the PEM of the CA that signed the webhook's serving
	// certificate. Required: given, or read from CABundleFile.
	CABundle []byte
	// CABundleFile, when set, is the PEM file CABundle is read from (the
	// --ca-bundle flag).
	CABundleFile string
	// URL, when set, is where the API server reaches a webhook running
	// outside the cluster (https://HOST:PORT; a trailing /validate is
	// accepted): the configurations use clientConfig.url and no Deployment
	// or Service is made. By default the webhook runs in the cluster behind
	// the Service.
	URL string
	// ValidatingOnly leaves out the MutatingWebhookConfiguration (/mutate,
	// which pins every image named by tag to the digest verified) and runs
	// the webhook with --mutating=false. Nothing then pins tags: the
	// webhook denies images named by tag unless their tenant sets
	// allowTags, and WriteManifests says so at the top of its output. By
	// default both configurations are made.
	ValidatingOnly bool
	// Image is the twinforge image the Deployment runs. Required without
	// URL.
	Image string
	// Replicas of the Deployment, 1 to 100. nil is the default, 2; a
	// pointer, so that a 0 given is refused rather than taken for the
	// default.
	Replicas *int
	// Revocations runs the webhook with the revocation list
	// revocations.txt of the ConfigMap.
	Revocations bool
	// ExemptNamespaces are namespaces the webhooks do not see, besides
	// Namespace. None by default: every exemption is a way around the
	// policy.
	ExemptNamespaces []string
	// ReverifyInterval, when positive, runs the webhook with
	// --reverify-interval (WithReverification: the images of running pods
	// are verified again; Namespace and ExemptNamespaces are exempt from it
	// too) and adds the ServiceAccount <name>, the ClusterRole and
	// ClusterRoleBinding <name>-reverify that let it list and watch pods
	// and create, get and patch Events, which the Deployment runs as. With
	// URL, the webhook outside the cluster authenticates with a token of
	// that ServiceAccount (kubectl create token). 0, the default, adds
	// nothing: the webhook's pods get no service account token.
	ReverifyInterval time.Duration
	// RecordKey runs the webhook with --record-key: every pod it admits
	// gets a signed admission Record. The Deployment mounts the Secret
	// <name>-record-key (record.key, the Ed25519 private key, PEM), which
	// the operator provides; the public key goes into the ConfigMap as
	// record.pub for the node agents. It needs the mutating webhook.
	RecordKey bool
	// ImagePullSecrets runs the webhook (and the node agents) with
	// --image-pull-secrets and lets their ServiceAccounts get Secrets and
	// ServiceAccounts in every namespace (the ClusterRole
	// <name>-pull-secrets).
	ImagePullSecrets bool
	// NodeAgent adds the DaemonSet <name>-node-agent, which runs
	// `twinforge node-agent` on every node against containerd's socket
	// (NodeAgentCRISocket), as the ServiceAccount <name>-node-agent, bound to
	// the ClusterRole of that name: get, list and watch pods, create
	// evictions, create, get and patch Events. It needs RecordKey and Image.
	NodeAgent bool
	// NodeAgentOnMismatch is the agent's --on-mismatch, "alert" (the
	// default) or "evict"; NodeAgentInterval its --interval (default 1m).
	NodeAgentOnMismatch string
	NodeAgentInterval   time.Duration
	// NodeAgentCRISocket is the path of the runtime's CRI socket on the
	// nodes. The default is /run/containerd/containerd.sock.
	NodeAgentCRISocket string
}

// load reads CABundleFile and checks Replicas, the settings of
// `twinforge admission manifests` that are not the objects': their errors
// name the flag, as the command prints them.
func (o *ManifestOptions) load() error {
	if o.CABundleFile != "" {
		b, err := os.ReadFile(o.CABundleFile)
		if err != nil {
			return fmt.Errorf("--ca-bundle: %w", err)
		}
		o.CABundle = b
	}
	if o.Replicas != nil && (*o.Replicas < 1 || *o.Replicas > 100) {
		return fmt.Errorf("--replicas %d: want 1 to 100", *o.Replicas)
	}
	return nil
}

func (o *ManifestOptions) validate() error {
	if o.Name == "" {
		o.Name = DefaultName
	}
	if o.Replicas == nil {
		o.Replicas = ptr(2)
	}
	for _, ns := range append([]string{o.Namespace}, o.ExemptNamespaces...) {
		if errs := validation.IsDNS1123Label(ns); len(errs) > 0 {
			return fmt.Errorf("namespace %q: %s", ns, strings.Join(errs, "; "))
		}
	}
	if errs := validation.IsDNS1123Label(o.Name); len(errs) > 0 {
		return fmt.Errorf("name %q: %s", o.Name, strings.Join(errs, "; "))
	}
	if err := checkCABundle(o.CABundle); err != nil {
		return err
	}
	if o.NodeAgentOnMismatch == "" {
		o.NodeAgentOnMismatch = "alert"
	}
	if o.NodeAgentInterval == 0 {
		o.NodeAgentInterval = time.Minute
	}
	if o.NodeAgentCRISocket == "" {
		o.NodeAgentCRISocket = "/run/containerd/containerd.sock"
	}
	switch {
	case o.NodeAgentOnMismatch != "alert" && o.NodeAgentOnMismatch != "evict":
		return fmt.Errorf("node agent --on-mismatch %q: want alert or evict", o.NodeAgentOnMismatch)
	case o.NodeAgentInterval < 0:
		return fmt.Errorf("node agent interval %s: want more than 0", o.NodeAgentInterval)
	case o.RecordKey && o.ValidatingOnly:
		return errors.New("admission records are written by the mutating webhook: not with validating only")
	case o.NodeAgent && !o.RecordKey:
		return errors.New("the node agent compares what runs with the admission records: it needs the record key")
	case o.NodeAgent && o.Image == "":
		return errors.New("the image of the node agent's DaemonSet is required")
	case o.NodeAgent && !strings.HasPrefix(o.NodeAgentCRISocket, "/"):
		return fmt.Errorf("CRI socket %q: want an absolute path", o.NodeAgentCRISocket)
	}
	if o.ReverifyInterval < 0 {
		return fmt.Errorf("re-verification interval %s: want 0 (off) or more", o.ReverifyInterval)
	}
	if o.URL != "" {
		u, err := url.Parse(o.URL)
		if err != nil || u.Scheme != "https" || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
			return fmt.Errorf("webhook URL %q: want https://HOST:PORT", o.URL)
		}
		return nil
	}
	if o.Image == "" {
		return errors.New("the image of the webhook's Deployment is required (or a URL for a webhook outside the cluster)")
	}
	return nil
}

func checkCABundle(data []byte) error {
	n := 0
	for rest := data; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		if _, err := x509.ParseCertificate(b.Bytes); err != nil {
			return fmt.Errorf("CA bundle: %w", err)
		}
		n++
	}
	if n == 0 {
		return errors.New("CA bundle: no PEM certificate")
	}
	return nil
}

// Manifests returns the objects that install the webhook: the
// ValidatingWebhookConfiguration, unless ValidatingOnly the
// MutatingWebhookConfiguration, with ReverifyInterval the ServiceAccount,
// ClusterRole and ClusterRoleBinding of re-verification, and without URL the
// Deployment and Service.
// Both configurations fail closed (failurePolicy Fail), time out after
// WebhookTimeoutSeconds, have no side effects, take AdmissionReview v1 and
// match the CREATE and UPDATE of pods (ephemeral containers included) and
// of the workloads with pod templates.
//
// The Deployment mounts the ConfigMap <name>-config (config.yaml, the
// policies it names, trusted_root.json and, with Revocations,
// revocations.txt) and the kubernetes.io/tls Secret <name>-tls, which the
// operator provides.
func Manifests(o ManifestOptions) ([]runtime.Object, error) {
	if err := o.load(); err != nil {
		return nil, err
	}
	if err := o.validate(); err != nil {
		return nil, fmt.Errorf("webhook manifests: %w", err)
	}
	var objs []runtime.Object
	objs = append(objs, &admissionregistrationv1.ValidatingWebhookConfiguration{
		TypeMeta:   metav1.TypeMeta{APIVersion: "admissionregistration.k8s.io/v1", Kind: "ValidatingWebhookConfiguration"},
		ObjectMeta: o.meta(),
		Webhooks: []admissionregistrationv1.ValidatingWebhook{{
			Name:                    ValidatingWebhookName,
			ClientConfig:            o.clientConfig(PathValidate),
			Rules:                   webhookRules(),
			FailurePolicy:           ptr(admissionregistrationv1.Fail),
			MatchPolicy:             ptr(admissionregistrationv1.Equivalent),
			NamespaceSelector:       o.namespaceSelector(),
			SideEffects:             ptr(admissionregistrationv1.SideEffectClassNone),
			TimeoutSeconds:          ptr(int32(WebhookTimeoutSeconds)),
			AdmissionReviewVersions: []string{"v1"},
		}},
	})
	if !o.ValidatingOnly {
		objs = append(objs, &admissionregistrationv1.MutatingWebhookConfiguration{
			TypeMeta:   metav1.TypeMeta{APIVersion: "admissionregistration.k8s.io/v1", Kind: "MutatingWebhookConfiguration"},
			ObjectMeta: o.meta(),
			Webhooks: []admissionregistrationv1.MutatingWebhook{{
				Name:                    MutatingWebhookName,
				ClientConfig:            o.clientConfig(PathMutate),
				Rules:                   webhookRules(),
				FailurePolicy:           ptr(admissionregistrationv1.Fail),
				MatchPolicy:             ptr(admissionregistrationv1.Equivalent),
				NamespaceSelector:       o.namespaceSelector(),
				SideEffects:             ptr(admissionregistrationv1.SideEffectClassNone),
				TimeoutSeconds:          ptr(int32(WebhookTimeoutSeconds)),
				AdmissionReviewVersions: []string{"v1"},
				// Another mutating webhook may change an image after this one.
				ReinvocationPolicy: ptr(admissionregistrationv1.IfNeededReinvocationPolicy),
			}},
		})
	}
	if o.ReverifyInterval > 0 || o.ImagePullSecrets {
		objs = append(objs, o.serviceAccount(o.Name))
	}
	if o.ReverifyInterval > 0 {
		objs = append(objs, o.reverifyRBAC()...)
		if o.leaderElect() {
			objs = append(objs, o.leaseRBAC()...)
		}
	}
	if o.ImagePullSecrets {
		objs = append(objs, o.pullSecretsRBAC()...)
	}
	if o.URL == "" {
		objs = append(objs, o.deployment(), o.service())
	}
	if o.NodeAgent {
		objs = append(objs, o.nodeAgentObjects()...)
	}
	return objs, nil
}

// leaderElect reports whether the replicas elect their re-verifier.
func (o ManifestOptions) leaderElect() bool { return o.URL == "" && *o.Replicas > 1 }

func (o ManifestOptions) serviceAccount(name string) runtime.Object {
	return &corev1.ServiceAccount{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ServiceAccount"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: o.Namespace, Labels: o.labels()},
	}
}

// clusterRole is a ClusterRole and its binding to a ServiceAccount of the
// namespace.
func (o ManifestOptions) clusterRole(role, account string, rules ...rbacv1.PolicyRule) []runtime.Object {
	return []runtime.Object{
		&rbacv1.ClusterRole{
			TypeMeta:   metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "ClusterRole"},
			ObjectMeta: metav1.ObjectMeta{Name: role, Labels: o.labels()},
			Rules:      rules,
		},
		&rbacv1.ClusterRoleBinding{
			TypeMeta:   metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "ClusterRoleBinding"},
			ObjectMeta: metav1.ObjectMeta{Name: role, Labels: o.labels()},
			RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: role},
			Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: o.Namespace, Name: account}},
		},
	}
}

// leaseRBAC lets the webhook's replicas hold the re-verification Lease, in
// their own namespace only.
func (o ManifestOptions) leaseRBAC() []runtime.Object {
	role := o.Name + "-reverify-lease"
	return []runtime.Object{
		&rbacv1.Role{
			TypeMeta:   metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "Role"},
			ObjectMeta: metav1.ObjectMeta{Name: role, Namespace: o.Namespace, Labels: o.labels()},
			Rules: []rbacv1.PolicyRule{
				{APIGroups: []string{"coordination.k8s.io"}, Resources: []string{"leases"}, Verbs: []string{"create"}},
				{APIGroups: []string{"coordination.k8s.io"}, Resources: []string{"leases"}, ResourceNames: []string{o.Name + "-reverify"}, Verbs: []string{"get", "update"}},
			},
		},
		&rbacv1.RoleBinding{
			TypeMeta:   metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "RoleBinding"},
			ObjectMeta: metav1.ObjectMeta{Name: role, Namespace: o.Namespace, Labels: o.labels()},
			RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: role},
			Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: o.Namespace, Name: o.Name}},
		},
	}
}

// pullSecretRules read pods' pull secrets, as the kubelet does.
var pullSecretRules = []rbacv1.PolicyRule{
	{APIGroups: []string{""}, Resources: []string{"secrets", "serviceaccounts"}, Verbs: []string{"get"}},
}

func (o ManifestOptions) pullSecretsRBAC() []runtime.Object {
	return o.clusterRole(o.Name+"-pull-secrets", o.Name, pullSecretRules...)
}

// nodeAgentObjects are the node agent's ServiceAccount, ClusterRole,
// binding and DaemonSet.
func (o ManifestOptions) nodeAgentObjects() []runtime.Object {
	name := o.Name + "-node-agent"
	rules := []rbacv1.PolicyRule{
		{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"get", "list", "watch"}},
		{APIGroups: []string{""}, Resources: []string{"pods/eviction"}, Verbs: []string{"create"}},
		{APIGroups: []string{""}, Resources: []string{"events"}, Verbs: []string{"create", "get", "patch"}},
	}
	if o.ImagePullSecrets {
		rules = append(rules, pullSecretRules...)
	}
	objs := []runtime.Object{o.serviceAccount(name)}
	objs = append(objs, o.clusterRole(name, name, rules...)...)
	args := []string{
		"node-agent",
		"--node=$(NODE_NAME)",
		"--cri=unix://" + o.NodeAgentCRISocket,
		"--policy-config=" + manifestConfigDir + "/config.yaml",
		"--trusted-root=" + manifestConfigDir + "/trusted_root.json",
		"--record-public-key=" + manifestConfigDir + "/record.pub",
		"--interval=" + o.NodeAgentInterval.String(),
		"--on-mismatch=" + o.NodeAgentOnMismatch,
		fmt.Sprintf("--metrics-addr=:%d", manifestAgentPort),
	}
	if o.Revocations {
		args = append(args, "--revocations="+manifestConfigDir+"/revocations.txt")
	}
	if o.ImagePullSecrets {
		args = append(args, "--image-pull-secrets")
	}
	for _, ns := range append([]string{o.Namespace}, o.ExemptNamespaces...) {
		args = append(args, "--exempt-namespace="+ns)
	}
	labels := map[string]string{"app.kubernetes.io/name": name, "app.kubernetes.io/part-of": "twinforge"}
	objs = append(objs, &appsv1.DaemonSet{
		TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "DaemonSet"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: o.Namespace, Labels: labels},
		Spec: appsv1.DaemonSetSpec{
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app.kubernetes.io/name": name}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					ServiceAccountName:           name,
					AutomountServiceAccountToken: ptr(true),
					// Every node, tainted or not: what runs there is checked.
					Tolerations: []corev1.Toleration{{Operator: corev1.TolerationOpExists}},
					SecurityContext: &corev1.PodSecurityContext{
						// The runtime's socket belongs to root.
						RunAsUser:      ptr(int64(0)),
						SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
					},
					Containers: []corev1.Container{{
						Name:  "node-agent",
						Image: o.Image,
						Args:  args,
						Env: []corev1.EnvVar{{Name: "NODE_NAME", ValueFrom: &corev1.EnvVarSource{
							FieldRef: &corev1.ObjectFieldSelector{FieldPath: "spec.nodeName"},
						}}},
						Ports: []corev1.ContainerPort{{Name: "metrics", ContainerPort: manifestAgentPort, Protocol: corev1.ProtocolTCP}},
						LivenessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{
							Path: "/healthz", Port: intstr.FromString("metrics"),
						}}, PeriodSeconds: 30},
						Resources: corev1.ResourceRequirements{
							Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("20m"), corev1.ResourceMemory: resource.MustParse("64Mi")},
							Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("256Mi")},
						},
						SecurityContext: &corev1.SecurityContext{
							AllowPrivilegeEscalation: ptr(false),
							ReadOnlyRootFilesystem:   ptr(true),
							Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
						},
						VolumeMounts: []corev1.VolumeMount{
							{Name: "config", MountPath: manifestConfigDir, ReadOnly: true},
							{Name: "cri", MountPath: o.NodeAgentCRISocket},
						},
					}},
					Volumes: []corev1.Volume{
						{Name: "config", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
							LocalObjectReference: corev1.LocalObjectReference{Name: o.Name + "-config"},
						}}},
						{Name: "cri", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{
							Path: o.NodeAgentCRISocket, Type: ptr(corev1.HostPathSocket),
						}}},
					},
				},
			},
		},
	})
	return objs
}

// reverifyRBAC is the ServiceAccount re-verification runs as and what it
// may do: list and watch pods, record Events about them. Nothing else: it
// reads no Secrets and changes no workload.
func (o ManifestOptions) reverifyRBAC() []runtime.Object {
	role := o.Name + "-reverify"
	return []runtime.Object{
		&rbacv1.ClusterRole{
			TypeMeta:   metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "ClusterRole"},
			ObjectMeta: metav1.ObjectMeta{Name: role, Labels: o.labels()},
			Rules: []rbacv1.PolicyRule{
				{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"list", "watch"}},
				{APIGroups: []string{""}, Resources: []string{"events"}, Verbs: []string{"create", "get", "patch"}},
			},
		},
		&rbacv1.ClusterRoleBinding{
			TypeMeta:   metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "ClusterRoleBinding"},
			ObjectMeta: metav1.ObjectMeta{Name: role, Labels: o.labels()},
			RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: role},
			Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: o.Namespace, Name: o.Name}},
		},
	}
}

// validatingOnlyNote heads the manifests of a webhook without mutation.
const validatingOnlyNote = `# Validating only: no mutating webhook pins images named by tag to the digest
# verified, so the kubelet could run another digest than the one admitted (a
# registry answering it differently, a node's stale copy of the tag). The
# webhook therefore denies images named by tag, unless their tenant sets
# allowTags: true. Leave mutation on (the default) to pin tags instead.
`

// WriteManifests writes Manifests as a YAML stream.
func WriteManifests(w io.Writer, o ManifestOptions) error {
	objs, err := Manifests(o)
	if err != nil {
		return err
	}
	if o.ValidatingOnly {
		if _, err := io.WriteString(w, validatingOnlyNote); err != nil {
			return err
		}
	}
	for i, obj := range objs {
		data, err := marshalClean(obj)
		if err != nil {
			return err
		}
		if i > 0 {
			if _, err := io.WriteString(w, "---\n"); err != nil {
				return err
			}
		}
		if _, err := w.Write(data); err != nil {
			return err
		}
	}
	return nil
}

// marshalClean renders an object as YAML without the null and empty fields
// the typed structs always carry (creationTimestamp: null, status: {}).
func marshalClean(obj runtime.Object) ([]byte, error) {
	data, err := json.Marshal(obj)
	if err != nil {
		return nil, fmt.Errorf("encoding %T: %w", obj, err)
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, err
	}
	dropNulls(m)
	if st, ok := m["status"].(map[string]any); ok && len(st) == 0 {
		delete(m, "status")
	}
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(m); err != nil {
		return nil, fmt.Errorf("encoding %T: %w", obj, err)
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// dropNulls deletes every null field. Empty objects stay: some mean
// something (emptyDir: {}).
func dropNulls(v any) {
	switch t := v.(type) {
	case map[string]any:
		for k, e := range t {
			if e == nil {
				delete(t, k)
				continue
			}
			dropNulls(e)
		}
	case []any:
		for _, e := range t {
			dropNulls(e)
		}
	}
}

func (o ManifestOptions) meta() metav1.ObjectMeta {
	return metav1.ObjectMeta{Name: o.Name, Labels: o.labels()}
}

func (o ManifestOptions) labels() map[string]string {
	return map[string]string{"app.kubernetes.io/name": o.Name, "app.kubernetes.io/part-of": "twinforge"}
}

func (o ManifestOptions) clientConfig(path string) admissionregistrationv1.WebhookClientConfig {
	cc := admissionregistrationv1.WebhookClientConfig{CABundle: o.CABundle}
	if o.URL != "" {
		base := strings.TrimSuffix(strings.TrimSuffix(o.URL, "/"), PathValidate)
		cc.URL = ptr(base + path)
		return cc
	}
	cc.Service = &admissionregistrationv1.ServiceReference{Namespace: o.Namespace, Name: o.Name, Path: ptr(path), Port: ptr(int32(443))}
	return cc
}

// namespaceSelector exempts the webhook's namespace (and ExemptNamespaces),
// by the name label the API server sets on every namespace.
func (o ManifestOptions) namespaceSelector() *metav1.LabelSelector {
	return &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{
		Key: "kubernetes.io/metadata.name", Operator: metav1.LabelSelectorOpNotIn,
		Values: append([]string{o.Namespace}, o.ExemptNamespaces...),
	}}}
}

// webhookRules are the resources of workloadKinds, grouped by API group,
// for CREATE and UPDATE.
func webhookRules() []admissionregistrationv1.RuleWithOperations {
	var rules []admissionregistrationv1.RuleWithOperations
	byGroup := map[string]int{}
	for _, k := range workloadKinds {
		i, ok := byGroup[k.gvk.Group]
		if !ok {
			i = len(rules)
			byGroup[k.gvk.Group] = i
			rules = append(rules, admissionregistrationv1.RuleWithOperations{
				Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create, admissionregistrationv1.Update},
				Rule: admissionregistrationv1.Rule{
					APIGroups: []string{k.gvk.Group}, APIVersions: []string{k.gvk.Version},
					Scope: ptr(admissionregistrationv1.NamespacedScope),
				},
			})
		}
		rules[i].Resources = append(rules[i].Resources, k.resource)
		if k.resource == "pods" {
			rules[i].Resources = append(rules[i].Resources, "pods/ephemeralcontainers")
		}
	}
	return rules
}

func (o ManifestOptions) deployment() *appsv1.Deployment {
	args := []string{
		"admission", "serve",
		"--policy-config=" + manifestConfigDir + "/config.yaml",
		"--trusted-root=" + manifestConfigDir + "/trusted_root.json",
		"--tls-cert=" + manifestTLSDir + "/tls.crt",
		"--tls-key=" + manifestTLSDir + "/tls.key",
		fmt.Sprintf("--addr=:%d", manifestPort),
	}
	if o.ValidatingOnly {
		args = append(args, "--mutating=false")
	}
	if o.Revocations {
		args = append(args, "--revocations="+manifestConfigDir+"/revocations.txt")
	}
	serviceAccount, automount := "", false
	var env []corev1.EnvVar
	if o.ReverifyInterval > 0 {
		args = append(args, "--reverify-interval="+o.ReverifyInterval.String())
		for _, ns := range append([]string{o.Namespace}, o.ExemptNamespaces...) {
			args = append(args, "--reverify-exempt-namespace="+ns)
		}
		serviceAccount, automount = o.Name, true
		if o.leaderElect() {
			args = append(args, "--leader-elect", "--leader-elect-name="+o.Name+"-reverify")
			for _, e := range []struct{ name, field string }{{"POD_NAMESPACE", "metadata.namespace"}, {"POD_NAME", "metadata.name"}} {
				env = append(env, corev1.EnvVar{Name: e.name, ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: e.field}}})
			}
		}
	}
	if o.ImagePullSecrets {
		args = append(args, "--image-pull-secrets")
		serviceAccount, automount = o.Name, true
	}
	mounts := []corev1.VolumeMount{
		{Name: "config", MountPath: manifestConfigDir, ReadOnly: true},
		{Name: "tls", MountPath: manifestTLSDir, ReadOnly: true},
	}
	volumes := []corev1.Volume{
		{Name: "config", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
			LocalObjectReference: corev1.LocalObjectReference{Name: o.Name + "-config"},
		}}},
		{Name: "tls", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: o.Name + "-tls"}}},
	}
	if o.RecordKey {
		args = append(args, "--record-key="+manifestRecordDir+"/record.key")
		mounts = append(mounts, corev1.VolumeMount{Name: "record-key", MountPath: manifestRecordDir, ReadOnly: true})
		volumes = append(volumes, corev1.Volume{Name: "record-key", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: o.Name + "-record-key"}}})
	}
	probe := func(path string) *corev1.Probe {
		return &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{
			Path: path, Port: intstr.FromString("https"), Scheme: corev1.URISchemeHTTPS,
		}}, PeriodSeconds: 10}
	}
	return &appsv1.Deployment{
		TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
		ObjectMeta: metav1.ObjectMeta{Name: o.Name, Namespace: o.Namespace, Labels: o.labels()},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr(int32(*o.Replicas)),
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app.kubernetes.io/name": o.Name}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: o.labels()},
				Spec: corev1.PodSpec{
					ServiceAccountName:           serviceAccount,
					AutomountServiceAccountToken: ptr(automount),
					SecurityContext: &corev1.PodSecurityContext{
						RunAsNonRoot:   ptr(true),
						RunAsUser:      ptr(int64(65532)),
						SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
					},
					Containers: []corev1.Container{{
						Name:           "webhook",
						Image:          o.Image,
						Args:           args,
						Ports:          []corev1.ContainerPort{{Name: "https", ContainerPort: manifestPort, Protocol: corev1.ProtocolTCP}},
						ReadinessProbe: probe(PathReadyz),
						LivenessProbe:  probe(PathHealthz),
						Resources: corev1.ResourceRequirements{
							Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("128Mi")},
							Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("512Mi")},
						},
						SecurityContext: &corev1.SecurityContext{
							AllowPrivilegeEscalation: ptr(false),
							ReadOnlyRootFilesystem:   ptr(true),
							Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
						},
						Env:          env,
						VolumeMounts: mounts,
					}},
					Volumes: volumes,
				},
			},
		},
	}
}

func (o ManifestOptions) service() *corev1.Service {
	return &corev1.Service{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
		ObjectMeta: metav1.ObjectMeta{Name: o.Name, Namespace: o.Namespace, Labels: o.labels()},
		Spec: corev1.ServiceSpec{
			Selector: map[string]string{"app.kubernetes.io/name": o.Name},
			Ports:    []corev1.ServicePort{{Name: "https", Port: 443, TargetPort: intstr.FromString("https"), Protocol: corev1.ProtocolTCP}},
		},
	}
}

func ptr[T any](v T) *T { return &v }
