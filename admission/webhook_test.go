package admission

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestDecisions: what the webhook decides about signed, unsigned, tampered,
// unreproduced, unknown and revoked images, by tag and by digest, with the
// reason in the denial.
func TestDecisions(t *testing.T) {
	reg := newMemRegistry(t)
	key := newTestKey(t)
	s := key.signer(t)
	dir := t.TempDir()

	good := signedImage(t, reg.host, "team/app", "v1", s)
	img, _, _ := randomImage(t)
	unsigned := push(t, reg.host, "team/unsigned", "v1", img, nil)
	// Tampered: the evidence of another image attached to this one.
	_, otherDigest, otherManifest := randomImage(t)
	img, _, _ = randomImage(t)
	tampered := push(t, reg.host, "team/tampered", "v1", img, evidenceFor(t, s, reg.host+"/team/tampered", otherDigest, otherManifest, true))
	// Signed, but the provenance records no rebuild.
	img, d, m := randomImage(t)
	unreproduced := push(t, reg.host, "team/unreproduced", "v1", img, evidenceFor(t, s, reg.host+"/team/unreproduced", d, m, false))
	// Signed by someone else.
	img, d, m = randomImage(t)
	stranger := push(t, reg.host, "team/stranger", "v1", img, evidenceFor(t, newTestKey(t).signer(t), reg.host+"/team/stranger", d, m, true))
	revoked := signedImage(t, reg.host, "team/revoked", "v1", s)

	revocations := filepath.Join(dir, "revoked.txt")
	writeTestFile(t, revocations, "# revoked after the incident\n"+revoked.digest+"  # build 42\n")
	wh := newTestWebhook(t, Source{PolicyFile: keyPolicy(t, dir, key), RevocationsFile: revocations})

	for _, tc := range []struct {
		name    string
		image   string
		allowed bool
		want    []string // in the denial
		result  string
	}{
		{"signed by tag", good.tag, true, nil, ResultAdmitted},
		{"signed by digest", good.pinned, true, nil, ResultAdmitted},
		{"signed by tag and digest", good.tag + "@" + good.digest, true, nil, ResultAdmitted},
		{"unsigned", unsigned.tag, false, []string{unsigned.tag, unsigned.digest, `check "signature"`, "not signed"}, ResultVerification},
		{"tampered", tampered.tag, false, []string{tampered.tag, `check "subject"`}, ResultVerification},
		// The builder's record that it did not rebuild is information:
		// only rebuilders' verdicts decide, and this policy asks for none.
		{"unreproduced", unreproduced.tag, true, nil, ResultAdmitted},
		{"other signer", stranger.tag, false, []string{`check "identity"`}, ResultVerification},
		{"unknown repository", reg.host + "/team/nothing:v1", false, []string{"not found"}, ResultNotFound},
		{"unknown digest", good.repo + "@sha256:" + strings.Repeat("0", 64), false, []string{"not found"}, ResultNotFound},
		{"revoked", revoked.tag, false, []string{revoked.digest, "revoked"}, ResultRevoked},
		{"invalid reference", "Not An Image!", false, []string{"invalid image reference"}, ResultInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := decide(t, wh, "default", tc.image)
			if resp.Allowed != tc.allowed {
				t.Fatalf("allowed = %v, want %v: %s", resp.Allowed, tc.allowed, message(resp))
			}
			for _, w := range tc.want {
				if !strings.Contains(message(resp), w) {
					t.Errorf("denial %q does not contain %q", message(resp), w)
				}
			}
			if !tc.allowed && (resp.Result == nil || resp.Result.Code != http.StatusForbidden) {
				t.Errorf("denial status %+v, want code 403", resp.Result)
			}
		})
	}

	// A pod is denied when any of its images is.
	resp := decide(t, wh, "default", good.tag, unsigned.tag)
	if resp.Allowed || !strings.Contains(message(resp), unsigned.tag) || strings.Contains(message(resp), `"`+good.tag+`"`) {
		t.Fatalf("mixed pod: %v %s", resp.Allowed, message(resp))
	}
}

