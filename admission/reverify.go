package admission

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/kubernetes"
)

// PathReverify serves the last re-verification report as JSON
// (WithReverification).
const PathReverify = "/reverify"

// DefaultReverifyInterval is how often the images of running pods are
// verified again.
const DefaultReverifyInterval = 10 * time.Minute

// What a re-verification Event says.
const (
	// EventReasonVerificationFailed is the reason of the Warning Event put
	// on a pod whose image no longer passes verification.
	EventReasonVerificationFailed = "ImageVerificationFailed"
	// EventSourceComponent is the source component of those Events.
	EventSourceComponent = "twinforge-admission"
)

// Why a re-verification pass ran, in ReverifyReport.Trigger and the
// twinforge_admission_reverify_runs_total metric.
const (
	TriggerStart    = "start"    // the first pass, when New starts re-verifying
	TriggerInterval = "interval" // WithReverifyInterval passed
	TriggerChange   = "change"   // the configuration, a policy, the trusted root or the revocation list changed
	TriggerRetry    = "retry"    // the pass before failed (API server unreachable, an Event not recorded)
	TriggerRequest  = "request"  // Webhook.Reverify
)

// Where the digest a pod image was verified at comes from.
const (
	DigestFromStatus = "status" // the image ID the kubelet reports running
	DigestFromSpec   = "spec"   // the pod spec names the image by digest
	DigestFromTag    = "tag"    // the tag of the pod spec, resolved now
)

const (
	// defaultReverifyRetry is the first delay before a failed pass is tried
	// again; it doubles up to the interval.
	defaultReverifyRetry = 5 * time.Second
	// eventRepeat is how often a violation that persists is counted again
	// on its Event (the API server drops Events after an hour by default).
	eventRepeat = time.Hour
	// maxEventMessage bounds an Event's message.
	maxEventMessage = 1024
)

// ReverifyReport is the outcome of one re-verification pass: every image of
// every pod in the namespaces the configuration covers, verified again as
// admission verifies it.
type ReverifyReport struct {
	// Trigger is why the pass ran: TriggerStart, TriggerInterval,
	// TriggerChange, TriggerRetry or TriggerRequest.
	Trigger string `json:"trigger"`
	// Start is when the pass began; Duration how long it took.
	Start    time.Time     `json:"start"`
	Duration time.Duration `json:"durationNanos"`
	// PolicyVersion is the version (hash of the configuration, policies and
	// trusted root) the pass verified with; RevokedDigests the size of the
	// revocation list in force.
	PolicyVersion  string `json:"policyVersion"`
	RevokedDigests int    `json:"revokedDigests"`
	// Pods is how many pods were checked; Skipped how many were not: in a
	// namespace no tenant covers, in an exempt namespace, or finished
	// (phase Succeeded or Failed).
	Pods    int `json:"pods"`
	Skipped int `json:"skipped"`
	// Images is how many distinct images (by namespace) were verified.
	Images int `json:"images"`
	// Results holds one entry per image of each pod checked, sorted by
	// namespace, pod and image.
	Results []PodImageResult `json:"results"`
	// Violations is how many Results did not pass.
	Violations int `json:"violations"`
	// EventErrors is how many Events could not be recorded; they are tried
	// again on the next pass.
	EventErrors int `json:"eventErrors,omitempty"`
	// Error is why the pass failed (the pods could not be listed); a failed
	// pass has no Results.
	Error string `json:"error,omitempty"`
}

// PodImageResult is the verdict on one image of one pod.
type PodImageResult struct {
	Namespace string `json:"namespace"`
	Pod       string `json:"pod"`
	// Containers are the containers (init and ephemeral ones included) that
	// run the image, and "volume NAME" for each image volume that mounts it.
	Containers []string `json:"containers"`
	// Image is the image as the pod spec names it.
	Image string `json:"image"`
	// Digest is the manifest digest verified, empty when none was found;
	// DigestSource says where it came from (DigestFromStatus,
	// DigestFromSpec or DigestFromTag).
	Digest       string `json:"digest,omitempty"`
	DigestSource string `json:"digestSource"`
	// Result is ResultAdmitted or the class of the failure (ResultRevoked,
	// ResultVerification, ...), as admission labels its denials.
	Result string `json:"result"`
	// Reason says why it failed: the failed check, the revoked digest, ...
	Reason string `json:"reason,omitempty"`
}

