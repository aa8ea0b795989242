package admission

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// fakeKube is an API server over HTTPS that serves pods (in pages of two)
// and stores Events, with failures scripted by the test. The real proof is
// TestKubernetesReverify against kube-apiserver; this one reaches the edge
// cases a real API server does not produce on demand.
type fakeKube struct {
	*httptest.Server
	caFile, tokenFile string

	mu     sync.Mutex
	token  string
	pods   []corev1.Pod
	events map[string]*corev1.Event // namespace/name
	// listFail and eventFail answer the next requests: an HTTP status, or
	// 0 for a 200 that is not JSON.
	listFail, eventFail []int
	lists, posts        int
	patches             int
}

func newFakeKube(t *testing.T) *fakeKube {
	t.Helper()
	f := &fakeKube{token: "token-1", events: map[string]*corev1.Event{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/pods", f.listPods)
	mux.HandleFunc("POST /api/v1/namespaces/{ns}/events", f.postEvent)
	mux.HandleFunc("GET /api/v1/namespaces/{ns}/events/{name}", f.getEvent)
	mux.HandleFunc("PATCH /api/v1/namespaces/{ns}/events/{name}", f.patchEvent)
	f.Server = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		ok := r.Header.Get("Authorization") == "Bearer "+f.token
		f.mu.Unlock()
		if !ok {
			writeStatus(w, http.StatusUnauthorized, "Unauthorized")
			return
		}
		w.Header().Set("Content-Type", "application/json")
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(f.Close)
	dir := t.TempDir()
	f.caFile, f.tokenFile = filepath.Join(dir, "ca.crt"), filepath.Join(dir, "token")
	writeTestFile(t, f.caFile, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: f.Certificate().Raw})))
	writeTestFile(t, f.tokenFile, f.token+"\n")
	return f
}

func (f *fakeKube) config() KubeConfig {
	return KubeConfig{URL: f.URL, TokenFile: f.tokenFile, CAFile: f.caFile}
}

func writeStatus(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(metav1.Status{TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"},
		Status: metav1.StatusFailure, Message: msg, Code: int32(code)})
}

// fail answers with the next scripted failure, if any.
func fail(w http.ResponseWriter, script *[]int, what string) bool {
	if len(*script) == 0 {
		return false
	}
	code := (*script)[0]
	*script = (*script)[1:]
	if code == 0 {
		w.Header().Set("Content-Type", "text/html")
		io.WriteString(w, "<html>a proxy's error page</html>")
	} else {
		writeStatus(w, code, fmt.Sprintf("%s failed on purpose", what))
	}
	return true
}

func (f *fakeKube) listPods(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lists++
	if fail(w, &f.listFail, "listing pods") {
		return
	}
	limit, err := strconv.Atoi(r.URL.Query().Get("limit"))
	if err != nil || limit < 1 {
		writeStatus(w, http.StatusBadRequest, "no limit")
		return
	}
	from, _ := strconv.Atoi(r.URL.Query().Get("continue"))
	to := min(from+min(limit, 2), len(f.pods))
	list := corev1.PodList{TypeMeta: metav1.TypeMeta{Kind: "PodList", APIVersion: "v1"}, Items: f.pods[from:to]}
	if to < len(f.pods) {
		list.Continue = strconv.Itoa(to)
	}
	json.NewEncoder(w).Encode(list)
}

func (f *fakeKube) postEvent(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.posts++
	if fail(w, &f.eventFail, "creating the event") {
		return
	}
	var ev corev1.Event
	if err := json.NewDecoder(r.Body).Decode(&ev); err != nil || ev.Namespace != r.PathValue("ns") || ev.InvolvedObject.Namespace != ev.Namespace {
		writeStatus(w, http.StatusBadRequest, fmt.Sprintf("bad event: %v", err))
		return
	}
	key := ev.Namespace + "/" + ev.Name
	if _, ok := f.events[key]; ok {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusConflict)
		json.NewEncoder(w).Encode(metav1.Status{TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"},
			Status: metav1.StatusFailure, Message: "events " + ev.Name + " already exists",
			Reason: metav1.StatusReasonAlreadyExists, Code: http.StatusConflict})
		return
	}
	f.events[key] = &ev
	w.WriteHeader(http.StatusCreated)
	json.NewEncoder(w).Encode(ev)
}