// TestRegistryReferrersTagSchema: a registry without the referrers API
// (404) lists the bundles through the referrers tag schema; the webhook
// finds them there too.
func TestRegistryReferrersTagSchema(t *testing.T) {
	reg := startMemRegistry(t, false)
	key := newTestKey(t)
	good := signedImage(t, reg.host, "team/app", "v1", key.signer(t))
	wh := newTestWebhook(t, Source{PolicyFile: keyPolicy(t, t.TempDir(), key)})
	before := reg.count("/manifests/sha256-")
	if resp := decide(t, wh, "default", good.tag); !resp.Allowed {
		t.Fatalf("denied: %s", message(resp))
	}
	if reg.count("/manifests/sha256-") == before {
		t.Fatalf("the referrers tag schema index was not read: %v", reg.requests)
	}
}

// TestTenantIsolation: a tenant's policy decides only its own images in its
// own namespaces; an image no tenant of the namespace covers is denied
// without asking the registry, whoever signed it.
func TestTenantIsolation(t *testing.T) {
	reg := newMemRegistry(t)
	keyA, keyB := newTestKey(t), newTestKey(t)
	dir := t.TempDir()
	imgA := signedImage(t, reg.host, "team-a/app", "v1", keyA.signer(t))
	imgB := signedImage(t, reg.host, "team-b/app", "v1", keyB.signer(t))
	// Team B's key signs an image in team A's repository.
	forged := signedImage(t, reg.host, "team-a/forged", "v1", keyB.signer(t))
	shared := signedImage(t, reg.host, "shared/base", "v1", keyA.signer(t))

	cfg := filepath.Join(dir, "config.yaml")
	writeTestFile(t, cfg, fmt.Sprintf(`apiVersion: twinforge.dev/v1
kind: AdmissionConfig
tenants:
  - name: team-a
    namespaces: [team-a, "team-a-*"]
    images: ["%[1]s/team-a/**", "%[1]s/shared/*"]
    policy: %[2]s
  - name: team-b
    namespaces: [team-b]
    images: ["%[1]s/team-b/**", "%[1]s/shared/*"]
    policy: %[3]s
`, reg.host, filepath.Base(keyPolicy(t, dir, keyA)), filepath.Base(keyPolicy(t, dir, keyB))))
	wh := newTestWebhook(t, Source{ConfigFile: cfg})

	for _, tc := range []struct {
		namespace, image string
		allowed          bool
		want             string
	}{
		{"team-a", imgA.tag, true, ""},
		{"team-a-staging", imgA.pinned, true, ""},
		{"team-b", imgB.tag, true, ""},
		{"team-a", imgB.tag, false, "no tenant of namespace \"team-a\" covers"},
		{"team-b", imgA.tag, false, "no tenant of namespace \"team-b\" covers"},
		{"team-c", imgA.tag, false, "no tenant of namespace \"team-c\" covers"},
		{"team-a", forged.tag, false, `tenant "team-a": verification failed: check "identity"`},
		{"team-a", shared.tag, true, ""},
		// Team B's policy does not trust team A's key, even for a shared image.
		{"team-b", shared.tag, false, `tenant "team-b": verification failed: check "identity"`},
	} {
		t.Run(tc.namespace+"/"+tc.image, func(t *testing.T) {
			before := reg.total()
			resp := decide(t, wh, tc.namespace, tc.image)
			if resp.Allowed != tc.allowed || !strings.Contains(message(resp), tc.want) {
				t.Fatalf("allowed = %v (want %v): %q, want %q", resp.Allowed, tc.allowed, message(resp), tc.want)
			}
			if strings.Contains(tc.want, "no tenant") && reg.total() != before {
				t.Errorf("an image outside every scope reached the registry (%d requests)", reg.total()-before)
			}
		})
	}
}

// TestOverlappingTenants: when two tenants cover an image, both policies
// must admit it; adding a scope never admits more.
func TestOverlappingTenants(t *testing.T) {
	reg := newMemRegistry(t)
	keyA, keyB := newTestKey(t), newTestKey(t)
	dir := t.TempDir()
	img := signedImage(t, reg.host, "apps/web", "v1", keyA.signer(t))
	cfg := filepath.Join(dir, "config.yaml")
	writeTestFile(t, cfg, fmt.Sprintf(`apiVersion: twinforge.dev/v1
kind: AdmissionConfig
tenants:
  - {name: apps, namespaces: [prod], images: ["%[1]s/apps/*"], policy: %[2]s}
  - {name: baseline, namespaces: ["*"], images: ["**"], policy: %[3]s}
`, reg.host, keyPolicy(t, dir, keyA), keyPolicy(t, dir, keyB)))
	wh := newTestWebhook(t, Source{ConfigFile: cfg})
	resp := decide(t, wh, "prod", img.tag)
	if resp.Allowed || !strings.Contains(message(resp), `tenant "baseline"`) {
		t.Fatalf("want the baseline tenant to deny: %v %s", resp.Allowed, message(resp))
	}
}

