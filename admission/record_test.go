package admission

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"strings"
	"testing"

	jsonpatch "gopkg.in/evanphx/json-patch.v4"
	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
)

func newRecordKey(t testing.TB) ed25519.PrivateKey {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return priv
}

// mutatePod sends a pod review to /mutate and returns the pod the API
// server would store: the patch applied.
func mutatePod(t *testing.T, wh *webhook, op admissionv1.Operation, namespace string, pod, old *corev1.Pod) *corev1.Pod {
	t.Helper()
	var oldObj any
	if old != nil {
		oldObj = old
	}
	_, resp := post(t, wh, PathMutate, reviewBody(t, podKind, op, namespace, pod, oldObj))
	if !resp.Allowed {
		t.Fatalf("denied: %s", message(resp))
	}
	raw, err := json.Marshal(pod)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Patch != nil {
		p, err := jsonpatch.DecodePatch(resp.Patch)
		if err != nil {
			t.Fatalf("patch %s: %v", resp.Patch, err)
		}
		if raw, err = p.Apply(raw); err != nil {
			t.Fatalf("applying %s: %v", resp.Patch, err)
		}
	}
	var out corev1.Pod
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatal(err)
	}
	return &out
}

// TestRecord: the mutating webhook signs what it verified onto the pod; a
// record edited, moved to another namespace, signed by another key or cut
// does not verify; an update that changes no image gets the old record
// back, one that changes an image a new record keeping the other entries.
func TestRecord(t *testing.T) {
	reg := newMemRegistry(t)
	key := newTestKey(t)
	app := signedImage(t, reg.host, "team/app", "v1", key.signer(t))
	side := signedImage(t, reg.host, "team/sidecar", "v1", key.signer(t))
	app2 := signedImage(t, reg.host, "team/app", "v2", key.signer(t))
	policy := keyPolicy(t, t.TempDir(), key)
	recordKey := newRecordKey(t)
	pub := []ed25519.PublicKey{recordKey.Public().(ed25519.PublicKey)}

	if _, err := makeOptions(WithRecordKey(recordKey), WithValidationOnly()); err == nil {
		t.Error("WithRecordKey with WithValidationOnly accepted")
	}
	wh := newTestWebhook(t, Source{PolicyFile: policy}, WithMutation(), WithRecordKey(recordKey))

	pod := podObject(app.tag)
	pod.Spec.InitContainers = []corev1.Container{{Name: "init", Image: side.tag}}
	admitted := mutatePod(t, wh, admissionv1.Create, "team-a", pod, nil)
	rec, err := VerifyRecord(admitted.Annotations, "team-a", pub)
	if err != nil {
		t.Fatalf("record of the admitted pod: %v\n%v", err, admitted.Annotations)
	}
	want := []RecordedContainer{
		{Field: "containers", Name: "c0", Image: app.pinned, Digest: app.digest},
		{Field: "initContainers", Name: "init", Image: side.pinned, Digest: side.digest},
	}
	if len(rec.Containers) != len(want) {
		t.Fatalf("record containers %+v, want %+v", rec.Containers, want)
	}
	for i, c := range rec.Containers {
		w := want[i]
		if c.Field != w.Field || c.Name != w.Name || c.Image != w.Image || c.Digest != w.Digest ||
			len(c.Tenants) != 1 || c.Tenants[0].Name != "default" || c.Tenants[0].Policy == "" {
			t.Errorf("container %d: %+v, want %+v with the tenant default", i, c, w)
		}
	}
	if admitted.Spec.Containers[0].Image != app.pinned || rec.PolicyVersion != wh.snap.Load().version ||
		rec.KeyID != RecordKeyID(pub[0]) || rec.Time.IsZero() {
		t.Errorf("pod image %s, record %+v", admitted.Spec.Containers[0].Image, rec)
	}

	// Forgeries.
	forged := func(edit func(map[string]string)) map[string]string {
		a := map[string]string{}
		for k, v := range admitted.Annotations {
			a[k] = v
		}
		edit(a)
		return a
	}
	for _, tc := range []struct {
		name        string
		annotations map[string]string
		namespace   string
		keys        []ed25519.PublicKey
		want        error
	}{
		{"another digest", forged(func(a map[string]string) {
			a[AnnotationRecord] = strings.Replace(a[AnnotationRecord], app.digest, side.digest, 1)
		}), "team-a", pub, ErrRecordInvalid},
		{"another namespace", admitted.Annotations, "team-b", pub, ErrRecordInvalid},
		{"another key", admitted.Annotations, "team-a", []ed25519.PublicKey{newRecordKey(t).Public().(ed25519.PublicKey)}, ErrRecordInvalid},
		{"no signature", forged(func(a map[string]string) { delete(a, AnnotationRecordSignature) }), "team-a", pub, ErrRecordInvalid},
		{"garbage signature", forged(func(a map[string]string) { a[AnnotationRecordSignature] = "bm90IGEgc2lnbmF0dXJl" }), "team-a", pub, ErrRecordInvalid},
		{"none", map[string]string{"other": "x"}, "team-a", pub, ErrNoRecord},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := VerifyRecord(tc.annotations, tc.namespace, tc.keys); !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}

	// An update that changes no image but the record: the old one comes
	// back.
	edited := admitted.DeepCopy()
	edited.Annotations[AnnotationRecord] = strings.Replace(edited.Annotations[AnnotationRecord], app.digest, side.digest, 1)
	edited.Labels = map[string]string{"touched": "yes"}
	restored := mutatePod(t, wh, admissionv1.Update, "team-a", edited, admitted)
	if restored.Annotations[AnnotationRecord] != admitted.Annotations[AnnotationRecord] ||
		restored.Annotations[AnnotationRecordSignature] != admitted.Annotations[AnnotationRecordSignature] {
		t.Errorf("the edited record stayed: %v", restored.Annotations)
	}
	// Removed: back too.
	cut := admitted.DeepCopy()
	cut.Annotations = nil
	if restored := mutatePod(t, wh, admissionv1.Update, "team-a", cut, admitted); restored.Annotations[AnnotationRecord] != admitted.Annotations[AnnotationRecord] {
		t.Errorf("the removed record stayed removed: %v", restored.Annotations)
	}

	// An image changed: a new record, the init container's entry kept.
	changed := admitted.DeepCopy()
	changed.Spec.Containers[0].Image = app2.tag
	updated := mutatePod(t, wh, admissionv1.Update, "team-a", changed, admitted)
	rec2, err := VerifyRecord(updated.Annotations, "team-a", pub)
	if err != nil {
		t.Fatal(err)
	}
	if c, ok := rec2.Container("containers", "c0"); !ok || c.Digest != app2.digest || c.Image != app2.pinned {
		t.Errorf("new entry %+v", c)
	}
	if c, ok := rec2.Container("initContainers", "init"); !ok || c.Digest != side.digest {
		t.Errorf("kept entry %+v", c)
	}
}

// TestRecordKeys reads keys as openssl writes them.
func TestRecordKeys(t *testing.T) {
	priv := newRecordKey(t)
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParseRecordKey(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	if err != nil || !got.Equal(priv) {
		t.Fatalf("private key: %v", err)
	}
	pubDER, err := x509.MarshalPKIXPublicKey(priv.Public())
	if err != nil {
		t.Fatal(err)
	}
	other := newRecordKey(t)
	otherDER, _ := x509.MarshalPKIXPublicKey(other.Public())
	keys, err := ParseRecordPublicKeys(append(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}),
		pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: otherDER})...))
	if err != nil || len(keys) != 2 || !keys[0].Equal(priv.Public()) {
		t.Fatalf("public keys: %v %d", err, len(keys))
	}
	if _, err := ParseRecordKey([]byte("junk")); err == nil {
		t.Error("junk accepted as a private key")
	}
	if _, err := ParseRecordPublicKeys(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})); err == nil {
		t.Error("a private key accepted as public")
	}
}