func (f *fakeKube) getEvent(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	ev, ok := f.events[r.PathValue("ns")+"/"+r.PathValue("name")]
	if !ok {
		writeStatus(w, http.StatusNotFound, "not found")
		return
	}
	json.NewEncoder(w).Encode(ev)
}

func (f *fakeKube) patchEvent(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.patches++
	ev, ok := f.events[r.PathValue("ns")+"/"+r.PathValue("name")]
	if !ok || r.Header.Get("Content-Type") != "application/merge-patch+json" {
		writeStatus(w, http.StatusNotFound, "not found")
		return
	}
	if err := json.NewDecoder(r.Body).Decode(ev); err != nil {
		writeStatus(w, http.StatusBadRequest, err.Error())
		return
	}
	json.NewEncoder(w).Encode(ev)
}

func (f *fakeKube) setPods(pods ...corev1.Pod) {
	f.mu.Lock()
	f.pods = pods
	f.mu.Unlock()
}

func (f *fakeKube) script(list, event []int) {
	f.mu.Lock()
	f.listFail, f.eventFail = list, event
	f.mu.Unlock()
}

func (f *fakeKube) eventList() []corev1.Event {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []corev1.Event
	for _, ev := range f.events {
		out = append(out, *ev)
	}
	slices.SortFunc(out, func(a, b corev1.Event) int { return strings.Compare(a.InvolvedObject.Name, b.InvolvedObject.Name) })
	return out
}

func (f *fakeKube) counts() (lists, posts, patches int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.lists, f.posts, f.patches
}

// testPod is a pod of containers (name=image), with options applied.
func testPod(namespace, name string, containers ...string) corev1.Pod {
	p := corev1.Pod{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name, UID: types.UID("uid-" + namespace + "-" + name), ResourceVersion: "7"},
		Status:     corev1.PodStatus{Phase: corev1.PodPending},
	}
	for _, c := range containers {
		n, img, _ := strings.Cut(c, "=")
		p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: n, Image: img})
	}
	return p
}

// logCapture keeps the JSON log lines for the test to read, and writes them
// into the test log too.
type logCapture struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	inner io.Writer
}

func captureLogs(t *testing.T) (*slog.Logger, *logCapture) {
	tw := &testLogWriter{t: t}
	t.Cleanup(func() { tw.mu.Lock(); tw.done = true; tw.mu.Unlock() })
	c := &logCapture{inner: tw}
	return slog.New(slog.NewJSONHandler(c, &slog.HandlerOptions{Level: slog.LevelDebug})), c
}

func (c *logCapture) Write(p []byte) (int, error) {
	c.mu.Lock()
	c.buf.Write(p)
	c.mu.Unlock()
	return c.inner.Write(p)
}

// take returns the log records with that level and message.
func (c *logCapture) take(level, msg string) []map[string]any {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []map[string]any
	for _, line := range strings.Split(c.buf.String(), "\n") {
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) == nil && rec["level"] == level && rec["msg"] == msg {
			out = append(out, rec)
		}
	}
	return out
}

func (c *logCapture) reset() {
	c.mu.Lock()
	c.buf.Reset()
	c.mu.Unlock()
}

// metricSeries returns the series of a metric, "{labels} value" each.
func metricSeries(t testing.TB, h http.Handler, name string) []string {
	t.Helper()
	rec := newRecorder()
	monitoring(h).ServeHTTP(rec, mustRequest(t, http.MethodGet, PathMetrics))
	if rec.Code != http.StatusOK {
		t.Fatalf("/metrics: %d", rec.Code)
	}
	var out []string
	for _, line := range strings.Split(rec.Body.String(), "\n") {
		if rest, ok := strings.CutPrefix(line, name+"{"); ok {
			out = append(out, "{"+rest)
		}
	}
	return out
}