// TestWorkloadKinds: every kind's containers, init containers and
// ephemeral containers are found, at the JSON paths a patch needs.
func TestWorkloadKinds(t *testing.T) {
	spec := corev1.PodSpec{
		Containers:          []corev1.Container{{Name: "a", Image: "a:1"}, {Name: "b", Image: "b:1"}},
		InitContainers:      []corev1.Container{{Name: "i", Image: "init:1"}},
		EphemeralContainers: []corev1.EphemeralContainer{{EphemeralContainerCommon: corev1.EphemeralContainerCommon{Name: "e", Image: "debug:1"}}},
	}
	tmpl := map[string]any{"spec": spec}
	for _, tc := range []struct {
		kind   metav1.GroupVersionKind
		obj    any
		prefix string
	}{
		{podKind, map[string]any{"spec": spec}, "/spec"},
		{deploymentKind, map[string]any{"spec": map[string]any{"template": tmpl}}, "/spec/template/spec"},
		{metav1.GroupVersionKind{Group: "apps", Version: "v1", Kind: "StatefulSet"}, map[string]any{"spec": map[string]any{"template": tmpl}}, "/spec/template/spec"},
		{metav1.GroupVersionKind{Group: "apps", Version: "v1", Kind: "DaemonSet"}, map[string]any{"spec": map[string]any{"template": tmpl}}, "/spec/template/spec"},
		{metav1.GroupVersionKind{Group: "apps", Version: "v1", Kind: "ReplicaSet"}, map[string]any{"spec": map[string]any{"template": tmpl}}, "/spec/template/spec"},
		{metav1.GroupVersionKind{Group: "batch", Version: "v1", Kind: "Job"}, map[string]any{"spec": map[string]any{"template": tmpl}}, "/spec/template/spec"},
		{metav1.GroupVersionKind{Group: "batch", Version: "v1", Kind: "CronJob"}, batchv1.CronJob{Spec: batchv1.CronJobSpec{JobTemplate: batchv1.JobTemplateSpec{Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{Spec: spec}}}}}, "/spec/jobTemplate/spec/template/spec"},
	} {
		t.Run(tc.kind.Kind, func(t *testing.T) {
			k, ok := kindFor(tc.kind)
			if !ok {
				t.Fatal("kind not decided")
			}
			raw, _ := json.Marshal(tc.obj)
			got, err := k.images(raw)
			if err != nil {
				t.Fatal(err)
			}
			want := []containerImage{
				{"a:1", tc.prefix + "/containers/0/image", "containers", "a"},
				{"b:1", tc.prefix + "/containers/1/image", "containers", "b"},
				{"init:1", tc.prefix + "/initContainers/0/image", "initContainers", "i"},
				{"debug:1", tc.prefix + "/ephemeralContainers/0/image", "ephemeralContainers", "e"},
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("images:\n got %v\nwant %v", got, want)
			}
		})
	}
}

// TestDeploymentInitContainer: an unsigned init container denies a
// deployment whose main container is signed.
func TestDeploymentInitContainer(t *testing.T) {
	reg := newMemRegistry(t)
	key := newTestKey(t)
	good := signedImage(t, reg.host, "team/app", "v1", key.signer(t))
	img, _, _ := randomImage(t)
	unsigned := push(t, reg.host, "team/init", "v1", img, nil)
	wh := newTestWebhook(t, Source{PolicyFile: keyPolicy(t, t.TempDir(), key)})
	d := deploymentObject(good.tag)
	d.Spec.Template.Spec.InitContainers = []corev1.Container{{Name: "init", Image: unsigned.tag}}
	code, resp := post(t, wh, PathValidate, reviewBody(t, deploymentKind, admissionv1.Create, "default", d, nil))
	if code != http.StatusOK || resp.Allowed || !strings.Contains(message(resp), unsigned.tag) {
		t.Fatalf("%d %v %s", code, resp != nil && resp.Allowed, message(resp))
	}
	d.Spec.Template.Spec.InitContainers[0].Image = good.pinned
	if _, resp = post(t, wh, PathValidate, reviewBody(t, deploymentKind, admissionv1.Create, "default", d, nil)); !resp.Allowed {
		t.Fatalf("denied: %s", message(resp))
	}
}

