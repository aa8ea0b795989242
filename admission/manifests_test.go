package admission

import (
	"bytes"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/twinforge/twinforge/internal/testenv"
)

func TestManifests(t *testing.T) {
	pki := testenv.NewPKI(t, t.TempDir())
	ca, err := os.ReadFile(pki.CA)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := WriteManifests(&out, ManifestOptions{Namespace: "twinforge-system", CABundle: ca, Image: "registry.example/twinforge@sha256:" + strings.Repeat("a", 64)}); err != nil {
		t.Fatal(err)
	}
	docs := strings.Split(out.String(), "---\n")
	if len(docs) != 4 {
		t.Fatalf("%d documents, want 4:\n%s", len(docs), out.String())
	}
	if strings.Contains(out.String(), "null") || strings.Contains(out.String(), "status: {}") {
		t.Errorf("empty fields in the output:\n%s", out.String())
	}
	var vwc admissionregistrationv1.ValidatingWebhookConfiguration
	var mwc admissionregistrationv1.MutatingWebhookConfiguration
	var dep appsv1.Deployment
	var svc corev1.Service
	for i, into := range []any{&vwc, &mwc, &dep, &svc} {
		if err := yaml.UnmarshalStrict([]byte(docs[i]), into); err != nil {
			t.Fatalf("document %d: %v\n%s", i, err, docs[i])
		}
	}
	if vwc.Kind != "ValidatingWebhookConfiguration" || mwc.Kind != "MutatingWebhookConfiguration" || dep.Kind != "Deployment" || svc.Kind != "Service" {
		t.Fatalf("kinds: %s %s %s %s", vwc.Kind, mwc.Kind, dep.Kind, svc.Kind)
	}
	vw, mw := vwc.Webhooks[0], mwc.Webhooks[0]
	for _, c := range []struct {
		name     string
		cc       admissionregistrationv1.WebhookClientConfig
		rules    []admissionregistrationv1.RuleWithOperations
		fp       *admissionregistrationv1.FailurePolicyType
		se       *admissionregistrationv1.SideEffectClass
		timeout  *int32
		versions []string
		selector *metav1.LabelSelector
		path     string
	}{
		{vw.Name, vw.ClientConfig, vw.Rules, vw.FailurePolicy, vw.SideEffects, vw.TimeoutSeconds, vw.AdmissionReviewVersions, vw.NamespaceSelector, PathValidate},
		{mw.Name, mw.ClientConfig, mw.Rules, mw.FailurePolicy, mw.SideEffects, mw.TimeoutSeconds, mw.AdmissionReviewVersions, mw.NamespaceSelector, PathMutate},
	} {
		if !bytes.Equal(c.cc.CABundle, ca) {
			t.Errorf("%s: caBundle differs", c.name)
		}
		if c.cc.Service == nil || c.cc.Service.Namespace != "twinforge-system" || *c.cc.Service.Path != c.path || *c.cc.Service.Port != 443 || c.cc.URL != nil {
			t.Errorf("%s: clientConfig %+v", c.name, c.cc)
		}
		if *c.fp != admissionregistrationv1.Fail || *c.se != admissionregistrationv1.SideEffectClassNone || *c.timeout != 10 || !slices.Equal(c.versions, []string{"v1"}) {
			t.Errorf("%s: failurePolicy %s sideEffects %s timeout %d versions %v", c.name, *c.fp, *c.se, *c.timeout, c.versions)
		}
		if c.selector.MatchExpressions[0].Operator != metav1.LabelSelectorOpNotIn || !slices.Equal(c.selector.MatchExpressions[0].Values, []string{"twinforge-system"}) {
			t.Errorf("%s: namespaceSelector %+v", c.name, c.selector)
		}
		var resources []string
		for _, r := range c.rules {
			if !slices.Equal(r.Operations, []admissionregistrationv1.OperationType{admissionregistrationv1.Create, admissionregistrationv1.Update}) {
				t.Errorf("%s: operations %v", c.name, r.Operations)
			}
			for _, res := range r.Resources {
				resources = append(resources, r.APIGroups[0]+"/"+r.APIVersions[0]+"/"+res)
			}
		}
		want := []string{"/v1/pods", "/v1/pods/ephemeralcontainers", "apps/v1/deployments", "apps/v1/statefulsets", "apps/v1/daemonsets", "apps/v1/replicasets", "batch/v1/jobs", "batch/v1/cronjobs"}
		if !slices.Equal(resources, want) {
			t.Errorf("%s: resources %v, want %v", c.name, resources, want)
		}
	}
	args := strings.Join(dep.Spec.Template.Spec.Containers[0].Args, " ")
	if !strings.Contains(args, "admission serve") || strings.Contains(args, "--mutating") || dep.Namespace != "twinforge-system" {
		t.Errorf("deployment: %s in %s", args, dep.Namespace)
	}
	if svc.Spec.Ports[0].Port != 443 || svc.Spec.Selector["app.kubernetes.io/name"] != DefaultName {
		t.Errorf("service: %+v", svc.Spec)
	}

	// A webhook outside the cluster: configurations only, pointing at the URL.
	out.Reset()
	if err := WriteManifests(&out, ManifestOptions{Namespace: "twinforge-system", CABundle: ca, URL: "https://127.0.0.1:8443/validate"}); err != nil {
		t.Fatal(err)
	}
	docs = strings.Split(out.String(), "---\n")
	if len(docs) != 2 {
		t.Fatalf("%d documents with --url, want 2", len(docs))
	}
	vwc, mwc = admissionregistrationv1.ValidatingWebhookConfiguration{}, admissionregistrationv1.MutatingWebhookConfiguration{}
	if err := yaml.UnmarshalStrict([]byte(docs[0]), &vwc); err != nil {
		t.Fatal(err)
	}
	if err := yaml.UnmarshalStrict([]byte(docs[1]), &mwc); err != nil {
		t.Fatal(err)
	}
	if *vwc.Webhooks[0].ClientConfig.URL != "https://127.0.0.1:8443/validate" || *mwc.Webhooks[0].ClientConfig.URL != "https://127.0.0.1:8443/mutate" || vwc.Webhooks[0].ClientConfig.Service != nil {
		t.Fatalf("urls: %v %v", *vwc.Webhooks[0].ClientConfig.URL, *mwc.Webhooks[0].ClientConfig.URL)
	}
}