// violationPods lists "namespace/pod image result" of a report's failures.
func violationPods(rep *ReverifyReport) []string {
	var out []string
	for _, r := range rep.Failed() {
		out = append(out, r.Namespace+"/"+r.Pod+" "+r.Image+" "+r.Result)
	}
	return out
}

// TestReverify: the images of running pods are verified again as admission
// verifies them: a revoked digest is reported (metric, log, Event) though
// the tag now points elsewhere, the kubelet's running digest wins over the
// tag, pods outside the configuration, in exempt namespaces or finished are
// skipped, and recovered images clear the metric.
func TestReverify(t *testing.T) {
	reg := newMemRegistry(t)
	key := newTestKey(t)
	s := key.signer(t)
	dir := t.TempDir()

	good := signedImage(t, reg.host, "team-a/app", "v1", s)
	first := signedImage(t, reg.host, "team-a/moving", "v1", s)
	second := signedImage(t, reg.host, "team-a/moving", "v1", s) // the tag moved
	initImg := signedImage(t, reg.host, "team-a/init", "v1", s)
	debugImg := signedImage(t, reg.host, "team-a/debug", "v1", s)
	img, _, _ := randomImage(t)
	unsigned := push(t, reg.host, "team-a/unsigned", "v1", img, nil)
	if first.digest == second.digest {
		t.Fatal("the tag did not move")
	}

	policy := filepath.Base(keyPolicy(t, dir, key))
	config := filepath.Join(dir, "config.yaml")
	writeTestFile(t, config, fmt.Sprintf(`apiVersion: twinforge.dev/v1
kind: AdmissionConfig
tenants:
  - name: team-a
    namespaces: [team-a, "team-a-*"]
    images: ["%s/team-a/**"]
    policy: %s
`, reg.host, policy))
	revocations := filepath.Join(dir, "revoked.txt")
	writeTestFile(t, revocations, "")

	running := testPod("team-a", "running", "app="+second.tag)
	running.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "app", Image: second.tag, ImageID: "docker-pullable://" + first.pinned}}
	mixed := testPod("team-a", "mixed", "app="+unsigned.tag)
	mixed.Spec.InitContainers = []corev1.Container{{Name: "init", Image: initImg.tag}}
	mixed.Spec.EphemeralContainers = []corev1.EphemeralContainer{{EphemeralContainerCommon: corev1.EphemeralContainerCommon{Name: "debug", Image: debugImg.pinned}}}
	done := testPod("team-a-dev", "done", "app="+unsigned.tag)
	done.Status.Phase = corev1.PodSucceeded
	fk := newFakeKube(t)
	fk.setPods(
		testPod("team-a", "app", "app="+good.tag),
		testPod("team-a", "pinned", "app="+good.pinned, "sidecar="+good.pinned),
		running, mixed, done,
		testPod("team-a", "foreign", "app="+reg.host+"/team-b/app:v1"),
		testPod("other", "unsigned", "app="+unsigned.tag),
		testPod("team-a-sys", "unsigned", "app="+unsigned.tag),
	)

	log, logs := captureLogs(t)
	wh := newTestWebhook(t, Source{ConfigFile: config, RevocationsFile: revocations},
		WithReverification(fk.config()), WithReverifyInterval(0), WithReverifyExemptNamespaces("team-a-sys"), WithLogger(log))
	ctx := context.Background()

	// Before any pass, PathReverify has nothing to say.
	rec := newRecorder()
	wh.Monitoring().ServeHTTP(rec, mustRequest(t, http.MethodGet, PathReverify))
	if rec.Code != http.StatusServiceUnavailable {
		t.Fatalf("%s before a pass: %d", PathReverify, rec.Code)
	}

	rep, err := wh.Reverify(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Pods != 5 || rep.Skipped != 3 || rep.Trigger != TriggerRequest {
		t.Errorf("pods %d skipped %d trigger %s, want 5, 3 (finished, uncovered, exempt), request", rep.Pods, rep.Skipped, rep.Trigger)
	}
	type row struct{ pod, image, digest, source, result string }
	var got []row
	for _, r := range rep.Results {
		got = append(got, row{r.Pod, r.Image, r.Digest, r.DigestSource, r.Result})
	}
	want := []row{
		{"app", good.tag, good.digest, DigestFromTag, ResultAdmitted},
		{"foreign", reg.host + "/team-b/app:v1", "", "", ResultNoPolicy},
		{"mixed", debugImg.pinned, debugImg.digest, DigestFromSpec, ResultAdmitted},
		{"mixed", initImg.tag, initImg.digest, DigestFromTag, ResultAdmitted},
		{"mixed", unsigned.tag, unsigned.digest, DigestFromTag, ResultVerification},
		{"pinned", good.pinned, good.digest, DigestFromSpec, ResultAdmitted},
		{"running", second.tag, first.digest, DigestFromStatus, ResultAdmitted},
	}
	if !slices.Equal(got, want) {
		t.Errorf("results:\n got %v\nwant %v", got, want)
	}
	for _, r := range rep.Results {
		if r.Pod == "pinned" && !slices.Equal(r.Containers, []string{"app", "sidecar"}) {
			t.Errorf("pinned: containers %v, want one result for both", r.Containers)
		}
	}
	if rep.Violations != 2 || len(metricSeries(t, wh, "twinforge_admission_runtime_violations")) != 2 {
		t.Errorf("violations %d, series %v", rep.Violations, metricSeries(t, wh, "twinforge_admission_runtime_violations"))
	}
	evs := fk.eventList()
	if len(evs) != 2 {
		t.Fatalf("%d events, want 2: %+v", len(evs), evs)
	}
	for i, w := range []struct{ pod, fieldPath, msg string }{
		{"foreign", "spec.containers{app}", "no tenant of namespace"},
		{"mixed", "spec.containers{app}", `check "signature"`},
	} {
		ev := evs[i]
		if ev.InvolvedObject.Name != w.pod || ev.InvolvedObject.Kind != "Pod" || ev.InvolvedObject.UID != types.UID("uid-team-a-"+w.pod) ||
			ev.InvolvedObject.FieldPath != w.fieldPath || ev.Reason != EventReasonVerificationFailed || ev.Type != corev1.EventTypeWarning ||
			ev.Source.Component != EventSourceComponent || ev.Count != 1 || !strings.Contains(ev.Message, w.msg) {
			t.Errorf("event %d: %+v", i, ev)
		}
	}
	if warns := logs.take("WARN", "runtime image verification failed"); len(warns) != 2 {
		t.Errorf("%d warnings, want 2", len(warns))
	}
	rec = newRecorder()
	wh.Monitoring().ServeHTTP(rec, mustRequest(t, http.MethodGet, PathReverify))
	var served ReverifyReport
	if err := json.Unmarshal(rec.Body.Bytes(), &served); rec.Code != http.StatusOK || err != nil || served.Violations != 2 || len(served.Results) != 7 {
		t.Errorf("%s: %d %v\n%s", PathReverify, rec.Code, err, rec.Body)
	}

	// Nothing changed: the same violations, no new Event.
	logs.reset()
	if rep, err = wh.Reverify(ctx); err != nil || rep.Violations != 2 {
		t.Fatalf("again: %v, %d violations", err, rep.Violations)
	}
	if _, posts, _ := fk.counts(); posts != 2 {
		t.Errorf("%d event posts, want 2: a violation that persists is not recorded again within the hour", posts)
	}

	// Revoked: the digest the kubelet runs is reported though the tag has
	// moved on, and the cached admission of good is not used.
	writeTestFile(t, revocations, first.digest+"\n"+good.digest+"\n")
	if err := wh.Reload(); err != nil {
		t.Fatal(err)
	}
	logs.reset()
	if rep, err = wh.Reverify(ctx); err != nil {
		t.Fatal(err)
	}
	wantViolations := []string{
		"team-a/app " + good.tag + " " + ResultRevoked,
		"team-a/foreign " + reg.host + "/team-b/app:v1 " + ResultNoPolicy,
		"team-a/mixed " + unsigned.tag + " " + ResultVerification,
		"team-a/pinned " + good.pinned + " " + ResultRevoked,
		"team-a/running " + second.tag + " " + ResultRevoked,
	}
	if got := violationPods(rep); !slices.Equal(got, wantViolations) {
		t.Errorf("violations after revocation:\n got %v\nwant %v", got, wantViolations)
	}
	series := metricSeries(t, wh, "twinforge_admission_runtime_violations")
	if len(series) != 5 || !slices.ContainsFunc(series, func(s string) bool {
		return strings.Contains(s, `pod="running"`) && strings.Contains(s, `digest="`+first.digest+`"`) && strings.Contains(s, `result="denied_revoked"`)
	}) {
		t.Errorf("series after revocation: %v", series)
	}
	if evs = fk.eventList(); len(evs) != 5 || !strings.Contains(evs[4].Message, first.digest) || !strings.Contains(evs[4].Message, "revocation list") {
		t.Errorf("events after revocation: %+v", evs)
	}
	if warns := logs.take("WARN", "runtime image verification failed"); len(warns) != 5 {
		t.Errorf("%d warnings, want 5", len(warns))
	}

	// Un-revoked: the gauge clears for the images that pass again.
	writeTestFile(t, revocations, "")
	if err := wh.Reload(); err != nil {
		t.Fatal(err)
	}
	logs.reset()
	if rep, err = wh.Reverify(ctx); err != nil || rep.Violations != 2 {
		t.Fatalf("after un-revoking: %v, %v", err, violationPods(rep))
	}
	if series = metricSeries(t, wh, "twinforge_admission_runtime_violations"); len(series) != 2 {
		t.Errorf("series after un-revoking: %v", series)
	}
	if recovered := logs.take("INFO", "runtime image verification no longer fails"); len(recovered) != 3 {
		t.Errorf("%d recoveries logged, want 3", len(recovered))
	}

	// A pod that is gone is no longer reported; the token file is read
	// again when the API server refuses the token read before (projected
	// tokens rotate): one pass fails, the next succeeds.
	fk.setPods(testPod("team-a", "app", "app="+good.tag))
	fk.mu.Lock()
	fk.token = "token-2"
	fk.mu.Unlock()
	writeTestFile(t, fk.tokenFile, "token-2")
	if _, err = wh.Reverify(ctx); err == nil || !strings.Contains(err.Error(), "401") {
		t.Errorf("the old token was accepted: %v", err)
	}
	if rep, err = wh.Reverify(ctx); err != nil || rep.Violations != 0 {
		t.Fatalf("after the pods are gone: %v, %v", err, violationPods(rep))
	}
	if series = metricSeries(t, wh, "twinforge_admission_runtime_violations"); len(series) != 0 {
		t.Errorf("series with no violation: %v", series)
	}
	if n := counterValue(t, wh, "twinforge_admission_reverify_runs_total", `result="ok",trigger="request"`); n != 5 {
		t.Errorf("%v passes counted, want 5", n)
	}
}