// Passed reports whether the image still passes verification.
func (r PodImageResult) Passed() bool { return r.Result == ResultAdmitted }

// Failed returns the results that did not pass.
func (r *ReverifyReport) Failed() []PodImageResult {
	var out []PodImageResult
	for _, res := range r.Results {
		if !res.Passed() {
			out = append(out, res)
		}
	}
	return out
}

// WithReverification re-verifies the images of the pods already running,
// with the same verification, policies, trusted root and revocation list
// as admission: every WithReverifyInterval, at once when a reload changes
// any of the files, and on Webhook.Reverify. Each image that no longer
// passes is reported as the metric twinforge_admission_runtime_violations,
// a warning in the log and a Warning Event (reason
// EventReasonVerificationFailed) on its pod; the metric clears when the
// image passes again. The webhook serves the last report at PathReverify.
//
// k says how to reach the API server (InClusterKubeConfig in a pod). By
// default nothing is re-verified.
func WithReverification(k KubeConfig) Option {
	return func(o *options) error {
		if err := k.validate(); err != nil {
			return fmt.Errorf("WithReverification: %w", err)
		}
		o.reverify = &k
		return nil
	}
}

// WithReverifyInterval sets how often the re-verifier of
// WithReverification runs a pass. The default value is
// DefaultReverifyInterval (10m). 0 runs no pass in the background, on an
// interval or on changes: only Webhook.Reverify does.
func WithReverifyInterval(d time.Duration) Option {
	return func(o *options) error {
		if d < 0 {
			return fmt.Errorf("WithReverifyInterval: negative %s", d)
		}
		o.reverifyInterval, o.reverifySet = d, true
		return nil
	}
}

// WithReverifyExemptNamespaces names namespaces whose pods are not
// re-verified: those the webhook configurations exempt (the webhook's own
// namespace and ManifestOptions.ExemptNamespaces), whose pods admission
// never saw. By default every namespace a tenant covers is re-verified.
func WithReverifyExemptNamespaces(namespaces ...string) Option {
	return func(o *options) error {
		for _, ns := range namespaces {
			if errs := validation.IsDNS1123Label(ns); len(errs) > 0 {
				return fmt.Errorf("WithReverifyExemptNamespaces: namespace %q: %s", ns, strings.Join(errs, "; "))
			}
		}
		o.reverifyExempt, o.reverifySet = append(o.reverifyExempt, namespaces...), true
		return nil
	}
}

// WithReverifyReports sends the report of every background pass (not those
// of Webhook.Reverify, which returns them) on ch, waiting until it is
// received or the webhook is closed; Close closes ch. By default reports are
// only logged and served at PathReverify.
func WithReverifyReports(ch chan<- *ReverifyReport) Option {
	return func(o *options) error {
		if ch == nil {
			return errors.New("WithReverifyReports: nil channel")
		}
		o.reverifyReports, o.reverifySet = ch, true
		return nil
	}
}

// reverifier re-verifies running pods for a webhook.
type reverifier struct {
	w        *webhook
	kube     kubeAPI
	cs       kubernetes.Interface
	log      *slog.Logger
	interval time.Duration
	retry    time.Duration
	exempt   map[string]bool
	reports  chan<- *ReverifyReport
	// kick asks the background loop for a pass (a reload changed something).
	kick chan struct{}

	// last is what PathReverify serves.
	last atomic.Pointer[reverifyStatus]

	mu sync.Mutex // one pass at a time; guards the fields below
	// gauges are the label values of twinforge_admission_runtime_violations
	// set by the last pass, by their joined key.
	gauges map[string][]string
	// recorded is when the Event of each violation in force was last
	// recorded, by Event name.
	recorded map[string]time.Time
}