// TestUpdateDecidesIntroducedImages: an UPDATE is decided on the images it
// brings in; one already there (even revoked since) does not block it.
func TestUpdateDecidesIntroducedImages(t *testing.T) {
	reg := newMemRegistry(t)
	key := newTestKey(t)
	good := signedImage(t, reg.host, "team/app", "v1", key.signer(t))
	img, _, _ := randomImage(t)
	unsigned := push(t, reg.host, "team/old", "v1", img, nil)
	wh := newTestWebhook(t, Source{PolicyFile: keyPolicy(t, t.TempDir(), key)})

	old := podObject(unsigned.tag)
	relabeled := podObject(unsigned.tag)
	relabeled.Labels = map[string]string{"x": "y"}
	if _, resp := post(t, wh, PathValidate, reviewBody(t, podKind, admissionv1.Update, "default", relabeled, old)); !resp.Allowed {
		t.Fatalf("an update that adds no image was denied: %s", message(resp))
	}
	changed := podObject(unsigned.tag + "-other")
	if _, resp := post(t, wh, PathValidate, reviewBody(t, podKind, admissionv1.Update, "default", changed, old)); resp.Allowed {
		t.Fatal("an update to an unverified image was admitted")
	}
	debug := podObject(unsigned.tag)
	debug.Spec.EphemeralContainers = []corev1.EphemeralContainer{{EphemeralContainerCommon: corev1.EphemeralContainerCommon{Name: "dbg", Image: unsigned.tag}}}
	if _, resp := post(t, wh, PathValidate, reviewBody(t, podKind, admissionv1.Update, "default", debug, old)); resp.Allowed {
		t.Fatal("an unverified ephemeral container was admitted")
	}
	debug.Spec.EphemeralContainers[0].Image = good.tag
	if _, resp := post(t, wh, PathValidate, reviewBody(t, podKind, admissionv1.Update, "default", debug, old)); !resp.Allowed {
		t.Fatalf("a verified ephemeral container was denied: %s", message(resp))
	}
}

// TestMutation: /mutate pins images named by tag to the digest verified,
// keeping the name as written; images by digest are left alone.
func TestMutation(t *testing.T) {
	reg := newMemRegistry(t)
	key := newTestKey(t)
	good := signedImage(t, reg.host, "team/app", "v1", key.signer(t))
	other := signedImage(t, reg.host, "team/sidecar", "v2", key.signer(t))
	policy := keyPolicy(t, t.TempDir(), key)

	off := newTestWebhook(t, Source{PolicyFile: policy}, WithValidationOnly())
	if code, _ := post(t, off, PathMutate, reviewBody(t, podKind, admissionv1.Create, "default", podObject(good.tag), nil)); code != http.StatusNotFound {
		t.Fatalf("/mutate with WithValidationOnly: status %d, want 404", code)
	}

	wh := newTestWebhook(t, Source{PolicyFile: policy}) // mutation is the default
	d := deploymentObject(good.tag, other.pinned)
	d.Spec.Template.Spec.InitContainers = []corev1.Container{{Name: "init", Image: other.tag}}
	_, resp := post(t, wh, PathMutate, reviewBody(t, deploymentKind, admissionv1.Create, "default", d, nil))
	if !resp.Allowed || resp.PatchType == nil || *resp.PatchType != admissionv1.PatchTypeJSONPatch {
		t.Fatalf("allowed %v patch type %v: %s", resp.Allowed, resp.PatchType, message(resp))
	}
	var ops []jsonPatchOp
	if err := json.Unmarshal(resp.Patch, &ops); err != nil {
		t.Fatal(err)
	}
	want := []jsonPatchOp{
		{Op: "replace", Path: "/spec/template/spec/containers/0/image", Value: good.pinned},
		{Op: "replace", Path: "/spec/template/spec/initContainers/0/image", Value: other.pinned},
	}
	if fmt.Sprint(ops) != fmt.Sprint(want) {
		t.Fatalf("patch:\n got %v\nwant %v", ops, want)
	}

	img, _, _ := randomImage(t)
	unsigned := push(t, reg.host, "team/unsigned", "v1", img, nil)
	if _, resp := post(t, wh, PathMutate, reviewBody(t, podKind, admissionv1.Create, "default", podObject(unsigned.tag), nil)); resp.Allowed || resp.Patch != nil {
		t.Fatalf("/mutate admitted or patched an unsigned image: %v", resp.Allowed)
	}
}