// withReverifyRetry sets the first delay before a failed pass is tried
// again (defaultReverifyRetry).
func withReverifyRetry(d time.Duration) Option {
	return func(o *options) error {
		o.reverifyRetry = d
		return nil
	}
}

// TestReverifyAPIErrors: the API server failing, refusing or answering
// garbage fails the pass (logged, counted, served at PathReverify) and keeps
// the violations already reported; an Event that cannot be recorded is
// tried again on the next pass; an Event that exists (another replica
// recorded it) counts one more occurrence.
func TestReverifyAPIErrors(t *testing.T) {
	reg := newMemRegistry(t)
	key := newTestKey(t)
	dir := t.TempDir()
	img, _, _ := randomImage(t)
	unsigned := push(t, reg.host, "team/unsigned", "v1", img, nil)
	fk := newFakeKube(t)
	fk.setPods(testPod("default", "bad", "app="+unsigned.tag))
	log, logs := captureLogs(t)
	src := Source{PolicyFile: keyPolicy(t, dir, key)}
	wh := newTestWebhook(t, src, WithReverification(fk.config()), WithReverifyInterval(0), WithLogger(log))
	ctx := context.Background()
	if rep, err := wh.Reverify(ctx); err != nil || rep.Violations != 1 {
		t.Fatalf("first pass: %v %+v", err, rep)
	}

	for i, tc := range []struct {
		name  string
		fail  int
		token string
		want  string
	}{
		{"server error", http.StatusInternalServerError, "", "500 listing pods failed on purpose"},
		{"forbidden", http.StatusForbidden, "", "403 listing pods failed on purpose"},
		{"not JSON", 0, "", "text/html"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.token != "" {
				writeTestFile(t, fk.tokenFile, tc.token)
				defer writeTestFile(t, fk.tokenFile, fk.token)
			} else {
				fk.script([]int{tc.fail}, nil)
			}
			logs.reset()
			rep, err := wh.Reverify(ctx)
			if err == nil || !strings.Contains(err.Error(), tc.want) || rep == nil || rep.Error != err.Error() {
				t.Fatalf("err = %v (report %+v), want %q", err, rep, tc.want)
			}
			if n := counterValue(t, wh, "twinforge_admission_reverify_runs_total", `result="error",trigger="request"`); n != float64(i+1) {
				t.Errorf("%v failed passes counted, want %d", n, i+1)
			}
			if series := metricSeries(t, wh, "twinforge_admission_runtime_violations"); len(series) != 1 {
				t.Errorf("the violation reported before is gone: %v", series)
			}
			if errs := logs.take("ERROR", "re-verification failed: the pods could not be listed; the violations reported stay"); len(errs) != 1 {
				t.Errorf("%d errors logged, want 1", len(errs))
			}
			rec := newRecorder()
			wh.Monitoring().ServeHTTP(rec, mustRequest(t, http.MethodGet, PathReverify))
			var st struct {
				Violations int    `json:"violations"`
				LastError  string `json:"lastError"`
			}
			if err := json.Unmarshal(rec.Body.Bytes(), &st); err != nil || st.Violations != 1 || !strings.Contains(st.LastError, tc.want) {
				t.Errorf("%s: %v %s", PathReverify, err, rec.Body)
			}
		})
	}

	t.Run("wrong token", func(t *testing.T) {
		// The token file is read when the client starts.
		writeTestFile(t, fk.tokenFile, "token-wrong")
		defer writeTestFile(t, fk.tokenFile, fk.token)
		wh := newTestWebhook(t, src, WithReverification(fk.config()), WithReverifyInterval(0), WithLogger(log))
		if _, err := wh.Reverify(ctx); err == nil || !strings.Contains(err.Error(), "401 Unauthorized") {
			t.Fatalf("err = %v, want 401 Unauthorized", err)
		}
	})

	t.Run("event not recorded", func(t *testing.T) {
		fk.mu.Lock()
		clear(fk.events)
		fk.mu.Unlock()
		// A new webhook has recorded nothing yet.
		wh := newTestWebhook(t, src, WithReverification(fk.config()), WithReverifyInterval(0), WithLogger(log))
		fk.script(nil, []int{http.StatusServiceUnavailable})
		rep, err := wh.Reverify(ctx)
		if err != nil || rep.EventErrors != 1 || rep.Violations != 1 || len(fk.eventList()) != 0 {
			t.Fatalf("%v %+v", err, rep)
		}
		if rep, err = wh.Reverify(ctx); err != nil || rep.EventErrors != 0 || len(fk.eventList()) != 1 {
			t.Fatalf("the Event was not tried again: %v %+v", err, rep)
		}
		if n := counterValue(t, wh, "twinforge_admission_reverify_events_total", `result="error"`); n != 1 {
			t.Errorf("%v event errors counted", n)
		}
	})

	t.Run("event of another replica", func(t *testing.T) {
		other := newTestWebhook(t, src, WithReverification(fk.config()), WithReverifyInterval(0), WithLogger(log))
		_, _, patches := fk.counts()
		if rep, err := other.Reverify(ctx); err != nil || rep.EventErrors != 0 {
			t.Fatalf("%v %+v", err, rep)
		}
		evs := fk.eventList()
		if _, _, p := fk.counts(); len(evs) != 1 || evs[0].Count != 2 || p != patches+1 {
			t.Fatalf("events %+v after %d patches", evs, p-patches)
		}
	})
}