// reverifyStatus is the answer of PathReverify: the last pass that listed
// the pods, and the error of a later pass that could not.
type reverifyStatus struct {
	*ReverifyReport
	LastError     string     `json:"lastError,omitempty"`
	LastErrorTime *time.Time `json:"lastErrorTime,omitempty"`
}

func newReverifier(w *webhook) (*reverifier, error) {
	cs, err := NewKubernetesClient(*w.o.reverify, userAgent)
	if err != nil {
		return nil, fmt.Errorf("re-verification: %w", err)
	}
	r := &reverifier{
		w: w, kube: newKubeClient(cs), cs: cs, log: w.log, interval: w.o.reverifyInterval, retry: w.o.reverifyRetry,
		exempt: map[string]bool{}, reports: w.o.reverifyReports, kick: make(chan struct{}, 1),
		gauges: map[string][]string{}, recorded: map[string]time.Time{},
	}
	for _, ns := range w.o.reverifyExempt {
		r.exempt[ns] = true
	}
	return r, nil
}

// changed asks for a pass now, when passes run in the background.
func (r *reverifier) changed() {
	select {
	case r.kick <- struct{}{}:
	default: // one is pending already
	}
}

// loop runs a pass at once, then every interval and after each change,
// until stop is closed. A pass that fails is tried again sooner, after a
// delay that doubles up to the interval.
func (r *reverifier) loop(stop <-chan struct{}) {
	timer := time.NewTimer(0)
	defer timer.Stop()
	trigger := TriggerStart
	retry := r.retry
	for {
		select {
		case <-stop:
			return
		case <-timer.C:
		case <-r.kick:
			trigger = TriggerChange
		}
		ctx, cancel := context.WithCancel(context.Background())
		go func() {
			select {
			case <-stop:
				cancel()
			case <-ctx.Done():
			}
		}()
		rep, err := r.pass(ctx, trigger)
		cancel()
		select {
		case <-stop:
			return
		default:
		}
		next := r.interval
		trigger = TriggerInterval
		if err != nil || rep.EventErrors > 0 {
			next, trigger = min(retry, r.interval), TriggerRetry
			retry = min(2*retry, r.interval)
			r.log.Warn("re-verification will be tried again", "in", next.String(), "error", errString(err), "eventErrors", rep.EventErrors)
		} else {
			retry = r.retry
		}
		if r.reports != nil {
			select {
			case r.reports <- rep:
			case <-stop:
				return
			}
		}
		timer.Reset(next)
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// reverifyTarget is one image to verify in one namespace, with the pull
// credentials of pullKey.
type reverifyTarget struct{ namespace, ref, pull string }

// podImage is one container image of a pod and what is verified for it.
type podImage struct {
	container string // the container's name, or "volume NAME" for an image volume
	fieldPath string // "spec.containers{app}", for the Event
	image     string // as the spec writes it
	ref       string // what is verified: image, or its repository at the running digest
	source    string // DigestFromStatus, or "" until decided
}

// pass re-verifies every pod once. It returns a report in every case; an
// error means the pods could not be listed, or ctx ended before every image
// was verified: then nothing is reported and the violations in force stay.
func (r *reverifier) pass(ctx context.Context, trigger string) (*ReverifyReport, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	w := r.w
	start := w.o.now()
	snap := w.snap.Load()
	rep := &ReverifyReport{Trigger: trigger, Start: start, PolicyVersion: snap.version, RevokedDigests: len(snap.revoked)}
	finish := func(result string) {
		rep.Duration = w.o.now().Sub(start)
		w.metrics.reverifyRuns.WithLabelValues(trigger, result).Inc()
	}

	pods, err := r.kube.listPods(ctx, "")
	if err != nil {
		err = fmt.Errorf("re-verification: listing pods: %w", err)
		rep.Error = err.Error()
		finish("error")
		now := w.o.now()
		st := &reverifyStatus{LastError: rep.Error, LastErrorTime: &now}
		if prev := r.last.Load(); prev != nil {
			st.ReverifyReport = prev.ReverifyReport
		}
		r.last.Store(st)
		r.log.Error("re-verification failed: the pods could not be listed; the violations reported stay", "trigger", trigger, "error", rep.Error)
		return rep, err
	}

	// The images of each pod, and the distinct ones to verify.
	type checked struct {
		pod    *corev1.Pod
		images []podImage
	}
	var work []checked
	verdicts := map[reverifyTarget]*imageOutcome{}
	pulls := map[string]authn.Keychain{}
	for i := range pods {
		p := &pods[i]
		if r.exempt[p.Namespace] || !snap.coversNamespace(p.Namespace) ||
			p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
			rep.Skipped++
			continue
		}
		imgs := podImages(p)
		work = append(work, checked{p, imgs})
		pk := ""
		if w.pulls != nil {
			pk = pullKey(p.Namespace, &p.Spec)
			if _, ok := pulls[pk]; !ok {
				kc, err := w.pulls.keychain(ctx, p.Namespace, &p.Spec)
				if err != nil {
					r.log.Warn("re-verifying without the pod's pull secrets", "namespace", p.Namespace, "pod", p.Name, "error", err.Error())
				}
				pulls[pk] = kc
			}
		}
		for _, img := range imgs {
			verdicts[reverifyTarget{p.Namespace, img.ref, pk}] = nil
		}
	}
	rep.Pods, rep.Images = len(work), len(verdicts)
	r.verifyAll(ctx, snap, verdicts, pulls)
	if err := ctx.Err(); err != nil {
		// Stopped (Close, or the caller gave up): what was not verified is
		// unknown, not a violation.
		rep.Error = fmt.Sprintf("re-verification: stopped: %v", err)
		finish("error")
		return rep, fmt.Errorf("re-verification: stopped: %w", err)
	}

	// One result per image of each pod.
	var results []podResult
	for _, c := range work {
		byKey := map[string]int{}
		for _, img := range c.images {
			key := img.image + "\x00" + img.ref
			if j, ok := byKey[key]; ok {
				results[j].Containers = append(results[j].Containers, img.container)
				continue
			}
			pk := ""
			if w.pulls != nil {
				pk = pullKey(c.pod.Namespace, &c.pod.Spec)
			}
			v := verdicts[reverifyTarget{c.pod.Namespace, img.ref, pk}]
			result, reason := classify(v.err)
			byKey[key] = len(results)
			results = append(results, podResult{
				PodImageResult: PodImageResult{
					Namespace: c.pod.Namespace, Pod: c.pod.Name, Containers: []string{img.container},
					Image: img.image, Digest: v.digest, DigestSource: digestSource(img, v.digest), Result: result, Reason: reason,
				},
				pod: c.pod, first: img,
			})
		}
	}
	slices.SortStableFunc(results, func(a, b podResult) int {
		return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Pod, b.Pod), cmp.Compare(a.Image, b.Image))
	})

	// Report each violation: metric, log and Event.
	gauges := map[string][]string{}
	recorded := map[string]time.Time{}
	for _, res := range results {
		rep.Results = append(rep.Results, res.PodImageResult)
		w.metrics.reverifyImages.WithLabelValues(res.Result).Inc()
		if res.Passed() {
			continue
		}
		rep.Violations++
		labels := []string{res.Namespace, res.Pod, res.Image, res.Digest, res.Result}
		gauges[strings.Join(labels, "\x00")] = labels
		w.metrics.runtimeViolations.WithLabelValues(labels...).Set(1)
		r.log.Warn("runtime image verification failed", "namespace", res.Namespace, "pod", res.Pod,
			"containers", res.Containers, "image", res.Image, "digest", res.Digest, "digestSource", res.DigestSource,
			"result", res.Result, "reason", res.Reason, "trigger", trigger, "policyVersion", snap.version)

		ev := r.event(res)
		if at, ok := r.recorded[ev.Name]; ok && start.Sub(at) < eventRepeat {
			recorded[ev.Name] = at
			continue
		}
		if err := r.kube.recordEvent(ctx, ev); err != nil {
			rep.EventErrors++
			w.metrics.reverifyEvents.WithLabelValues("error").Inc()
			r.log.Error("recording the Event of a runtime violation failed; it is tried again on the next pass",
				"namespace", res.Namespace, "pod", res.Pod, "image", res.Image, "event", ev.Name, "error", err.Error())
			continue
		}
		w.metrics.reverifyEvents.WithLabelValues("recorded").Inc()
		recorded[ev.Name] = start
	}
	for key, labels := range r.gauges {
		if _, ok := gauges[key]; !ok {
			w.metrics.runtimeViolations.DeleteLabelValues(labels...)
			r.log.Info("runtime image verification no longer fails", "namespace", labels[0], "pod", labels[1],
				"image", labels[2], "digest", labels[3], "was", labels[4], "trigger", trigger)
		}
	}
	r.gauges, r.recorded = gauges, recorded

	finish("ok")
	w.metrics.reverifyLastSuccess.Set(float64(w.o.now().Unix()))
	r.last.Store(&reverifyStatus{ReverifyReport: rep})
	r.log.Info("re-verification pass", "trigger", trigger, "pods", rep.Pods, "skipped", rep.Skipped, "images", rep.Images,
		"violations", rep.Violations, "eventErrors", rep.EventErrors, "policyVersion", snap.version,
		"duration", rep.Duration.String())
	return rep, nil
}

