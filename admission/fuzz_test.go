package admission

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// FuzzAdmissionReview: any pod can POST to the webhook's port, and what
// the API server sends holds whatever a user wrote in the object. The
// webhook never panics, answers every well-formed review about the request
// it was asked (its uid), and admits only the one signed image the
// registry holds: never the unsigned one beside it, never anything else.
// "REGISTRY" in an input stands for the registry's host.
func FuzzAdmissionReview(f *testing.F) {
	reg := newMemRegistry(f)
	key := newTestKey(f)
	good := signedImage(f, reg.host, "team/app", "v1", key.signer(f))
	img, _, _ := randomImage(f)
	push(f, reg.host, "team/unsigned", "v1", img, nil)
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	wh, err := New(Source{PolicyFile: keyPolicy(f, f.TempDir(), key)}, WithPollInterval(0), WithInsecureLoopbackUnsafe(), WithLogger(quiet), WithMutation())
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { wh.Close() })

	placeholder := func(s string) string { return strings.ReplaceAll(s, reg.host, "REGISTRY") }
	for _, body := range [][]byte{
		reviewBody(f, podKind, admissionv1.Create, "default", podObject(good.tag), nil),
		reviewBody(f, podKind, admissionv1.Create, "default", podObject(good.pinned, reg.host+"/team/unsigned:v1"), nil),
		reviewBody(f, deploymentKind, admissionv1.Create, "default", deploymentObject(good.tag+"@"+good.digest), nil),
		reviewBody(f, podKind, admissionv1.Update, "default", podObject(good.tag, reg.host+"/team/unsigned:v1"), podObject(good.tag)),
		reviewBody(f, podKind, admissionv1.Update, "default", podObject(reg.host+"/team/unsigned:v1"), podObject(reg.host+"/team/unsigned:v2")),
		reviewBody(f, metav1.GroupVersionKind{Version: "v1", Kind: "ConfigMap"}, admissionv1.Create, "default", map[string]any{"data": map[string]string{"a": "b"}}, nil),
	} {
		f.Add([]byte(placeholder(string(body))))
	}
	f.Add([]byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u","kind":{"version":"v1","kind":"Pod"},"operation":"CREATE","object":{"spec":{"volumes":[{"name":"v","image":{"reference":"REGISTRY/team/unsigned:v1"}}]}}}}`))

	f.Fuzz(func(t *testing.T, body []byte) {
		body = bytes.ReplaceAll(body, []byte("REGISTRY"), []byte(reg.host))
		for _, path := range []string{PathValidate, PathMutate} {
			req := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			rec := httptest.NewRecorder()
			wh.ServeHTTP(rec, req)
			if rec.Code != http.StatusOK {
				continue
			}
			var in, out admissionv1.AdmissionReview
			if err := json.Unmarshal(body, &in); err != nil || in.Request == nil {
				t.Fatalf("answered 200 to a body that is no review (%v)", err)
			}
			if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil || out.Response == nil {
				t.Fatalf("answer is no review: %v\n%s", err, rec.Body)
			}
			if out.Response.UID != in.Request.UID {
				t.Fatalf("answered about uid %q, asked about %q", out.Response.UID, in.Request.UID)
			}
			if !out.Response.Allowed {
				continue
			}
			kind, ok := kindFor(in.Request.Kind)
			if !ok {
				t.Fatalf("admitted a %s", gvkString(in.Request.Kind))
			}
			images, err := kind.images(in.Request.Object.Raw)
			if err != nil {
				t.Fatalf("admitted an object the webhook cannot read: %v", err)
			}
			if in.Request.Operation == admissionv1.Update && len(in.Request.OldObject.Raw) > 0 {
				old, err := kind.images(in.Request.OldObject.Raw)
				if err != nil {
					t.Fatalf("admitted an update whose old object the webhook cannot read: %v", err)
				}
				images = introduced(images, old)
			}
			for _, im := range images {
				if !refersTo(im.Image, good) {
					t.Fatalf("admitted %q (at %s), which is not the signed image %s", im.Image, im.Path, good.pinned)
				}
			}
		}
	})
}

// refersTo reports whether image names the pushed image: its tag or its
// digest.
func refersTo(image string, p pushed) bool {
	ref, err := name.ParseReference(image)
	if err != nil || ref.Context().String() != p.repo {
		return false
	}
	if d, ok := ref.(name.Digest); ok {
		return d.DigestStr() == p.digest
	}
	return ref.Identifier() == strings.TrimPrefix(p.tag, p.repo+":")
}