// TestReverifyUnreachable: an API server that does not answer fails the
// pass, it does not end the webhook.
func TestReverifyUnreachable(t *testing.T) {
	fk := newFakeKube(t)
	cfg := fk.config()
	fk.Close()
	wh := newTestWebhook(t, Source{PolicyFile: keyPolicy(t, t.TempDir(), newTestKey(t))}, WithReverification(cfg), WithReverifyInterval(0))
	rep, err := wh.Reverify(context.Background())
	if err == nil || rep.Error == "" || !strings.Contains(err.Error(), "listing pods") {
		t.Fatalf("%v %+v", err, rep)
	}
	if code, _ := post(t, wh, PathValidate, reviewBody(t, podKind, "CREATE", "default", podObject("x.test/app@sha256:"+strings.Repeat("0", 64)), nil)); code != http.StatusOK {
		t.Fatalf("the webhook stopped answering: %d", code)
	}
}

// TestReverifyLoop: the background passes run at start, are retried sooner
// after a failure, run at once when a reload changes something, and are sent
// on the reports channel, which Close closes.
func TestReverifyLoop(t *testing.T) {
	reg := newMemRegistry(t)
	key := newTestKey(t)
	dir := t.TempDir()
	good := signedImage(t, reg.host, "team/app", "v1", key.signer(t))
	revocations := filepath.Join(dir, "revoked.txt")
	writeTestFile(t, revocations, "")
	fk := newFakeKube(t)
	fk.setPods(testPod("default", "app", "app="+good.tag))
	fk.script([]int{http.StatusServiceUnavailable}, nil)

	reports := make(chan *ReverifyReport)
	wh := newTestWebhook(t, Source{PolicyFile: keyPolicy(t, dir, key), RevocationsFile: revocations},
		WithReverification(fk.config()), WithReverifyInterval(time.Hour), WithReverifyReports(reports),
		withReverifyRetry(time.Millisecond))
	next := func() *ReverifyReport {
		t.Helper()
		rep, ok := <-reports
		if !ok {
			t.Fatal("reports closed")
		}
		return rep
	}
	if rep := next(); rep.Trigger != TriggerStart || rep.Error == "" {
		t.Fatalf("first pass: %+v", rep)
	}
	if rep := next(); rep.Trigger != TriggerRetry || rep.Error != "" || rep.Violations != 0 || rep.Pods != 1 {
		t.Fatalf("retried pass: %+v", rep)
	}
	writeTestFile(t, revocations, good.digest+"\n")
	if err := wh.Reload(); err != nil {
		t.Fatal(err)
	}
	rep := next()
	if rep.Trigger != TriggerChange || rep.Violations != 1 || rep.RevokedDigests != 1 || rep.Failed()[0].Result != ResultRevoked {
		t.Fatalf("pass after the revocation: %+v", rep)
	}
	if n := counterValue(t, wh, "twinforge_admission_reverify_runs_total", `result="ok",trigger="change"`); n != 1 {
		t.Errorf("%v change passes counted", n)
	}
	if err := wh.Close(); err != nil {
		t.Fatal(err)
	}
	if _, ok := <-reports; ok {
		t.Fatal("Close did not close the reports channel")
	}
}