// coversNamespace reports whether a tenant decides any image in namespace.
func (s *snapshot) coversNamespace(namespace string) bool {
	for _, t := range s.tenants {
		if matchAny(t.namespaces, namespace) {
			return true
		}
	}
	return false
}

// podResult is a result with the pod and first container it is about, for
// its Event.
type podResult struct {
	PodImageResult
	pod   *corev1.Pod
	first podImage
}

// imageOutcome is the verdict on one reverifyTarget.
type imageOutcome struct {
	digest string
	err    error
}

// verifyAll decides every target, a few at a time, each within the
// admission deadline, through the webhook's own decision (cache and
// revocation list included).
func (r *reverifier) verifyAll(ctx context.Context, snap *snapshot, verdicts map[reverifyTarget]*imageOutcome, pulls map[string]authn.Keychain) {
	var mu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, maxConcurrentImages)
	targets := slices.Collect(maps.Keys(verdicts)) // the goroutines write to the map
	for _, t := range targets {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			ictx, cancel := context.WithTimeout(ctx, r.w.o.deadline)
			defer cancel()
			d, _, err := r.w.decideGuarded(ictx, snap, t.namespace, t.ref, false, pulls[t.pull])
			mu.Lock()
			verdicts[t] = &imageOutcome{digest: d, err: err}
			mu.Unlock()
		}()
	}
	wg.Wait()
}

