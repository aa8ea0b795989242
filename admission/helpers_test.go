package admission

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/sigstore/sigstore-go/pkg/root"
	admissionv1 "k8s.io/api/admission/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/twinforge/twinforge/attest"
	"github.com/twinforge/twinforge/attest/verify"
	"github.com/twinforge/twinforge/distribute"
)

// testLogger writes into the test log until the test ends; goroutines that
// outlive it (a verification finishing for the cache) are not an error.
func testLogger(t testing.TB) *slog.Logger {
	w := &testLogWriter{t: t}
	t.Cleanup(func() { w.mu.Lock(); w.done = true; w.mu.Unlock() })
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testLogWriter struct {
	t    testing.TB
	mu   sync.Mutex
	done bool
}

func (w *testLogWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(strings.TrimSpace(string(p)))
	}
	return len(p), nil
}

// testKey is a fresh signing key: the private key file the signer reads and
// the public key file a policy names.
type testKey struct{ priv, pub string }

func newTestKey(t testing.TB) testKey {
	t.Helper()
	dir := t.TempDir()
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
	k := testKey{priv: filepath.Join(dir, "key.pem"), pub: filepath.Join(dir, "key.pub")}
	writeTestFile(t, k.priv, string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})))
	writeTestFile(t, k.pub, string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub})))
	return k
}

func (k testKey) signer(t testing.TB) attest.Signer {
	t.Helper()
	s, err := attest.NewKeySigner(k.priv, nil)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// keyPolicy writes a policy trusting key alone, offline (no timestamps or
// log), that requires a reproduced build.
func keyPolicy(t testing.TB, dir string, k testKey) string {
	t.Helper()
	path := filepath.Join(dir, "policy-"+filepath.Base(filepath.Dir(k.pub))+".yaml")
	writeTestFile(t, path, fmt.Sprintf(`apiVersion: twinforge.dev/v2
kind: Policy
identities:
  - publicKey: %q
requireSignedTimestamp: false
requireTransparencyLog: false
`, k.pub))
	return path
}

func writeTestFile(t testing.TB, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	// Through a rename, as ConfigMap volumes and editors replace files.
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// randomImage is a fresh image with its digest and manifest.
func randomImage(t testing.TB) (v1.Image, string, []byte) {
	t.Helper()
	img, err := random.Image(512, 1)
	if err != nil {
		t.Fatal(err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	m, err := img.RawManifest()
	if err != nil {
		t.Fatal(err)
	}
	return img, d.String(), m
}

var (
	lockOnce sync.Once
	lockFix  *attest.Lock
	lockErr  error
)

// provenance is the twinforge provenance of an image, signed statement
// ready: reproduced records a rebuild with the same digest.
func provenance(t testing.TB, imageName, digest string, reproduced bool) []byte {
	t.Helper()
	lockOnce.Do(func() {
		data, err := os.ReadFile(filepath.Join("testdata", "twinforge.lock"))
		if err != nil {
			lockErr = err
			return
		}
		lockFix, lockErr = attest.ParseLock(data)
	})
	if lockErr != nil {
		t.Fatal(lockErr)
	}
	info := attest.BuildInfo{
		Subject:     attest.Subject{Name: imageName, Digest: digest},
		Lock:        lockFix,
		ContextPath: ".",
		Build:       attest.Builder{BuildKitVersion: "v0.34.2", Snapshotter: "overlayfs"},
		StartedOn:   time.Now().Add(-time.Minute),
		FinishedOn:  time.Now(),
	}
	if reproduced {
		info.Rebuild = &attest.Rebuild{Digest: digest, Builder: attest.Builder{BuildKitVersion: "v0.34.2", Snapshotter: "native"}}
	}
	st, err := attest.Provenance(info)
	if err != nil {
		t.Fatal(err)
	}
	data, err := attest.MarshalStatement(st)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// evidenceFor signs an image's provenance and manifest and returns them as
// the referrers twinforge build --push attaches.
func evidenceFor(t testing.TB, s attest.Signer, imageName, digest string, manifest []byte, reproduced bool) []distribute.Artifact {
	t.Helper()
	bs, err := attest.SignBuild(context.Background(), s, provenance(t, imageName, digest, reproduced), manifest)
	if err != nil {
		t.Fatal(err)
	}
	enc := func(b any) []byte {
		data, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		return data
	}
	return []distribute.Artifact{
		{ArtifactType: verify.BundleArtifactType, Data: enc(bs.Provenance), Annotations: map[string]string{
			verify.AnnotationBundleContent: verify.ContentDSSE, verify.AnnotationPredicateType: verify.PredicateSLSAProvenance1}},
		{ArtifactType: verify.BundleArtifactType, Data: enc(bs.Image), Annotations: map[string]string{
			verify.AnnotationBundleContent: verify.ContentMessageSignature}},
	}
}

// pushed is an image in a registry.
type pushed struct {
	repo   string // HOST/path
	tag    string // HOST/path:tag
	digest string
	pinned string // HOST/path@digest
}

// push pushes img with artifacts to host/repoPath:tag.
func push(t testing.TB, host, repoPath, tag string, img v1.Image, artifacts []distribute.Artifact) pushed {
	t.Helper()
	ref, err := name.ParseReference(host + "/" + repoPath + ":" + tag)
	if err != nil {
		t.Fatal(err)
	}
	res, err := distribute.Push(context.Background(), img, ref, artifacts, distribute.WithInsecureLoopbackUnsafe())
	if err != nil {
		t.Fatal(err)
	}
	repo := host + "/" + repoPath
	return pushed{repo: repo, tag: repo + ":" + tag, digest: res.Digest.String(), pinned: repo + "@" + res.Digest.String()}
}

// signedImage pushes a fresh image, signed by s with a reproduced
// provenance.
func signedImage(t testing.TB, host, repoPath, tag string, s attest.Signer) pushed {
	t.Helper()
	img, d, m := randomImage(t)
	return push(t, host, repoPath, tag, img, evidenceFor(t, s, host+"/"+repoPath, d, m, true))
}

// memRegistry is go-containerregistry's in-process registry, counting the
// requests it serves.
type memRegistry struct {
	*httptest.Server
	host string

	mu       sync.Mutex
	requests []string // "METHOD path"
	// gate, when set, is called before each request is served.
	gate func(*http.Request)
}

// newMemRegistry starts a registry with the OCI 1.1 referrers API.
func newMemRegistry(t testing.TB) *memRegistry { return startMemRegistry(t, true) }

// startMemRegistry starts a registry with or without the referrers API
// (without it, GET /v2/<name>/referrers/<digest> answers 404 and clients
// use the referrers tag schema).
func startMemRegistry(t testing.TB, referrersAPI bool) *memRegistry {
	t.Helper()
	r := &memRegistry{}
	h := registry.New(registry.WithReferrersSupport(referrersAPI), registry.Logger(log.New(io.Discard, "", 0)))
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.mu.Lock()
		r.requests = append(r.requests, req.Method+" "+req.URL.Path)
		gate := r.gate
		r.mu.Unlock()
		if gate != nil {
			gate(req)
		}
		h.ServeHTTP(w, req)
	}))
	t.Cleanup(r.Close)
	r.host = strings.TrimPrefix(r.URL, "http://")
	return r
}

// count returns how many requests so far contain s in "METHOD path".
func (r *memRegistry) count(s string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, q := range r.requests {
		if strings.Contains(q, s) {
			n++
		}
	}
	return n
}

func (r *memRegistry) total() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.requests)
}