func TestReverifyOptions(t *testing.T) {
	fk := newFakeKube(t)
	policy := keyPolicy(t, t.TempDir(), newTestKey(t))
	for _, tc := range []struct {
		name string
		opts []Option
		want string
	}{
		{"interval alone", []Option{WithReverifyInterval(time.Minute)}, "without WithReverification"},
		{"exempt alone", []Option{WithReverifyExemptNamespaces("kube-system")}, "without WithReverification"},
		{"plain HTTP", []Option{WithReverification(KubeConfig{URL: "http://127.0.0.1:6443", TokenFile: fk.tokenFile})}, "https"},
		{"no token", []Option{WithReverification(KubeConfig{URL: fk.URL})}, "token"},
		{"negative interval", []Option{WithReverification(fk.config()), WithReverifyInterval(-time.Second)}, "negative"},
		{"bad namespace", []Option{WithReverification(fk.config()), WithReverifyExemptNamespaces("Kube_System")}, "namespace"},
		{"nil channel", []Option{WithReverification(fk.config()), WithReverifyReports(nil)}, "nil channel"},
		{"missing CA", []Option{WithReverification(KubeConfig{URL: fk.URL, TokenFile: fk.tokenFile, CAFile: fk.caFile + ".missing"})}, "CA"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(Source{PolicyFile: policy}, append([]Option{WithPollInterval(0)}, tc.opts...)...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}

	// Without WithReverification there is no re-verification to ask for.
	wh := newTestWebhook(t, Source{PolicyFile: policy})
	if _, err := wh.Reverify(context.Background()); err == nil {
		t.Error("Reverify without WithReverification")
	}
	rec := newRecorder()
	wh.Monitoring().ServeHTTP(rec, mustRequest(t, http.MethodGet, PathReverify))
	if rec.Code != http.StatusNotFound {
		t.Errorf("%s without WithReverification: %d", PathReverify, rec.Code)
	}
	if series := metricSeries(t, wh, "twinforge_admission_reverify_last_success_timestamp_seconds"); len(series) != 0 {
		t.Errorf("re-verification metrics without re-verification: %v", series)
	}
}

func TestRunningRef(t *testing.T) {
	d := "sha256:" + strings.Repeat("ab", 32)
	for _, tc := range []struct {
		spec, imageID, want string
	}{
		{"registry.test/team/app:v1", "docker-pullable://registry.test/team/app@" + d, "registry.test/team/app@" + d},
		{"registry.test/team/app:v1", "registry.test/mirror/app@" + d, "registry.test/team/app@" + d}, // the spec's repository
		{"nginx:1.27", "docker.io/library/nginx@" + d, "index.docker.io/library/nginx@" + d},
		{"registry.test/team/app:v1", d, ""},                                      // an image config ID, not a manifest digest
		{"registry.test/team/app:v1", "docker://sha256:1234", ""},                 // dockershim image ID
		{"registry.test/team/app:v1", "", ""},                                     // not running yet
		{"Not An Image!", "registry.test/team/app@" + d, ""},                      // verified as written, and denied
		{"registry.test/team/app:v1", "registry.test/team/app@sha256:ABCDEF", ""}, // not a sha256 digest
	} {
		got, ok := runningRef(tc.spec, tc.imageID)
		if got != tc.want || ok != (tc.want != "") {
			t.Errorf("runningRef(%q, %q) = %q, %v; want %q", tc.spec, tc.imageID, got, ok, tc.want)
		}
	}
}

func TestInClusterKubeConfig(t *testing.T) {
	dir := t.TempDir()
	env := map[string]string{"KUBERNETES_SERVICE_HOST": "fd00::1", "KUBERNETES_SERVICE_PORT": "443"}
	if _, err := inClusterKubeConfig(func(k string) string { return env[k] }, dir); err == nil || !strings.Contains(err.Error(), "not mounted") {
		t.Fatalf("without the service account files: %v", err)
	}
	writeTestFile(t, filepath.Join(dir, "token"), "t")
	writeTestFile(t, filepath.Join(dir, "ca.crt"), "c")
	k, err := inClusterKubeConfig(func(k string) string { return env[k] }, dir)
	if err != nil || k.URL != "https://[fd00::1]:443" || k.TokenFile != filepath.Join(dir, "token") || k.CAFile != filepath.Join(dir, "ca.crt") {
		t.Fatalf("%+v %v", k, err)
	}
	if _, err := inClusterKubeConfig(func(string) string { return "" }, dir); err == nil || !strings.Contains(err.Error(), "not running in a pod") {
		t.Fatalf("outside a pod: %v", err)
	}
}