// podImages lists the images of a pod's containers, init containers,
// ephemeral containers and image volumes. An image the kubelet reports
// running by digest (status imageID "...@sha256:...", for a volume the
// imageRef of a container's mount of it) is verified at that digest, in the
// repository the spec names: that is what runs, wherever its tag points now.
func podImages(p *corev1.Pod) []podImage {
	running := map[string]string{}
	for prefix, statuses := range map[string][]corev1.ContainerStatus{
		"containers": p.Status.ContainerStatuses, "initContainers": p.Status.InitContainerStatuses,
		"ephemeralContainers": p.Status.EphemeralContainerStatuses,
	} {
		for _, s := range statuses {
			running[prefix+"/"+s.Name] = s.ImageID
			for _, m := range s.VolumeMounts {
				if m.VolumeStatus != nil && m.VolumeStatus.Image != nil && m.VolumeStatus.Image.ImageRef != "" {
					running["volumes/"+m.Name] = m.VolumeStatus.Image.ImageRef
				}
			}
		}
	}
	var out []podImage
	add := func(field, name, image string) {
		img := podImage{container: name, fieldPath: "spec." + field + "{" + name + "}", image: image, ref: image}
		if ref, ok := runningRef(image, running[field+"/"+name]); ok {
			img.ref, img.source = ref, DigestFromStatus
		}
		out = append(out, img)
	}
	for _, c := range p.Spec.Containers {
		add("containers", c.Name, c.Image)
	}
	for _, c := range p.Spec.InitContainers {
		add("initContainers", c.Name, c.Image)
	}
	for _, c := range p.Spec.EphemeralContainers {
		add("ephemeralContainers", c.Name, c.Image)
	}
	for _, v := range p.Spec.Volumes {
		if v.Image == nil {
			continue
		}
		img := podImage{container: "volume " + v.Name, fieldPath: "spec.volumes{" + v.Name + "}", image: v.Image.Reference, ref: v.Image.Reference}
		if ref, ok := runningRef(v.Image.Reference, running["volumes/"+v.Name]); ok {
			img.ref, img.source = ref, DigestFromStatus
		}
		out = append(out, img)
	}
	return out
}