func TestPin(t *testing.T) {
	d := "sha256:" + strings.Repeat("a", 64)
	for in, want := range map[string]string{
		"nginx":                        "nginx@" + d,
		"nginx:1.27":                   "nginx@" + d,
		"127.0.0.1:5000/team/app":      "127.0.0.1:5000/team/app@" + d,
		"127.0.0.1:5000/team/app:v1.2": "127.0.0.1:5000/team/app@" + d,
	} {
		if got, ok := pin(in, d); !ok || got != want {
			t.Errorf("pin(%q) = %q, %v; want %q", in, got, ok, want)
		}
	}
	if _, ok := pin("app@"+d, d); ok {
		t.Error("an image by digest was pinned again")
	}
}

// TestMalformedReviews: what is not a well-formed AdmissionReview is an
// HTTP error (the API server then fails the call, and failurePolicy Fail
// denies); a well-formed review of something the webhook does not decide is
// denied.
func TestMalformedReviews(t *testing.T) {
	key := newTestKey(t)
	wh := newTestWebhook(t, Source{PolicyFile: keyPolicy(t, t.TempDir(), key)}, WithMaxBodyBytes(64<<10))
	pod := podObject("127.0.0.1:1/app:v1")
	okBody := reviewBody(t, podKind, admissionv1.Create, "default", pod, nil)

	for _, tc := range []struct {
		name, method, contentType string
		body                      []byte
		status                    int
	}{
		{"not json", http.MethodPost, "application/json", []byte("{not json"), http.StatusBadRequest},
		{"empty", http.MethodPost, "application/json", nil, http.StatusBadRequest},
		{"wrong kind", http.MethodPost, "application/json", []byte(`{"apiVersion":"admission.k8s.io/v1","kind":"Pod","request":{"uid":"1"}}`), http.StatusBadRequest},
		{"v1beta1", http.MethodPost, "application/json", []byte(`{"apiVersion":"admission.k8s.io/v1beta1","kind":"AdmissionReview","request":{"uid":"1"}}`), http.StatusBadRequest},
		{"no request", http.MethodPost, "application/json", []byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}`), http.StatusBadRequest},
		{"no uid", http.MethodPost, "application/json", []byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"operation":"CREATE"}}`), http.StatusBadRequest},
		{"wrong type", http.MethodPost, "text/plain", okBody, http.StatusUnsupportedMediaType},
		{"GET", http.MethodGet, "", nil, http.StatusMethodNotAllowed},
		{"too large", http.MethodPost, "application/json", append(okBody[:len(okBody)-1], []byte(`,"padding":"`+strings.Repeat("x", 65<<10)+`"}`)...), http.StatusRequestEntityTooLarge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, PathValidate, strings.NewReader(string(tc.body)))
			if tc.contentType != "" {
				req.Header.Set("Content-Type", tc.contentType)
			}
			rec := newRecorder()
			wh.ServeHTTP(rec, req)
			if rec.Code != tc.status {
				t.Fatalf("status %d, want %d: %s", rec.Code, tc.status, rec.Body)
			}
		})
	}

	for _, tc := range []struct {
		name string
		body []byte
		want string
	}{
		{"unknown kind", reviewBody(t, metav1.GroupVersionKind{Version: "v1", Kind: "Service"}, admissionv1.Create, "default", map[string]any{"spec": map[string]any{}}, nil), "unsupported resource: v1 Service"},
		{"other version", reviewBody(t, metav1.GroupVersionKind{Group: "apps", Version: "v1beta2", Kind: "Deployment"}, admissionv1.Create, "default", deploymentObject("a:1"), nil), "unsupported resource: apps/v1beta2 Deployment"},
		{"delete", reviewBody(t, podKind, admissionv1.Delete, "default", nil, pod), "operation DELETE"},
		{"no object", reviewBody(t, podKind, admissionv1.Create, "default", nil, nil), "carries no Pod"},
		{"object of another shape", reviewBody(t, podKind, admissionv1.Create, "default", map[string]any{"spec": "nope"}, nil), "decoding Pod"},
		{"empty image", reviewBody(t, podKind, admissionv1.Create, "default", podObject(""), nil), "empty image"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, resp := post(t, wh, PathValidate, tc.body)
			if code != http.StatusOK {
				t.Fatalf("status %d", code)
			}
			if resp.Allowed || !strings.Contains(message(resp), tc.want) {
				t.Fatalf("allowed %v: %q, want a denial containing %q", resp.Allowed, message(resp), tc.want)
			}
		})
	}
}