func (r *memRegistry) setGate(g func(*http.Request)) {
	r.mu.Lock()
	r.gate = g
	r.mu.Unlock()
}

// newTestWebhook is New for tests: no polling unless asked, plain HTTP to
// loopback registries, logs into the test log, the reason of every denial
// in its message (TestDenialsRevealNothing tests the default). It is closed
// at cleanup.
func newTestWebhook(t testing.TB, src Source, opts ...Option) *webhook {
	t.Helper()
	base := []Option{WithPollInterval(0), WithInsecureLoopbackUnsafe(), WithLogger(testLogger(t)), WithDenialReasonsUnsafe()}
	wh, err := New(src, append(base, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { wh.Close() })
	return wh.(*webhook)
}

// podObject is a pod running images as containers.
func podObject(images ...string) *corev1.Pod {
	p := &corev1.Pod{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{Name: "app"},
	}
	for i, img := range images {
		p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: fmt.Sprintf("c%d", i), Image: img})
	}
	return p
}

// deploymentObject is a deployment whose template runs images.
func deploymentObject(images ...string) *appsv1.Deployment {
	d := &appsv1.Deployment{
		TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
		ObjectMeta: metav1.ObjectMeta{Name: "app"},
	}
	d.Spec.Template.Spec = podObject(images...).Spec
	return d
}

var (
	podKind        = metav1.GroupVersionKind{Version: "v1", Kind: "Pod"}
	deploymentKind = metav1.GroupVersionKind{Group: "apps", Version: "v1", Kind: "Deployment"}
)

// reviewBody is an AdmissionReview request about obj.
func reviewBody(t testing.TB, kind metav1.GroupVersionKind, op admissionv1.Operation, namespace string, obj, old any) []byte {
	t.Helper()
	req := &admissionv1.AdmissionRequest{
		UID: types.UID(fmt.Sprintf("uid-%d", time.Now().UnixNano())), Kind: kind,
		Namespace: namespace, Name: "app", Operation: op,
	}
	var err error
	if obj != nil {
		if req.Object.Raw, err = json.Marshal(obj); err != nil {
			t.Fatal(err)
		}
	}
	if old != nil {
		if req.OldObject.Raw, err = json.Marshal(old); err != nil {
			t.Fatal(err)
		}
	}
	body, err := json.Marshal(admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Request:  req,
	})
	if err != nil {
		t.Fatal(err)
	}
	return body
}

// post sends body to the handler and returns the status and the response
// of a 200 answer.
func post(t testing.TB, h http.Handler, path string, body []byte) (int, *admissionv1.AdmissionResponse) {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		return rec.Code, nil
	}
	var review admissionv1.AdmissionReview
	if err := json.Unmarshal(rec.Body.Bytes(), &review); err != nil {
		t.Fatalf("response: %v\n%s", err, rec.Body)
	}
	if review.Response == nil {
		t.Fatalf("no response in %s", rec.Body)
	}
	return rec.Code, review.Response
}

// decide reviews a pod of images in namespace and returns the response.
func decide(t testing.TB, h http.Handler, namespace string, images ...string) *admissionv1.AdmissionResponse {
	t.Helper()
	code, resp := post(t, h, PathValidate, reviewBody(t, podKind, admissionv1.Create, namespace, podObject(images...), nil))
	if code != http.StatusOK {
		t.Fatalf("status %d", code)
	}
	return resp
}

func message(r *admissionv1.AdmissionResponse) string {
	if r.Result == nil {
		return ""
	}
	return r.Result.Message
}

// testTrustedRoot is a Sigstore trusted root holding one fresh timestamp
// authority: a different document on every call.
func testTrustedRoot(t testing.TB) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: "twinforge test TSA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := root.NewTrustedRoot(root.TrustedRootMediaType01, nil, nil,
		[]root.TimestampingAuthority{&root.SigstoreTimestampingAuthority{Root: cert, Leaf: cert, ValidityPeriodStart: cert.NotBefore, URI: "https://tsa.test"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	data, err := tr.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	return data
}