// FuzzParseConfig: admission configurations are reloaded while the
// webhook runs. Parsing never panics, every refusal wraps
// ErrInvalidConfig, and what it accepts is complete: every tenant named
// once, with namespaces, image patterns (no tag or digest) and a policy.
func FuzzParseConfig(f *testing.F) {
	f.Add([]byte("apiVersion: twinforge.dev/v1\nkind: AdmissionConfig\ntenants:\n  - name: a\n    namespaces: [a, 'a-*']\n    images: ['r.example/a/**', 'r.example/shared/*']\n    policy: a.yaml\n"))
	f.Add([]byte("apiVersion: twinforge.dev/v1\nkind: AdmissionConfig\ntenants:\n  - {name: b, namespaces: ['[!k]*'], images: ['docker.io/library/?ginx'], policy: /p.yaml, allowTags: true}\n"))
	f.Add([]byte(`{"apiVersion":"twinforge.dev/v1","kind":"AdmissionConfig","tenants":[{"name":"c","namespaces":["*"],"images":["**"],"policy":"p"}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := ParseConfig(data, "/etc/twinforge")
		if err != nil {
			if !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("refusal is not ErrInvalidConfig: %v", err)
			}
			return
		}
		seen := map[string]bool{}
		for _, tn := range cfg.Tenants {
			switch {
			case tn.Name == "" || seen[tn.Name]:
				t.Fatalf("accepted tenant name %q twice or empty", tn.Name)
			case len(tn.namespaces) == 0 || len(tn.namespaces) != len(tn.Namespaces):
				t.Fatalf("tenant %q: %d namespace patterns compiled of %v", tn.Name, len(tn.namespaces), tn.Namespaces)
			case len(tn.images) == 0 || len(tn.images) != len(tn.Images):
				t.Fatalf("tenant %q: %d image patterns compiled of %v", tn.Name, len(tn.images), tn.Images)
			case !strings.HasPrefix(tn.Policy, "/"):
				t.Fatalf("tenant %q: policy path %q is not absolute", tn.Name, tn.Policy)
			}
			seen[tn.Name] = true
			for _, p := range tn.Images {
				if strings.Contains(p, "@") {
					t.Fatalf("tenant %q: accepted image pattern %q with a digest", tn.Name, p)
				}
			}
			_ = tn.covers("default", "docker.io/library/nginx")
		}
	})
}

// FuzzParseRevocations: a revocation list holds digests and comments
// only; parsing never panics and keeps only well-formed digests.
func FuzzParseRevocations(f *testing.F) {
	f.Add([]byte("# after the incident\nsha256:" + strings.Repeat("ab", 32) + "  # build 42\n\n"))
	f.Add([]byte("sha256:" + strings.Repeat("AB", 32) + "\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := parseRevocations(data)
		if err != nil {
			if !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("refusal is not ErrInvalidConfig: %v", err)
			}
			return
		}
		for d := range r {
			if !sha256Digest.MatchString(d) {
				t.Fatalf("kept %q", d)
			}
		}
	})
}

// FuzzImageReference: the image of a container is whatever its author
// wrote. The repository the webhook picks a policy by is the one the
// reference names, and the digest it pins a tag to (the mutation patch)
// names that same repository: the kubelet runs what was verified.
func FuzzImageReference(f *testing.F) {
	for _, s := range []string{"nginx", "nginx:1.27", "docker.io/library/nginx:latest", "registry.example:5000/team/app:v1",
		"localhost:5000", "127.0.0.1:5000/a/b/c:d", "r.example/app:v1@sha256:" + strings.Repeat("0", 64), "index.docker.io/x/y"} {
		f.Add(s)
	}
	digest := "sha256:" + strings.Repeat("5", 64)
	f.Fuzz(func(t *testing.T, image string) {
		ref, err := name.ParseReference(image)
		if err != nil {
			return
		}
		repo := canonicalRepository(ref.Context())
		pinned, ok := pin(image, digest)
		if _, isDigest := ref.(name.Digest); isDigest || strings.Contains(image, "@") {
			if ok {
				t.Fatalf("pinned %q, which is named by digest already, to %q", image, pinned)
			}
			return
		}
		if !ok {
			t.Fatalf("a tag reference %q was not pinned", image)
		}
		pref, err := name.ParseReference(pinned)
		if err != nil {
			t.Fatalf("pinned %q to %q, which does not parse: %v", image, pinned, err)
		}
		d, isDigest := pref.(name.Digest)
		if !isDigest || d.DigestStr() != digest {
			t.Fatalf("pinned %q to %q, which names no digest %s", image, pinned, digest)
		}
		if got := canonicalRepository(pref.Context()); got != repo {
			t.Fatalf("pinned %q (repository %s) to %q (repository %s)", image, repo, pinned, got)
		}
	})
}