// runningRef is the spec image's repository at the digest of a kubelet
// image ID ("docker-pullable://repo@sha256:...", "repo@sha256:..."); false
// when the image ID names no manifest digest (empty, or an image config ID
// "sha256:..." that some runtimes report).
func runningRef(specImage, imageID string) (string, bool) {
	i := strings.LastIndexByte(imageID, '@')
	if i < 0 || !sha256Digest.MatchString(imageID[i+1:]) {
		return "", false
	}
	ref, err := name.ParseReference(specImage)
	if err != nil {
		return "", false // verified as written: denied as invalid
	}
	return ref.Context().Name() + "@" + imageID[i+1:], true
}

func digestSource(img podImage, digest string) string {
	switch {
	case img.source != "":
		return img.source
	case digest == "":
		return ""
	case strings.Contains(img.image, "@"):
		return DigestFromSpec
	}
	return DigestFromTag
}

// event is the Warning Event about a violation. Its name is derived from the
// pod, the image, the digest and the result, so that a violation that
// persists, or that another replica reports too, is counted on one Event.
func (r *reverifier) event(res podResult) *corev1.Event {
	h := sha256.New()
	for _, s := range []string{string(res.pod.UID), res.Namespace, res.Pod, res.Image, res.Digest, res.Result} {
		fmt.Fprintf(h, "%d:%s", len(s), s)
	}
	suffix := "." + hex.EncodeToString(h.Sum(nil))[:16]
	podName := res.Pod
	if n := validation.DNS1123SubdomainMaxLength - len(suffix); len(podName) > n {
		podName = strings.TrimRight(podName[:n], ".-")
	}
	msg := fmt.Sprintf("image %q", res.Image)
	if res.Digest != "" {
		msg += " (" + res.Digest + ")"
	}
	what := "container"
	if len(res.Containers) > 1 {
		what = "containers"
	}
	msg += fmt.Sprintf(" in %s %s no longer passes verification: %s", what, strings.Join(res.Containers, ", "), res.Reason)
	now := metav1.NewTime(r.w.o.now())
	return &corev1.Event{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Event"},
		ObjectMeta: metav1.ObjectMeta{Name: podName + suffix, Namespace: res.Namespace},
		InvolvedObject: corev1.ObjectReference{
			Kind: "Pod", APIVersion: "v1", Namespace: res.Namespace, Name: res.Pod,
			UID: res.pod.UID, ResourceVersion: res.pod.ResourceVersion, FieldPath: res.first.fieldPath,
		},
		Reason:         EventReasonVerificationFailed,
		Message:        truncate(msg, maxEventMessage),
		Type:           corev1.EventTypeWarning,
		Source:         corev1.EventSource{Component: EventSourceComponent},
		FirstTimestamp: now,
		LastTimestamp:  now,
		Count:          1,
	}
}

// serveReport answers PathReverify with the last report.
func (r *reverifier) serveReport(rw http.ResponseWriter, _ *http.Request) {
	st := r.last.Load()
	if st == nil {
		http.Error(rw, "no re-verification pass has finished yet", http.StatusServiceUnavailable)
		return
	}
	data, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		http.Error(rw, err.Error(), http.StatusInternalServerError)
		return
	}
	rw.Header().Set("Content-Type", "application/json")
	rw.Write(append(data, '\n'))
}