// TestDeadlineHangingRegistry: a registry that accepts connections and never
// answers is denied within the deadline, by tag and by digest, and the
// denial says so.
func TestDeadlineHangingRegistry(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	accepted := make(chan net.Conn, 64)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			accepted <- c // held open, never answered
		}
	}()
	t.Cleanup(func() {
		l.Close()
		for {
			select {
			case c := <-accepted:
				c.Close()
			default:
				return
			}
		}
	})
	key := newTestKey(t)
	wh := newTestWebhook(t, Source{PolicyFile: keyPolicy(t, t.TempDir(), key)}, WithDeadline(300*time.Millisecond))
	host := l.Addr().String()
	for _, image := range []string{host + "/team/app:v1", host + "/team/app@sha256:" + strings.Repeat("1", 64)} {
		start := time.Now()
		resp := decide(t, wh, "default", image)
		if resp.Allowed || !strings.Contains(message(resp), "did not finish in time") {
			t.Fatalf("%s: allowed %v: %s", image, resp.Allowed, message(resp))
		}
		t.Logf("%s denied after %s", image, time.Since(start).Round(time.Millisecond))
	}
	if got := counterValue(t, wh, "twinforge_admission_decisions_total", `result="denied_timeout"`); got != 2 {
		t.Fatalf("timeout decisions = %v, want 2", got)
	}

	// The API server's own timeout (?timeout=, as it calls webhooks) cuts
	// the default deadline short.
	wh = newTestWebhook(t, Source{PolicyFile: keyPolicy(t, t.TempDir(), key)})
	code, resp := post(t, wh, PathValidate+"?timeout=500ms", reviewBody(t, podKind, admissionv1.Create, "default", podObject(host+"/team/other:v1"), nil))
	if code != http.StatusOK || resp.Allowed || !strings.Contains(message(resp), "did not finish in time") {
		t.Fatalf("with ?timeout=500ms: %d %s", code, message(resp))
	}
}

// TestInsecureRegistryRefused: without WithInsecureLoopbackUnsafe plain
// HTTP is refused, even on loopback.
func TestInsecureRegistryRefused(t *testing.T) {
	reg := newMemRegistry(t)
	key := newTestKey(t)
	good := signedImage(t, reg.host, "team/app", "v1", key.signer(t))
	wh, err := New(Source{PolicyFile: keyPolicy(t, t.TempDir(), key)}, WithPollInterval(0), WithDenialReasonsUnsafe())
	if err != nil {
		t.Fatal(err)
	}
	defer wh.Close()
	before := reg.total()
	resp := decide(t, wh, "default", good.pinned)
	if resp.Allowed || !strings.Contains(message(resp), "plain HTTP") {
		t.Fatalf("allowed %v: %s", resp.Allowed, message(resp))
	}
	if reg.total() != before {
		t.Fatalf("the registry was reached over plain HTTP: %v", reg.requests[before:])
	}
}

// TestHealthAndMetrics: /healthz, /readyz and /metrics answer, and the
// metrics count requests, decisions and cache lookups.
func TestHealthAndMetrics(t *testing.T) {
	reg := newMemRegistry(t)
	key := newTestKey(t)
	good := signedImage(t, reg.host, "team/app", "v1", key.signer(t))
	wh := newTestWebhook(t, Source{PolicyFile: keyPolicy(t, t.TempDir(), key)})
	for _, p := range []string{PathHealthz, PathReadyz} {
		rec := newRecorder()
		wh.ServeHTTP(rec, mustRequest(t, http.MethodGet, p))
		if rec.Code != http.StatusOK {
			t.Fatalf("%s: %d", p, rec.Code)
		}
	}
	decide(t, wh, "default", good.pinned)
	decide(t, wh, "default", good.pinned)
	for metric, want := range map[string]float64{
		`twinforge_admission_requests_total{code="200",endpoint="/validate"}`:        2,
		`twinforge_admission_reviews_total{allowed="true",endpoint="/validate"}`:     2,
		`twinforge_admission_decisions_total{result="admitted"}`:                     2,
		`twinforge_admission_cache_lookups_total{outcome="miss"}`:                    1,
		`twinforge_admission_cache_lookups_total{outcome="hit"}`:                     1,
		`twinforge_admission_request_duration_seconds_count{endpoint="/validate"}`:   2,
		`twinforge_admission_verification_duration_seconds_count{result="admitted"}`: 1,
	} {
		name, labels, _ := strings.Cut(metric, "{")
		if got := counterValue(t, wh, name, strings.TrimSuffix(labels, "}")); got != want {
			t.Errorf("%s = %v, want %v", metric, got, want)
		}
	}
}