func TestManifestsErrors(t *testing.T) {
	pki := testenv.NewPKI(t, t.TempDir())
	ca, _ := os.ReadFile(pki.CA)
	key, _ := os.ReadFile(pki.ServerKey)
	for _, tc := range []struct {
		name string
		o    ManifestOptions
		want string
	}{
		{"no namespace", ManifestOptions{CABundle: ca, Image: "x"}, "namespace"},
		{"bad namespace", ManifestOptions{Namespace: "Team_A", CABundle: ca, Image: "x"}, "namespace"},
		{"no ca", ManifestOptions{Namespace: "ns", Image: "x"}, "no PEM certificate"},
		{"key as ca", ManifestOptions{Namespace: "ns", CABundle: key, Image: "x"}, "no PEM certificate"},
		{"no image", ManifestOptions{Namespace: "ns", CABundle: ca}, "image"},
		{"http url", ManifestOptions{Namespace: "ns", CABundle: ca, URL: "http://127.0.0.1:8443"}, "https"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Manifests(tc.o)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

// TestManifestsReverify: with re-verification the webhook runs as its own
// ServiceAccount, which may list and watch pods and record Events, and
// nothing more; the exempt namespaces are exempt from re-verification too.
func TestManifestsReverify(t *testing.T) {
	pki := testenv.NewPKI(t, t.TempDir())
	ca, err := os.ReadFile(pki.CA)
	if err != nil {
		t.Fatal(err)
	}
	objs, err := Manifests(ManifestOptions{Namespace: "twinforge-system", CABundle: ca, Image: "registry.example/twinforge:1",
		ExemptNamespaces: []string{"kube-system"}, ReverifyInterval: 10 * time.Minute, ValidatingOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, o := range objs {
		kinds = append(kinds, o.GetObjectKind().GroupVersionKind().Kind)
	}
	if want := []string{"ValidatingWebhookConfiguration", "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding", "Deployment", "Service"}; !slices.Equal(kinds, want) {
		t.Fatalf("kinds %v, want %v", kinds, want)
	}
	sa, role, binding, dep := objs[1].(*corev1.ServiceAccount), objs[2].(*rbacv1.ClusterRole), objs[3].(*rbacv1.ClusterRoleBinding), objs[6].(*appsv1.Deployment)
	// Two replicas elect their re-verifier, with a Lease in their namespace.
	lease := objs[4].(*rbacv1.Role)
	if lease.Namespace != "twinforge-system" || len(lease.Rules) != 2 || lease.Rules[1].ResourceNames[0] != DefaultName+"-reverify" {
		t.Errorf("lease role %+v", lease)
	}
	if args := strings.Join(dep.Spec.Template.Spec.Containers[0].Args, " "); !strings.Contains(args, "--leader-elect ") || len(dep.Spec.Template.Spec.Containers[0].Env) != 2 {
		t.Errorf("no leader election: %s", args)
	}
	if sa.Name != DefaultName || sa.Namespace != "twinforge-system" {
		t.Errorf("service account %s/%s", sa.Namespace, sa.Name)
	}
	var rules []string
	for _, r := range role.Rules {
		rules = append(rules, fmt.Sprintf("%v %v %v", r.APIGroups, r.Resources, r.Verbs))
	}
	if want := []string{"[] [pods] [list watch]", "[] [events] [create get patch]"}; !slices.Equal(rules, want) {
		t.Errorf("rules %v, want %v", rules, want)
	}
	if binding.RoleRef.Name != role.Name || len(binding.Subjects) != 1 || binding.Subjects[0].Name != sa.Name || binding.Subjects[0].Namespace != sa.Namespace {
		t.Errorf("binding %+v", binding)
	}
	spec := dep.Spec.Template.Spec
	args := strings.Join(spec.Containers[0].Args, " ")
	if spec.ServiceAccountName != sa.Name || !*spec.AutomountServiceAccountToken ||
		!strings.Contains(args, "--reverify-interval=10m0s") || !strings.Contains(args, "--reverify-exempt-namespace=twinforge-system") ||
		!strings.Contains(args, "--reverify-exempt-namespace=kube-system") {
		t.Errorf("deployment: service account %q automount %v args %s", spec.ServiceAccountName, *spec.AutomountServiceAccountToken, args)
	}

	// Outside the cluster: the RBAC, for a token of the ServiceAccount.
	objs, err = Manifests(ManifestOptions{Namespace: "twinforge-system", CABundle: ca, URL: "https://127.0.0.1:8443", ReverifyInterval: time.Minute, ValidatingOnly: true})
	if err != nil || len(objs) != 4 {
		t.Fatalf("with a URL: %d objects, %v", len(objs), err)
	}
	// Without re-verification: no token in the webhook's pods.
	objs, err = Manifests(ManifestOptions{Namespace: "twinforge-system", CABundle: ca, Image: "registry.example/twinforge:1"})
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range objs {
		if d, ok := o.(*appsv1.Deployment); ok && (*d.Spec.Template.Spec.AutomountServiceAccountToken || d.Spec.Template.Spec.ServiceAccountName != "") {
			t.Errorf("a service account token without re-verification")
		}
		if _, ok := o.(*rbacv1.ClusterRole); ok {
			t.Errorf("a ClusterRole without re-verification")
		}
	}
	if _, err := Manifests(ManifestOptions{Namespace: "ns", CABundle: ca, Image: "x", ReverifyInterval: -time.Second}); err == nil {
		t.Error("a negative interval")
	}
}

// Mutation is the default. Validating only, no mutating webhook is made,
// the Deployment runs the webhook with --mutating=false, and the output says
// what that costs: images named by tag are denied.
func TestManifestsValidatingOnly(t *testing.T) {
	pki := testenv.NewPKI(t, t.TempDir())
	ca, _ := os.ReadFile(pki.CA)
	var out bytes.Buffer
	if err := WriteManifests(&out, ManifestOptions{Namespace: "ns", CABundle: ca, Image: "registry.example/twinforge:1", ValidatingOnly: true}); err != nil {
		t.Fatal(err)
	}
	text := out.String()
	for _, want := range []string{"# Validating only", "denies images named by tag", "allowTags", "--mutating=false"} {
		if !strings.Contains(text, want) {
			t.Errorf("output lacks %q:\n%s", want, text)
		}
	}
	if strings.Contains(text, "MutatingWebhookConfiguration") {
		t.Errorf("a mutating webhook validating only:\n%s", text)
	}
	out.Reset()
	if err := WriteManifests(&out, ManifestOptions{Namespace: "ns", CABundle: ca, Image: "registry.example/twinforge:1"}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "kind: MutatingWebhookConfiguration") || strings.Contains(out.String(), "--mutating") {
		t.Errorf("default manifests:\n%s", out.String())
	}
}

// TestManifestsNodeAgent: the DaemonSet of the node agent, its RBAC (no
// delete, evictions only), the record key for the webhook.
func TestManifestsNodeAgent(t *testing.T) {
	pki := testenv.NewPKI(t, t.TempDir())
	ca, err := os.ReadFile(pki.CA)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Manifests(ManifestOptions{Namespace: "tf", CABundle: ca, Image: "x", NodeAgent: true}); err == nil {
		t.Error("a node agent without the record key")
	}
	if _, err := Manifests(ManifestOptions{Namespace: "tf", CABundle: ca, Image: "x", RecordKey: true, ValidatingOnly: true}); err == nil {
		t.Error("records without the mutating webhook")
	}
	objs, err := Manifests(ManifestOptions{Namespace: "tf", CABundle: ca, Image: "registry.example/twinforge:1", RecordKey: true,
		NodeAgent: true, NodeAgentOnMismatch: "evict", ImagePullSecrets: true, ExemptNamespaces: []string{"kube-system"}})
	if err != nil {
		t.Fatal(err)
	}
	var ds *appsv1.DaemonSet
	var agentRole *rbacv1.ClusterRole
	for _, o := range objs {
		switch v := o.(type) {
		case *appsv1.DaemonSet:
			ds = v
		case *rbacv1.ClusterRole:
			if v.Name == DefaultName+"-node-agent" {
				agentRole = v
			}
		case *appsv1.Deployment:
			args := strings.Join(v.Spec.Template.Spec.Containers[0].Args, " ")
			if !strings.Contains(args, "--record-key=/etc/twinforge/record/record.key") || !strings.Contains(args, "--image-pull-secrets") {
				t.Errorf("webhook args %s", args)
			}
		}
	}
	if ds == nil || agentRole == nil {
		t.Fatalf("no DaemonSet or node agent role in %d objects", len(objs))
	}
	var rules []string
	for _, r := range agentRole.Rules {
		rules = append(rules, fmt.Sprintf("%v %v", r.Resources, r.Verbs))
	}
	if want := []string{"[pods] [get list watch]", "[pods/eviction] [create]", "[events] [create get patch]", "[secrets serviceaccounts] [get]"}; !slices.Equal(rules, want) {
		t.Errorf("node agent rules %v, want %v", rules, want)
	}
	c := ds.Spec.Template.Spec.Containers[0]
	args := strings.Join(c.Args, " ")
	for _, w := range []string{"node-agent", "--node=$(NODE_NAME)", "--cri=unix:///run/containerd/containerd.sock", "--on-mismatch=evict",
		"--record-public-key=/etc/twinforge/config/record.pub", "--exempt-namespace=tf", "--exempt-namespace=kube-system", "--image-pull-secrets"} {
		if !strings.Contains(args, w) {
			t.Errorf("node agent args %s: no %s", args, w)
		}
	}
	if c.Env[0].ValueFrom.FieldRef.FieldPath != "spec.nodeName" || *c.SecurityContext.ReadOnlyRootFilesystem != true ||
		ds.Spec.Template.Spec.Volumes[1].HostPath.Path != "/run/containerd/containerd.sock" {
		t.Errorf("node agent pod %+v", ds.Spec.Template.Spec)
	}
}

// TestManifestsFlagSettings: the settings `twinforge admission manifests`
// takes as flags, the CA bundle's file and the replicas, fail with the
// flag's name and no prefix, the file first, whether the webhook runs in
// the cluster or not.
func TestManifestsFlagSettings(t *testing.T) {
	pki := testenv.NewPKI(t, t.TempDir())
	missing := pki.CA + ".missing"
	n := func(i int) *int { return &i }
	for _, tc := range []struct {
		name string
		o    ManifestOptions
		want string
	}{
		{"no CA file", ManifestOptions{Namespace: "ns", CABundleFile: missing, Image: "x"}, "--ca-bundle: open " + missing + ": no such file or directory"},
		{"CA file is a directory", ManifestOptions{Namespace: "ns", CABundleFile: t.TempDir(), Image: "x"}, "--ca-bundle: read "},
		{"no CA file, no replicas", ManifestOptions{Namespace: "ns", CABundleFile: missing, Image: "x", Replicas: n(0)}, "--ca-bundle: open "},
		{"no replicas", ManifestOptions{Namespace: "ns", CABundleFile: pki.CA, Image: "x", Replicas: n(0)}, "--replicas 0: want 1 to 100"},
		{"negative replicas", ManifestOptions{Namespace: "ns", CABundleFile: pki.CA, Image: "x", Replicas: n(-1)}, "--replicas -1: want 1 to 100"},
		{"too many replicas", ManifestOptions{Namespace: "ns", CABundleFile: pki.CA, Image: "x", Replicas: n(101)}, "--replicas 101: want 1 to 100"},
		{"no replicas outside the cluster", ManifestOptions{Namespace: "ns", CABundleFile: pki.CA, URL: "https://127.0.0.1:8443", Replicas: n(0)}, "--replicas 0: want 1 to 100"},
		// The replicas are checked before the objects' settings.
		{"no replicas, bad namespace", ManifestOptions{Namespace: "Team_A", CABundleFile: pki.CA, Image: "x", Replicas: n(0)}, "--replicas 0: want 1 to 100"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := WriteManifests(new(bytes.Buffer), tc.o)
			if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}

	for _, tc := range []struct {
		name        string
		replicas    *int
		want        int32
		leaderElect bool
	}{
		{"default", nil, 2, true},
		{"one", n(1), 1, false},
		{"hundred", n(100), 100, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Replicas re-verify on one of them at a time.
			objs, err := Manifests(ManifestOptions{Namespace: "ns", CABundleFile: pki.CA, Image: "x", Replicas: tc.replicas, ReverifyInterval: time.Minute})
			if err != nil {
				t.Fatal(err)
			}
			var dep *appsv1.Deployment
			for _, o := range objs {
				if d, ok := o.(*appsv1.Deployment); ok {
					dep = d
				}
			}
			if dep == nil || *dep.Spec.Replicas != tc.want {
				t.Fatalf("Deployment %+v, want %d replicas", dep, tc.want)
			}
			args := strings.Join(dep.Spec.Template.Spec.Containers[0].Args, " ")
			if strings.Contains(args, "--leader-elect") != tc.leaderElect {
				t.Errorf("args %q: leader election %v, want %v", args, !tc.leaderElect, tc.leaderElect)
			}
		})
	}
}
