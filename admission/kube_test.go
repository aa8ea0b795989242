package admission

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twinforge/twinforge/attest"
	"github.com/twinforge/twinforge/internal/kubetest"
	"github.com/twinforge/twinforge/internal/regtest"
	"github.com/twinforge/twinforge/internal/sigstack"
	"github.com/twinforge/twinforge/internal/testenv"
)

// TestKubernetes is the proof: a real kube-apiserver calls the webhook,
// registered with Manifests' output (clientConfig.url on loopback), for
// kubectl apply of pods and workloads whose images are in real registries
// (one with the referrers API, the CNCF distribution registry without it),
// signed keylessly through a real Fulcio, timestamp authority and Rekor v2.
// kubectl shows each denial with the image and the failed check.
func TestKubernetes(t *testing.T) {
	cluster := kubetest.Start(t) // skips under -short
	refReg := regtest.StartReferrers(t)
	distReg := regtest.StartDistribution(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	st, err := sigstack.Start(ctx, filepath.Join(t.TempDir(), "sigstack"))
	if err != nil {
		t.Fatalf("Sigstore stack (make sigstore-tools): %v", err)
	}
	t.Cleanup(func() {
		if err := st.Close(); err != nil {
			t.Log(err)
		}
	})

	const teamA, teamB = "ci@team-a.test", "ci@team-b.test"
	signerFor := func(email string) attest.Signer {
		tok, err := st.IDToken(ctx, sigstack.Claims{Subject: email, Email: email})
		if err != nil {
			t.Fatal(err)
		}
		s, err := attest.NewKeylessSigner(ctx, attest.KeylessConfig{
			FulcioURL: st.FulcioURL(), TSAURL: st.TSAURL(), RekorURL: st.RekorURL(), IDToken: tok, TrustedRoot: st.TrustedRoot(),
		})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	signerA, signerB := signerFor(teamA), signerFor(teamB)

	// The images.
	good := signedImage(t, refReg.Host, "team-a/app", "v1", signerA)
	fallback := signedImage(t, distReg.Host, "team-a/worker", "v1", signerA) // referrers tag schema
	img, _, _ := randomImage(t)
	unsigned := push(t, refReg.Host, "team-a/unsigned", "v1", img, nil)
	_, otherDigest, otherManifest := randomImage(t)
	img, _, _ = randomImage(t)
	tampered := push(t, refReg.Host, "team-a/tampered", "v1", img, evidenceFor(t, signerA, refReg.Host+"/team-a/tampered", otherDigest, otherManifest, true))
	img, d, m := randomImage(t)
	unreproduced := push(t, refReg.Host, "team-a/unreproduced", "v1", img, evidenceFor(t, signerA, refReg.Host+"/team-a/unreproduced", d, m, false))
	forged := signedImage(t, refReg.Host, "team-a/forged", "v1", signerB)
	teamBImage := signedImage(t, refReg.Host, "team-b/app", "v1", signerB)

	// The webhook's files: two tenants, keyless policies, the stack's
	// trusted root, a revocation list.
	dir := t.TempDir()
	trustedRoot := filepath.Join(dir, "trusted_root.json")
	writeTestFile(t, trustedRoot, string(st.TrustedRootJSON()))
	for team, email := range map[string]string{"team-a": teamA, "team-b": teamB} {
		writeTestFile(t, filepath.Join(dir, team+".yaml"), fmt.Sprintf(`apiVersion: twinforge.dev/v2
kind: Policy
identities:
  - issuer: %q
    subject: %q
builderIDs: [%q]
maxAge: 1d
`, st.OIDCIssuer(), email, attest.DefaultBuilderID))
	}
	config := filepath.Join(dir, "config.yaml")
	writeTestFile(t, config, fmt.Sprintf(`apiVersion: twinforge.dev/v1
kind: AdmissionConfig
tenants:
  - name: team-a
    namespaces: [team-a]
    images: ["%[1]s/team-a/**", "%[2]s/team-a/**"]
    policy: team-a.yaml
  - name: team-b
    namespaces: [team-b]
    images: ["%[1]s/team-b/**"]
    policy: team-b.yaml
`, refReg.Host, distReg.Host))
	revocations := filepath.Join(dir, "revoked.txt")
	writeTestFile(t, revocations, "")

	// The webhook, on loopback with a certificate the API server trusts
	// through the caBundle.
	wh := newTestWebhook(t, Source{ConfigFile: config, TrustedRootFile: trustedRoot, RevocationsFile: revocations}, WithMutation())
	pki := testenv.NewPKI(t, t.TempDir())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sctx, stop := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() {
		served <- Serve(sctx, ln, wh, ServeConfig{CertFile: pki.ServerCert, KeyFile: pki.ServerKey, Logger: testLogger(t)})
	}()
	t.Cleanup(func() {
		stop()
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})

	kubectl := func(stdin []byte, args ...string) (string, error) {
		t.Helper()
		out, _, err := cluster.Kubectl(ctx, stdin, args...)
		return out, err
	}
	for _, ns := range []string{"twinforge-system", "team-a", "team-b"} {
		if _, err := kubectl(nil, "create", "namespace", ns); err != nil {
			t.Fatal(err)
		}
	}
	ca, err := os.ReadFile(pki.CA)
	if err != nil {
		t.Fatal(err)
	}
	var manifests bytes.Buffer
	if err := WriteManifests(&manifests, ManifestOptions{
		Namespace: "twinforge-system", CABundle: ca,
		URL: "https://" + ln.Addr().String() + PathValidate,
	}); err != nil {
		t.Fatal(err)
	}
	if out, err := kubectl(manifests.Bytes(), "apply", "-f", "-"); err != nil {
		t.Fatalf("registering the webhook: %v\n%s", err, manifests.String())
	} else {
		t.Logf("registered:\n%s", out)
	}

	// The API server picks the configurations up asynchronously: probe with
	// server-side dry runs (the webhooks have no side effects) until an
	// unsigned pod is denied by them.
	probe := podYAML("probe", "team-a", unsigned.tag)
	for {
		_, err := kubectl(probe, "apply", "--dry-run=server", "-f", "-")
		if err != nil && strings.Contains(err.Error(), "denied the request") {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("the webhook never took effect: %v\n%s", err, cluster.Logs("kube-apiserver"))
		}
		time.Sleep(200 * time.Millisecond)
	}

	for _, tc := range []struct {
		name     string
		manifest []byte
		admitted bool
		want     []string // in kubectl's error
	}{
		{"signed pod by tag", podYAML("good", "team-a", good.tag), true, nil},
		{"signed deployment by digest, registry without referrers API", deploymentYAML("worker", "team-a", fallback.pinned, ""), true, nil},
		{"unsigned pod", podYAML("unsigned", "team-a", unsigned.tag), false, []string{unsigned.tag, unsigned.digest, `check "signature"`, "image is not signed"}},
		{"tampered pod", podYAML("tampered", "team-a", tampered.tag), false, []string{tampered.tag, `check "subject"`}},
		// The builder's own record is information; no verdicts are asked for.
		{"unreproduced pod", podYAML("unreproduced", "team-a", unreproduced.tag), true, nil},
		{"unknown image", podYAML("unknown", "team-a", refReg.Host+"/team-a/nothing:v1"), false, []string{"not found"}},
		{"another tenant's signer", podYAML("forged", "team-a", forged.tag), false, []string{`tenant "team-a"`, `check "identity"`}},
		{"another tenant's image", podYAML("foreign", "team-a", teamBImage.tag), false, []string{teamBImage.tag, `no tenant of namespace "team-a"`}},
		{"the other tenant's own image", podYAML("own", "team-b", teamBImage.tag), true, nil},
		{"deployment with an unsigned init container", deploymentYAML("mixed", "team-a", good.tag, unsigned.tag), false, []string{unsigned.tag, `check "signature"`}},
		{"cronjob with an unsigned image", cronJobYAML("nightly", "team-a", unsigned.pinned), false, []string{`check "signature"`}},
		{"signed pod mounting an unsigned image volume", podVolumeYAML("volume-unsigned", "team-a", good.tag, unsigned.tag), false, []string{unsigned.tag, unsigned.digest, `check "signature"`}},
		{"signed pod mounting a signed image volume", podVolumeYAML("volume-signed", "team-a", good.tag, fallback.tag), true, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := kubectl(tc.manifest, "apply", "-f", "-")
			if tc.admitted {
				if err != nil {
					t.Fatalf("denied: %v", err)
				}
				t.Log(strings.TrimSpace(out))
				return
			}
			if err == nil {
				t.Fatalf("admitted: %s", out)
			}
			msg := err.Error()
			t.Logf("kubectl: %s", msg)
			for _, w := range append([]string{"denied the request"}, tc.want...) {
				if !strings.Contains(msg, w) {
					t.Errorf("kubectl's error does not contain %q", w)
				}
			}
		})
	}

	// Both webhooks were called: the validating one saw what the mutating
	// one admitted (and pinned).
	if n := counterValue(t, wh, "twinforge_admission_reviews_total", `allowed="true",endpoint="/validate"`); n < 3 {
		t.Errorf("the validating webhook admitted %v reviews, want at least 3", n)
	}
	// The mutating webhook pinned the admitted pod's tag to its digest.
	image, err := kubectl(nil, "get", "pod", "good", "-n", "team-a", "-o", "jsonpath={.spec.containers[0].image}")
	if err != nil || image != good.pinned {
		t.Fatalf("stored image %q (%v), want %s", image, err, good.pinned)
	}

	// And the image volume's reference, to its digest.
	ref, err := kubectl(nil, "get", "pod", "volume-signed", "-n", "team-a", "-o", "jsonpath={.spec.volumes[0].image.reference}")
	if err != nil || ref != fallback.pinned {
		t.Fatalf("stored image volume %q (%v), want %s", ref, err, fallback.pinned)
	}

	// Revoking the digest denies it at once, though it is cached.
	writeTestFile(t, revocations, good.digest+"\n")
	if err := wh.Reload(); err != nil {
		t.Fatal(err)
	}
	_, err = kubectl(podYAML("again", "team-a", good.tag), "apply", "-f", "-")
	if err == nil || !strings.Contains(err.Error(), "revoked") || !strings.Contains(err.Error(), good.digest) {
		t.Fatalf("revoked image: %v", err)
	}
	t.Logf("kubectl: %v", err)
}

func podYAML(name, namespace, image string) []byte {
	return mustJSON(map[string]any{
		"apiVersion": "v1", "kind": "Pod",
		"metadata": map[string]any{"name": name, "namespace": namespace},
		"spec":     map[string]any{"containers": []any{map[string]any{"name": "app", "image": image}}},
	})
}

// podVolumeYAML is a pod running image with the files of volumeImage
// mounted over its /usr/local/bin (an image volume).
func podVolumeYAML(name, namespace, image, volumeImage string) []byte {
	return mustJSON(map[string]any{
		"apiVersion": "v1", "kind": "Pod",
		"metadata": map[string]any{"name": name, "namespace": namespace},
		"spec": map[string]any{
			"containers": []any{map[string]any{"name": "app", "image": image,
				"volumeMounts": []any{map[string]any{"name": "tools", "mountPath": "/usr/local/bin"}}}},
			"volumes": []any{map[string]any{"name": "tools", "image": map[string]any{"reference": volumeImage, "pullPolicy": "IfNotPresent"}}},
		},
	})
}

func deploymentYAML(name, namespace, image, initImage string) []byte {
	spec := map[string]any{"containers": []any{map[string]any{"name": "app", "image": image}}}
	if initImage != "" {
		spec["initContainers"] = []any{map[string]any{"name": "init", "image": initImage}}
	}
	labels := map[string]any{"app": name}
	return mustJSON(map[string]any{
		"apiVersion": "apps/v1", "kind": "Deployment",
		"metadata": map[string]any{"name": name, "namespace": namespace},
		"spec": map[string]any{
			"selector": map[string]any{"matchLabels": labels},
			"template": map[string]any{"metadata": map[string]any{"labels": labels}, "spec": spec},
		},
	})
}

func cronJobYAML(name, namespace, image string) []byte {
	return mustJSON(map[string]any{
		"apiVersion": "batch/v1", "kind": "CronJob",
		"metadata": map[string]any{"name": name, "namespace": namespace},
		"spec": map[string]any{
			"schedule": "0 3 * * *",
			"jobTemplate": map[string]any{"spec": map[string]any{"template": map[string]any{"spec": map[string]any{
				"restartPolicy": "OnFailure",
				"containers":    []any{map[string]any{"name": "job", "image": image}},
			}}}},
		},
	})
}

func mustJSON(v any) []byte {
	data, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return data
}