func newRecorder() *httptest.ResponseRecorder { return httptest.NewRecorder() }

// monitoring is the handler of a webhook's monitoring endpoints.
func monitoring(h http.Handler) http.Handler {
	if w, ok := h.(Webhook); ok {
		return w.Monitoring()
	}
	return h
}

func mustRequest(t testing.TB, method, path string) *http.Request {
	t.Helper()
	return httptest.NewRequest(method, path, nil)
}

// counterValue scrapes /metrics and returns the value of the sample name
// whose labels contain labels ("" for any); 0 when there is none.
func counterValue(t testing.TB, h http.Handler, name, labels string) float64 {
	t.Helper()
	rec := newRecorder()
	monitoring(h).ServeHTTP(rec, mustRequest(t, http.MethodGet, PathMetrics))
	if rec.Code != http.StatusOK {
		t.Fatalf("/metrics: %d", rec.Code)
	}
	for _, line := range strings.Split(rec.Body.String(), "\n") {
		if !strings.HasPrefix(line, name+"{") && !strings.HasPrefix(line, name+" ") {
			continue
		}
		series, value, ok := strings.Cut(line, " ")
		if !ok || !strings.Contains(series, labels) {
			continue
		}
		var v float64
		if _, err := fmt.Sscan(value, &v); err != nil {
			t.Fatalf("metric line %q: %v", line, err)
		}
		return v
	}
	return 0
}

// Without mutation nothing pins a tag to the digest verified: a registry
// that answers the kubelet another digest than the webhook, or a node's
// stale copy of the tag, runs an image nobody verified. So a webhook that
// only validates denies images named by tag, unless their tenant allows
// tags; images by digest are decided as ever.
func TestValidationOnlyRefusesTags(t *testing.T) {
	reg := newMemRegistry(t)
	key := newTestKey(t)
	dir := t.TempDir()
	good := signedImage(t, reg.host, "team-a/app", "v1", key.signer(t))
	other := signedImage(t, reg.host, "team-b/app", "v1", key.signer(t))
	policy := keyPolicy(t, dir, key)
	config := filepath.Join(dir, "config.yaml")
	writeTestFile(t, config, fmt.Sprintf(`apiVersion: twinforge.dev/v1
kind: AdmissionConfig
tenants:
  - name: team-a
    namespaces: [team-a]
    images: ["%[1]s/team-a/**"]
    policy: %[2]s
  - name: team-b
    namespaces: [team-b]
    images: ["%[1]s/team-b/**"]
    policy: %[2]s
    allowTags: true
`, reg.host, policy))
	wh := newTestWebhook(t, Source{ConfigFile: config}, WithValidationOnly())
	before := reg.total()
	resp := decide(t, wh, "team-a", good.tag)
	if resp.Allowed || !strings.Contains(message(resp), "named by tag") || !strings.Contains(message(resp), "allowTags") {
		t.Fatalf("a tag without mutation: allowed %v: %s", resp.Allowed, message(resp))
	}
	if reg.total() != before {
		t.Error("the registry was asked about a tag that is denied anyway")
	}
	if resp := decide(t, wh, "team-a", good.pinned); !resp.Allowed {
		t.Fatalf("by digest: %s", message(resp))
	}
	if resp := decide(t, wh, "team-b", other.tag); !resp.Allowed {
		t.Fatalf("a tenant with allowTags: %s", message(resp))
	}
	// The default, with mutation, admits tags at /validate: /mutate pins
	// them first.
	if resp := decide(t, newTestWebhook(t, Source{ConfigFile: config}), "team-a", good.tag); !resp.Allowed {
		t.Fatalf("with mutation: %s", message(resp))
	}
	if resp := decide(t, newTestWebhook(t, Source{ConfigFile: config}, WithValidationOnly(), WithAllowTagsUnsafe()), "team-a", good.tag); !resp.Allowed {
		t.Fatalf("WithAllowTagsUnsafe: %s", message(resp))
	}
}
