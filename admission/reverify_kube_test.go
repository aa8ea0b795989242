package admission

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/twinforge/twinforge/attest"
	"github.com/twinforge/twinforge/internal/kubetest"
	"github.com/twinforge/twinforge/internal/regtest"
	"github.com/twinforge/twinforge/internal/sigstack"
	"github.com/twinforge/twinforge/internal/testenv"
)

// TestKubernetesReverify is the proof of re-verification: a real
// kube-apiserver holds pods admitted by the webhook (and one created before
// the webhook was installed), whose images are in real registries, signed
// keylessly through a real Fulcio, timestamp authority and Rekor v2. The
// re-verifier lists them with the token of the ServiceAccount Manifests
// makes (so its RBAC is enough) and reports, through the metric, the log and
// Events kubectl shows, each image that no longer passes: when its digest is
// revoked (the digest the kubelet reports running, though the tag moved on)
// and when the trusted root is rotated; the metric clears when they pass
// again.
func TestKubernetesReverify(t *testing.T) {
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
	const teamA = "ci@team-a.test"
	tok, err := st.IDToken(ctx, sigstack.Claims{Subject: teamA, Email: teamA})
	if err != nil {
		t.Fatal(err)
	}
	signer, err := attest.NewKeylessSigner(ctx, attest.KeylessConfig{
		FulcioURL: st.FulcioURL(), TSAURL: st.TSAURL(), RekorURL: st.RekorURL(), IDToken: tok, TrustedRoot: st.TrustedRoot(),
	})
	if err != nil {
		t.Fatal(err)
	}

	app := signedImage(t, refReg.Host, "team-a/app", "v1", signer)
	first := signedImage(t, distReg.Host, "team-a/moving", "v1", signer) // referrers tag schema
	img, _, _ := randomImage(t)
	unsigned := push(t, refReg.Host, "team-a/unsigned", "v1", img, nil)

	dir := t.TempDir()
	trustedRoot := filepath.Join(dir, "trusted_root.json")
	writeTestFile(t, trustedRoot, string(st.TrustedRootJSON()))
	writeTestFile(t, filepath.Join(dir, "team-a.yaml"), fmt.Sprintf(`apiVersion: twinforge.dev/v2
kind: Policy
identities:
  - issuer: %q
    subject: %q
builderIDs: [%q]
maxAge: 1d
`, st.OIDCIssuer(), teamA, attest.DefaultBuilderID))
	config := filepath.Join(dir, "config.yaml")
	writeTestFile(t, config, fmt.Sprintf(`apiVersion: twinforge.dev/v1
kind: AdmissionConfig
tenants:
  - name: team-a
    namespaces: [team-a]
    images: ["%[1]s/team-a/**", "%[2]s/team-a/**"]
    policy: team-a.yaml
    allowTags: true
`, refReg.Host, distReg.Host))
	revocations := filepath.Join(dir, "revoked.txt")
	writeTestFile(t, revocations, "")

	kubectl := func(stdin []byte, args ...string) string {
		t.Helper()
		out, _, err := cluster.Kubectl(ctx, stdin, args...)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	for _, ns := range []string{"twinforge-system", "team-a"} {
		kubectl(nil, "create", "namespace", ns)
	}
	// Pods from before the webhook: one the webhook would have denied, and
	// one in the webhook's own (exempt) namespace.
	kubectl(podYAML("legacy", "team-a", unsigned.tag), "apply", "-f", "-")
	kubectl(podYAML("tooling", "twinforge-system", unsigned.tag), "apply", "-f", "-")

	// The webhook's configurations and its re-verification RBAC, as
	// Manifests makes them; the re-verifier authenticates as that
	// ServiceAccount.
	pki := testenv.NewPKI(t, t.TempDir())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ca, err := os.ReadFile(pki.CA)
	if err != nil {
		t.Fatal(err)
	}
	var manifests bytes.Buffer
	if err := WriteManifests(&manifests, ManifestOptions{
		Namespace: "twinforge-system", CABundle: ca, URL: "https://" + ln.Addr().String(), ReverifyInterval: time.Hour,
		// Tags stay in the pods, and are resolved again by each pass.
		ValidatingOnly: true,
	}); err != nil {
		t.Fatal(err)
	}
	t.Logf("registered:\n%s", kubectl(manifests.Bytes(), "apply", "-f", "-"))
	tokenFile := filepath.Join(dir, "token")
	writeTestFile(t, tokenFile, kubectl(nil, "create", "token", DefaultName, "-n", "twinforge-system", "--duration=1h"))
	if out := kubectl(nil, "auth", "can-i", "list", "pods", "--all-namespaces", "--as=system:serviceaccount:twinforge-system:"+DefaultName); strings.TrimSpace(out) != "yes" {
		t.Fatalf("the ServiceAccount may not list pods: %q", out)
	}

	log, logs := captureLogs(t)
	reports := make(chan *ReverifyReport)
	wh := newTestWebhook(t, Source{ConfigFile: config, TrustedRootFile: trustedRoot, RevocationsFile: revocations},
		WithReverification(KubeConfig{URL: cluster.URL, TokenFile: tokenFile, CAFile: cluster.CAFile}),
		WithReverifyInterval(time.Hour), WithReverifyExemptNamespaces("twinforge-system"), WithReverifyReports(reports),
		WithLogger(log), WithValidationOnly())
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
	next := func(trigger string) *ReverifyReport {
		t.Helper()
		select {
		case rep := <-reports:
			if rep.Trigger != trigger || rep.Error != "" {
				t.Fatalf("report %+v, want a %s pass", rep, trigger)
			}
			t.Logf("%s pass: %d pods, %d skipped, violations %v", rep.Trigger, rep.Pods, rep.Skipped, violationPods(rep))
			return rep
		case <-ctx.Done():
			t.Fatalf("no %s pass", trigger)
			return nil
		}
	}
	events := func(pod string) []corev1.Event {
		t.Helper()
		var list corev1.EventList
		if err := json.Unmarshal([]byte(kubectl(nil, "get", "events", "-n", "team-a", "-o", "json")), &list); err != nil {
			t.Fatal(err)
		}
		var out []corev1.Event
		for _, ev := range list.Items {
			if ev.InvolvedObject.Name == pod && ev.Reason == EventReasonVerificationFailed {
				out = append(out, ev)
			}
		}
		return out
	}
	violationSeries := func(pod string) []string {
		var out []string
		for _, s := range metricSeries(t, wh, "twinforge_admission_runtime_violations") {
			if strings.Contains(s, `pod="`+pod+`"`) {
				out = append(out, s)
			}
		}
		return out
	}

	// The first pass, at start, finds the pod from before the webhook.
	rep := next(TriggerStart)
	if got := violationPods(rep); !slices.Equal(got, []string{"team-a/legacy " + unsigned.tag + " " + ResultVerification}) || rep.Skipped != 1 {
		t.Fatalf("start: violations %v, %d skipped (the exempt namespace)", got, rep.Skipped)
	}
	if evs := events("legacy"); len(evs) != 1 || evs[0].Type != corev1.EventTypeWarning || evs[0].Source.Component != EventSourceComponent ||
		!strings.Contains(evs[0].Message, unsigned.tag) || !strings.Contains(evs[0].Message, `check "signature"`) {
		t.Fatalf("events of legacy: %+v", evs)
	}
	t.Logf("event: %s", events("legacy")[0].Message)
	// Another replica reports the same violation: one more occurrence on
	// the same Event (the ServiceAccount may get and patch Events).
	replica := newTestWebhook(t, Source{ConfigFile: config, TrustedRootFile: trustedRoot, RevocationsFile: revocations},
		WithReverification(KubeConfig{URL: cluster.URL, TokenFile: tokenFile, CAFile: cluster.CAFile}),
		WithReverifyInterval(0), WithReverifyExemptNamespaces("twinforge-system"))
	if rep, err := replica.Reverify(ctx); err != nil || rep.EventErrors != 0 || len(rep.Failed()) != 1 {
		t.Fatalf("replica: %v %+v", err, rep)
	}
	if evs := events("legacy"); len(evs) != 1 || evs[0].Count != 2 {
		t.Fatalf("events of legacy after a second replica: %+v", evs)
	}

	// Admitted pods: one by tag, one whose kubelet reports the digest it
	// runs (the API server has no kubelet: the test writes the status),
	// after which the tag moves to another signed image.
	probe := podYAML("probe", "team-a", unsigned.tag)
	for {
		_, _, err := cluster.Kubectl(ctx, probe, "apply", "--dry-run=server", "-f", "-")
		if err != nil && strings.Contains(err.Error(), "denied the request") {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("the webhook never took effect: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	kubectl(podYAML("app", "team-a", app.tag), "apply", "-f", "-")
	kubectl(podYAML("moving", "team-a", first.tag), "apply", "-f", "-")
	kubectl(nil, "patch", "pod", "moving", "-n", "team-a", "--subresource=status", "--type=merge", "-p", string(mustJSON(map[string]any{
		"status": map[string]any{"containerStatuses": []any{map[string]any{
			"name": "app", "image": first.tag, "imageID": "docker-pullable://" + first.pinned,
			"ready": true, "restartCount": 0, "state": map[string]any{"running": map[string]any{}},
		}}},
	})))
	second := signedImage(t, distReg.Host, "team-a/moving", "v1", signer)

	rep, err = wh.Reverify(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := violationPods(rep); len(got) != 1 || rep.Pods != 3 {
		t.Fatalf("after admission: %d pods, violations %v", rep.Pods, got)
	}
	for _, r := range rep.Results {
		if r.Pod == "moving" && (r.Digest != first.digest || r.DigestSource != DigestFromStatus || !r.Passed()) {
			t.Fatalf("moving: %+v, want the running digest %s (the tag is at %s now)", r, first.digest, second.digest)
		}
	}

	// Revoking the running digests reports both pods at once (the reload
	// starts a pass): metric, log and an Event on each pod.
	logs.reset()
	writeTestFile(t, revocations, app.digest+"\n"+first.digest+"\n")
	if err := wh.Reload(); err != nil {
		t.Fatal(err)
	}
	rep = next(TriggerChange)
	want := []string{
		"team-a/app " + app.tag + " " + ResultRevoked,
		"team-a/legacy " + unsigned.tag + " " + ResultVerification,
		"team-a/moving " + first.tag + " " + ResultRevoked,
	}
	if got := violationPods(rep); !slices.Equal(got, want) {
		t.Fatalf("after revocation:\n got %v\nwant %v", got, want)
	}
	for pod, digest := range map[string]string{"app": app.digest, "moving": first.digest} {
		if s := violationSeries(pod); len(s) != 1 || !strings.Contains(s[0], `digest="`+digest+`"`) || !strings.Contains(s[0], `result="denied_revoked"`) {
			t.Errorf("metric of %s: %v", pod, s)
		}
		evs := events(pod)
		if len(evs) != 1 || !strings.Contains(evs[0].Message, digest) || !strings.Contains(evs[0].Message, "revocation list") ||
			evs[0].InvolvedObject.Kind != "Pod" || evs[0].InvolvedObject.UID == "" {
			t.Errorf("events of %s: %+v", pod, evs)
		}
		if !slices.ContainsFunc(logs.take("WARN", "runtime image verification failed"), func(rec map[string]any) bool {
			return rec["pod"] == pod && rec["digest"] == digest && rec["result"] == ResultRevoked
		}) {
			t.Errorf("no warning logged for %s", pod)
		}
	}
	t.Logf("event: %s", events("moving")[0].Message)

	// Revoked no more: the metric clears.
	writeTestFile(t, revocations, "")
	if err := wh.Reload(); err != nil {
		t.Fatal(err)
	}
	if rep = next(TriggerChange); len(rep.Failed()) != 1 || len(violationSeries("app")) != 0 || len(violationSeries("moving")) != 0 {
		t.Fatalf("after un-revoking: %v, metric %v", violationPods(rep), metricSeries(t, wh, "twinforge_admission_runtime_violations"))
	}

	// A trusted root that no longer holds the Sigstore stack's keys: every
	// signed image fails, cache or not; back to the right root, they pass.
	writeTestFile(t, trustedRoot, string(testTrustedRoot(t)))
	if err := wh.Reload(); err != nil {
		t.Fatal(err)
	}
	rep = next(TriggerChange)
	want = []string{
		"team-a/app " + app.tag + " " + ResultVerification,
		"team-a/legacy " + unsigned.tag + " " + ResultVerification,
		"team-a/moving " + first.tag + " " + ResultVerification,
	}
	if got := violationPods(rep); !slices.Equal(got, want) {
		t.Fatalf("after rotating the trusted root:\n got %v\nwant %v", got, want)
	}
	for _, r := range rep.Failed() {
		t.Logf("%s: %s", r.Pod, r.Reason)
	}
	writeTestFile(t, trustedRoot, string(st.TrustedRootJSON()))
	if err := wh.Reload(); err != nil {
		t.Fatal(err)
	}
	if rep = next(TriggerChange); len(rep.Failed()) != 1 || len(violationSeries("app")) != 0 {
		t.Fatalf("after restoring the trusted root: %v", violationPods(rep))
	}

	// The pod from before the webhook is deleted: nothing is reported.
	kubectl(nil, "delete", "pod", "legacy", "-n", "team-a", "--wait=false")
	if rep, err = wh.Reverify(ctx); err != nil || len(rep.Failed()) != 0 || len(metricSeries(t, wh, "twinforge_admission_runtime_violations")) != 0 {
		t.Fatalf("after deleting legacy: %v %v", err, violationPods(rep))
	}

	// The monitoring handler serves the last report (never the webhook's
	// port).
	rec := newRecorder()
	wh.Monitoring().ServeHTTP(rec, mustRequest(t, http.MethodGet, PathReverify))
	var last ReverifyReport
	if err := json.Unmarshal(rec.Body.Bytes(), &last); err != nil || last.Pods != 2 || last.Violations != 0 {
		t.Errorf("%s: %v\n%s", PathReverify, err, rec.Body)
	}
}
