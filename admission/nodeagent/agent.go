package nodeagent

import (
	"cmp"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/kubernetes"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/twinforge/twinforge/admission"
)

// What a container's check found, in ContainerResult.Result and the
// metrics.
const (
	// ResultVerified: it runs what admission recorded, which still passes.
	ResultVerified = "verified"
	// ResultMismatch: it runs another image than the one recorded.
	ResultMismatch = "mismatch"
	// ResultNoRecord: its pod has no admission record, or the record has no
	// entry for it.
	ResultNoRecord = "no_record"
	// ResultInvalidRecord: its pod's record does not verify (edited, moved,
	// signed by another key, malformed).
	ResultInvalidRecord = "invalid_record"
	// ResultRevoked: the recorded digest is on the revocation list.
	ResultRevoked = "revoked"
	// ResultVerification: the recorded digest no longer passes the policy
	// (signature, identity, trusted root, maxAge, ...).
	ResultVerification = "verification_failed"
	// ResultError: the agent could not check (runtime, API server or
	// registry unreachable). Not a violation: nothing is evicted unless
	// WithOnError(Evict).
	ResultError = "error"
)

// Why a pass ran, in Report.Trigger and the passes metric.
const (
	TriggerStart     = "start"
	TriggerInterval  = "interval"
	TriggerContainer = "container_event" // the runtime reported a container event
	TriggerChange    = "change"          // the policy files changed
	TriggerRetry     = "retry"           // the pass before failed
	TriggerRequest   = "request"         // Agent.Pass
)

// EventSourceComponent is the source component of the agent's Events.
const EventSourceComponent = "twinforge-node-agent"

// Event reasons, by result.
var eventReasons = map[string]string{
	ResultMismatch:      "ImageMismatch",
	ResultNoRecord:      "AdmissionRecordMissing",
	ResultInvalidRecord: "AdmissionRecordInvalid",
	ResultRevoked:       "ImageRevoked",
	ResultVerification:  "ImageVerificationFailed",
	ResultError:         "RuntimeVerificationError",
}

// Action is what the agent does about a finding besides reporting it.
type Action string

const (
	// Alert reports (metric, log, Event) and does nothing else.
	Alert Action = "alert"
	// Evict also evicts the pod through the Eviction API.
	Evict Action = "evict"
)

// ParseAction reads "alert" or "evict".
func ParseAction(s string) (Action, error) {
	switch a := Action(s); a {
	case Alert, Evict:
		return a, nil
	}
	return "", fmt.Errorf("action %q: want alert or evict", s)
}

// CRI is the container runtime's CRI services.
type CRI struct {
	Runtime runtimeapi.RuntimeServiceClient
	Images  runtimeapi.ImageServiceClient
}

// DialCRI connects to a runtime's CRI socket, unix:///PATH (or a plain
// path). The connection is made lazily: a runtime that is not there yet
// fails the passes, not DialCRI.
func DialCRI(endpoint string) (CRI, io.Closer, error) {
	path, ok := strings.CutPrefix(endpoint, "unix://")
	if !ok && strings.Contains(endpoint, "://") {
		return CRI{}, nil, fmt.Errorf("CRI endpoint %q: want unix:///PATH", endpoint)
	}
	if path == "" {
		return CRI{}, nil, fmt.Errorf("CRI endpoint %q: no socket path", endpoint)
	}
	conn, err := grpc.NewClient("unix://"+path, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(16<<20)))
	if err != nil {
		return CRI{}, nil, fmt.Errorf("CRI endpoint %q: %w", endpoint, err)
	}
	return CRI{Runtime: runtimeapi.NewRuntimeServiceClient(conn), Images: runtimeapi.NewImageServiceClient(conn)}, conn, nil
}

// Report is the outcome of one pass.
type Report struct {
	Trigger       string        `json:"trigger"`
	Node          string        `json:"node"`
	Start         time.Time     `json:"start"`
	Duration      time.Duration `json:"durationNanos"`
	PolicyVersion string        `json:"policyVersion"`
	// Containers is how many running containers were checked; Skipped
	// how many were not (exempt namespaces, not a pod's).
	Containers int `json:"containers"`
	Skipped    int `json:"skipped"`
	// Results holds one entry per container checked, sorted by namespace,
	// pod and container.
	Results []ContainerResult `json:"results"`
	// Violations and Errors count the results that are violations and
	// ResultError.
	Violations int `json:"violations"`
	Errors     int `json:"errors"`
	// Evicted are the pods evicted in this pass, "namespace/name".
	Evicted []string `json:"evicted,omitempty"`
	// Error is why the pass failed (the containers or pods could not be
	// listed); a failed pass has no Results.
	Error string `json:"error,omitempty"`
}

// ContainerResult is the check of one running container.
type ContainerResult struct {
	Namespace   string `json:"namespace"`
	Pod         string `json:"pod"`
	PodUID      string `json:"podUID"`
	Container   string `json:"container"`
	ContainerID string `json:"containerID"`
	// ImageID is the image config digest the runtime started it from;
	// ImageRef the repository digest the runtime reports for it.
	ImageID  string `json:"imageID"`
	ImageRef string `json:"imageRef,omitempty"`
	// Recorded is the image admission recorded for it, "repo@sha256:...".
	Recorded string `json:"recorded,omitempty"`
	Result   string `json:"result"`
	Reason   string `json:"reason,omitempty"`
}

// Violation reports whether the result is a violation (not verified, not
// the agent's own failure to check).
func (r ContainerResult) Violation() bool {
	return r.Result != ResultVerified && r.Result != ResultError
}

// Agent is a node agent.
type Agent interface {
	// Run runs passes until ctx ends: at once, every interval, on container
	// events and policy changes. It returns nil when ctx ends.
	Run(ctx context.Context) error
	// Pass runs one pass now and returns its report; the error says the
	// containers or pods could not be listed (the report says so too).
	Pass(ctx context.Context) (*Report, error)
	// Handler serves /metrics (the agent's and the verifier's), /healthz
	// and /report (the last report, JSON).
	Handler() http.Handler
}

// Defaults of the options.
const (
	DefaultInterval = time.Minute
	// criTimeout bounds one CRI call, apiTimeout one API request.
	criTimeout = 10 * time.Second
	apiTimeout = 30 * time.Second
	// eventRepeat is how often a finding that persists is counted again on
	// its Event.
	eventRepeat = time.Hour
	// retryDelay is the first delay before a failed pass is tried again.
	retryDelay = 5 * time.Second
	// debounce gathers a burst of container events into one pass.
	debounce = 500 * time.Millisecond
	// maxStatuses bounds the container status cache.
	maxStatuses = 16384
)

// Option configures New.
type Option func(*options) error

type options struct {
	logger      *slog.Logger
	interval    time.Duration
	onViolation Action
	onError     Action
	exempt      map[string]bool
	platform    v1.Platform
	now         func() time.Time
}

// WithLogger sets the logger. The default discards everything.
func WithLogger(l *slog.Logger) Option {
	return func(o *options) error {
		if l == nil {
			return errors.New("WithLogger: nil logger")
		}
		o.logger = l
		return nil
	}
}

// WithInterval sets how often a pass runs besides on events. The default
// value is DefaultInterval (1m).
func WithInterval(d time.Duration) Option {
	return func(o *options) error {
		if d <= 0 {
			return fmt.Errorf("WithInterval: %s: want more than 0", d)
		}
		o.interval = d
		return nil
	}
}

// WithOnViolation sets what to do about a violation (mismatch, no or
// invalid record, revoked, no longer verified). The default is Alert.
func WithOnViolation(a Action) Option {
	return func(o *options) error {
		if _, err := ParseAction(string(a)); err != nil {
			return fmt.Errorf("WithOnViolation: %w", err)
		}
		o.onViolation = a
		return nil
	}
}

// WithOnError sets what to do about a container the agent could not check
// (a registry or the runtime did not answer). The default is Alert: the
// agent never evicts on its own failure unless told to fail closed.
func WithOnError(a Action) Option {
	return func(o *options) error {
		if _, err := ParseAction(string(a)); err != nil {
			return fmt.Errorf("WithOnError: %w", err)
		}
		o.onError = a
		return nil
	}
}

// WithExemptNamespaces names namespaces whose containers are not checked:
// those admission does not see (the webhook's own, kube-system). None by
// default.
func WithExemptNamespaces(namespaces ...string) Option {
	return func(o *options) error {
		for _, ns := range namespaces {
			if errs := validation.IsDNS1123Label(ns); len(errs) > 0 {
				return fmt.Errorf("WithExemptNamespaces: namespace %q: %s", ns, strings.Join(errs, "; "))
			}
			o.exempt[ns] = true
		}
		return nil
	}
}

// WithPlatform sets the node's platform, which picks the manifest of an
// index. The default is the agent's own (linux/GOARCH).
func WithPlatform(p v1.Platform) Option {
	return func(o *options) error {
		if p.OS == "" || p.Architecture == "" {
			return fmt.Errorf("WithPlatform: %q: want OS and architecture", p.String())
		}
		o.platform = p
		return nil
	}
}

// agent is the Agent.
type agent struct {
	node     string
	cri      CRI
	kube     kubernetes.Interface
	verifier admission.Verifier
	keys     []ed25519.PublicKey
	o        *options
	log      *slog.Logger
	m        *metrics
	mux      *http.ServeMux

	last atomic.Pointer[Report]

	mu       sync.Mutex // one pass at a time; guards the fields below
	statuses map[string]containerStatus
	gauges   map[string][]string // violations gauge label values, by joined key
	recorded map[string]time.Time
	evicted  map[types.UID]bool
	// records are the verified records of the pods, by pod, kept while the
	// annotations stay the same.
	records map[types.UID]cachedRecord
}

// cachedRecord is the outcome of verifying a pod's record annotations.
type cachedRecord struct {
	record, signature string
	rec               *admission.Record
	err               error
}

var _ Agent = (*agent)(nil)

// containerStatus is what the agent keeps of a container's status: fixed
// for the container's life.
type containerStatus struct {
	imageID, imageRef string
}

// New returns the agent of node. cri reaches the node's runtime, kube the
// API server (pods of the node, Events, evictions), v decides images as the
// webhook does, and keys verify the admission records.
func New(node string, cri CRI, kube kubernetes.Interface, v admission.Verifier, keys []ed25519.PublicKey, opts ...Option) (Agent, error) {
	switch {
	case node == "":
		return nil, errors.New("node agent: the node name is required")
	case cri.Runtime == nil || cri.Images == nil:
		return nil, errors.New("node agent: no CRI runtime and image service")
	case kube == nil:
		return nil, errors.New("node agent: no Kubernetes client")
	case v == nil:
		return nil, errors.New("node agent: no verifier")
	case len(keys) == 0:
		return nil, errors.New("node agent: no admission record key to verify records with")
	}
	o := &options{
		logger:      slog.New(slog.NewJSONHandler(io.Discard, nil)),
		interval:    DefaultInterval,
		onViolation: Alert,
		onError:     Alert,
		exempt:      map[string]bool{},
		platform:    v1.Platform{OS: "linux", Architecture: runtime.GOARCH},
		now:         time.Now,
	}
	for _, opt := range opts {
		if err := opt(o); err != nil {
			return nil, err
		}
	}
	a := &agent{
		node: node, cri: cri, kube: kube, verifier: v, keys: keys, o: o, log: o.logger.With("node", node),
		m: newMetrics(), statuses: map[string]containerStatus{}, gauges: map[string][]string{},
		recorded: map[string]time.Time{}, evicted: map[types.UID]bool{}, records: map[types.UID]cachedRecord{},
	}
	a.mux = http.NewServeMux()
	a.mux.Handle("GET /metrics", promhttp.HandlerFor(prometheus.Gatherers{a.m.registry, v.Gatherer()}, promhttp.HandlerOpts{}))
	a.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok\n") })
	a.mux.HandleFunc("GET /report", a.serveReport)
	return a, nil
}

func (a *agent) Handler() http.Handler { return a.mux }

func (a *agent) serveReport(w http.ResponseWriter, _ *http.Request) {
	rep := a.last.Load()
	if rep == nil {
		http.Error(w, "no pass has finished yet", http.StatusServiceUnavailable)
		return
	}
	data, _ := json.MarshalIndent(rep, "", "  ")
	w.Header().Set("Content-Type", "application/json")
	w.Write(append(data, '\n'))
}

func (a *agent) Run(ctx context.Context) error {
	events := a.watchContainers(ctx)
	timer := time.NewTimer(0)
	defer timer.Stop()
	trigger := TriggerStart
	retry := min(retryDelay, a.o.interval)
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-timer.C:
		case <-a.verifier.Changes():
			trigger = TriggerChange
		case <-events:
			// A container starting comes with a few events: one pass.
			select {
			case <-time.After(debounce):
			case <-ctx.Done():
				return nil
			}
			drain(events)
			trigger = TriggerContainer
		}
		_, err := a.pass(ctx, trigger)
		if ctx.Err() != nil {
			return nil
		}
		next := a.o.interval
		trigger = TriggerInterval
		if err != nil {
			next, trigger = retry, TriggerRetry
			retry = min(2*retry, a.o.interval)
		} else {
			retry = min(retryDelay, a.o.interval)
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		timer.Reset(next)
	}
}

func drain(ch <-chan struct{}) {
	for {
		select {
		case <-ch:
		default:
			return
		}
	}
}

// watchContainers follows the runtime's container events
// (GetContainerEvents) and signals each on the channel it returns; a stream
// that fails is opened again after a delay. Runtimes without the call leave
// the interval to find changes.
func (a *agent) watchContainers(ctx context.Context) <-chan struct{} {
	ch := make(chan struct{}, 1)
	go func() {
		delay := retryDelay
		for ctx.Err() == nil {
			stream, err := a.cri.Runtime.GetContainerEvents(ctx, &runtimeapi.GetEventsRequest{})
			if err == nil {
				for {
					if _, err = stream.Recv(); err != nil {
						break
					}
					delay = retryDelay
					select {
					case ch <- struct{}{}:
					default:
					}
				}
			}
			if ctx.Err() != nil {
				return
			}
			a.log.Warn("the runtime's container events are not followed; changes are found on the interval", "retryIn", delay.String(), "error", err.Error())
			select {
			case <-time.After(delay):
			case <-ctx.Done():
				return
			}
			delay = min(2*delay, a.o.interval)
		}
	}()
	return ch
}

func (a *agent) Pass(ctx context.Context) (*Report, error) {
	return a.pass(ctx, TriggerRequest)
}

// running is a running container of a pod.
type running struct {
	id                        string
	namespace, pod, container string
	uid                       types.UID
	status                    containerStatus
	statusErr                 error
}

func (a *agent) pass(ctx context.Context, trigger string) (*Report, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	start := a.o.now()
	rep := &Report{Trigger: trigger, Node: a.node, Start: start, PolicyVersion: a.verifier.PolicyVersion()}
	fail := func(source string, err error) (*Report, error) {
		rep.Error = err.Error()
		rep.Duration = a.o.now().Sub(start)
		a.m.passes.WithLabelValues(trigger, "error").Inc()
		a.m.errors.WithLabelValues(source).Inc()
		a.log.Error("node agent pass failed; the violations reported stay", "trigger", trigger, "error", rep.Error)
		if prev := a.last.Load(); prev == nil {
			a.last.Store(rep)
		}
		return rep, err
	}

	cctx, cancel := context.WithTimeout(ctx, criTimeout)
	list, err := a.cri.Runtime.ListContainers(cctx, &runtimeapi.ListContainersRequest{Filter: &runtimeapi.ContainerFilter{
		State: &runtimeapi.ContainerStateValue{State: runtimeapi.ContainerState_CONTAINER_RUNNING},
	}})
	cancel()
	if err != nil {
		return fail("cri", fmt.Errorf("CRI: listing the running containers: %w", err))
	}
	actx, cancel := context.WithTimeout(ctx, apiTimeout)
	podList, err := a.kube.CoreV1().Pods(metav1.NamespaceAll).List(actx, metav1.ListOptions{FieldSelector: "spec.nodeName=" + a.node})
	cancel()
	if err != nil {
		return fail("api", fmt.Errorf("Kubernetes API: listing the pods of node %s: %w", a.node, err))
	}
	pods := map[types.UID]*corev1.Pod{}
	for i := range podList.Items {
		pods[podList.Items[i].UID] = &podList.Items[i]
	}

	// The containers, with their status (read once per container).
	var containers []running
	alive := map[string]bool{}
	for _, c := range list.Containers {
		alive[c.Id] = true
		r := running{
			id: c.Id, namespace: c.Labels["io.kubernetes.pod.namespace"], pod: c.Labels["io.kubernetes.pod.name"],
			container: c.Labels["io.kubernetes.container.name"], uid: types.UID(c.Labels["io.kubernetes.pod.uid"]),
		}
		if r.uid == "" || r.container == "" || a.o.exempt[r.namespace] {
			rep.Skipped++
			continue
		}
		st, ok := a.statuses[c.Id]
		if !ok {
			st, err = a.status(ctx, c.Id)
			if err != nil {
				r.statusErr = err
			} else if len(a.statuses) < maxStatuses {
				a.statuses[c.Id] = st
			}
		}
		r.status = st
		containers = append(containers, r)
	}
	for id := range a.statuses {
		if !alive[id] {
			delete(a.statuses, id)
		}
	}
	a.imageStatuses(ctx, containers)

	for _, c := range containers {
		res := a.check(ctx, c, pods[c.uid])
		rep.Results = append(rep.Results, res)
	}
	slices.SortFunc(rep.Results, func(x, y ContainerResult) int {
		return cmp.Or(cmp.Compare(x.Namespace, y.Namespace), cmp.Compare(x.Pod, y.Pod), cmp.Compare(x.Container, y.Container))
	})
	rep.Containers = len(rep.Results)
	a.report(ctx, rep, pods, start)

	rep.Duration = a.o.now().Sub(start)
	a.m.passes.WithLabelValues(trigger, "ok").Inc()
	a.m.lastSuccess.Set(float64(a.o.now().Unix()))
	a.last.Store(rep)
	a.log.Info("node agent pass", "trigger", trigger, "containers", rep.Containers, "skipped", rep.Skipped,
		"violations", rep.Violations, "errors", rep.Errors, "evicted", len(rep.Evicted), "policyVersion", rep.PolicyVersion,
		"duration", rep.Duration.String())
	return rep, nil
}

// status reads the image a container was started from.
func (a *agent) status(ctx context.Context, id string) (containerStatus, error) {
	ctx, cancel := context.WithTimeout(ctx, criTimeout)
	defer cancel()
	resp, err := a.cri.Runtime.ContainerStatus(ctx, &runtimeapi.ContainerStatusRequest{ContainerId: id})
	if err != nil {
		return containerStatus{}, fmt.Errorf("CRI: status of container %s: %w", id, err)
	}
	st := resp.GetStatus()
	cs := containerStatus{imageID: st.GetImageId(), imageRef: st.GetImageRef()}
	if cs.imageID == "" && strings.HasPrefix(cs.imageRef, "sha256:") {
		cs.imageID = cs.imageRef // runtimes before ImageId report the image ID here
	}
	if cs.imageID == "" {
		return containerStatus{}, fmt.Errorf("CRI: container %s: the runtime reports no image ID", id)
	}
	return cs, nil
}

// imageStatuses asks the runtime about each image the containers run, once
// per image: an image that is gone from its store, or that it now
// describes under other digests, is logged (what runs is still what the
// container was started from).
func (a *agent) imageStatuses(ctx context.Context, containers []running) {
	seen := map[string]bool{}
	for _, c := range containers {
		id := c.status.imageID
		if id == "" || seen[id] {
			continue
		}
		seen[id] = true
		ictx, cancel := context.WithTimeout(ctx, criTimeout)
		resp, err := a.cri.Images.ImageStatus(ictx, &runtimeapi.ImageStatusRequest{Image: &runtimeapi.ImageSpec{Image: id}})
		cancel()
		switch {
		case err != nil:
			a.m.errors.WithLabelValues("cri").Inc()
			a.log.Warn("CRI: image status", "image", id, "error", err.Error())
		case resp.GetImage() == nil:
			a.log.Info("an image that runs is no longer in the runtime's store", "image", id)
		default:
			a.log.Debug("image", "image", id, "repoDigests", resp.GetImage().GetRepoDigests(), "repoTags", resp.GetImage().GetRepoTags())
		}
	}
}

// check is the check of one container.
func (a *agent) check(ctx context.Context, c running, pod *corev1.Pod) ContainerResult {
	res := ContainerResult{Namespace: c.namespace, Pod: c.pod, PodUID: string(c.uid), Container: c.container,
		ContainerID: c.id, ImageID: c.status.imageID, ImageRef: c.status.imageRef}
	set := func(result, format string, args ...any) ContainerResult {
		res.Result, res.Reason = result, fmt.Sprintf(format, args...)
		return res
	}
	if c.statusErr != nil {
		return set(ResultError, "%v", c.statusErr)
	}
	if pod == nil {
		return set(ResultError, "the API server knows no pod %s/%s (uid %s) on node %s", c.namespace, c.pod, c.uid, a.node)
	}
	rec, err := a.record(pod)
	switch {
	case errors.Is(err, admission.ErrNoRecord):
		return set(ResultNoRecord, "the pod has no admission record")
	case err != nil:
		a.m.errors.WithLabelValues("record").Inc()
		return set(ResultInvalidRecord, "%v", err)
	}
	field, specImage := containerField(&pod.Spec, c.container)
	entry, ok := rec.Container(field, c.container)
	if !ok {
		return set(ResultNoRecord, "the admission record has no entry for container %s", c.container)
	}
	res.Recorded = entry.Image
	if specImage != entry.Image {
		return set(ResultMismatch, "the pod spec names image %q, admission recorded %q", specImage, entry.Image)
	}
	d, err := name.NewDigest(entry.Image)
	if err != nil {
		return set(ResultInvalidRecord, "recorded image %q: %v", entry.Image, err)
	}
	want, err := a.verifier.ConfigDigest(ctx, d, a.o.platform, pod.Namespace, &pod.Spec)
	if err != nil {
		a.m.errors.WithLabelValues("registry").Inc()
		return set(ResultError, "reading the config of %s: %v", entry.Image, err)
	}
	if c.status.imageID != want.String() {
		return set(ResultMismatch, "the container runs image %s, but %s (recorded at admission) is image %s", c.status.imageID, entry.Digest, want)
	}
	if i := strings.LastIndexByte(c.status.imageRef, '@'); i >= 0 && c.status.imageRef[i+1:] != entry.Digest {
		return set(ResultMismatch, "the runtime reports digest %s, admission recorded %s", c.status.imageRef[i+1:], entry.Digest)
	}
	dec := a.verifier.Verify(ctx, admission.VerifyRequest{Namespace: pod.Namespace, Image: entry.Image, PodSpec: &pod.Spec})
	switch dec.Result {
	case admission.ResultAdmitted:
		return set(ResultVerified, "")
	case admission.ResultRevoked:
		return set(ResultRevoked, "%s", dec.Reason)
	case admission.ResultRegistry, admission.ResultTimeout, admission.ResultNotFound, admission.ResultError:
		a.m.errors.WithLabelValues("registry").Inc()
		return set(ResultError, "%s", dec.Reason)
	}
	return set(ResultVerification, "%s", dec.Reason)
}

// record verifies a pod's admission record, once for as long as its
// annotations do not change.
func (a *agent) record(pod *corev1.Pod) (*admission.Record, error) {
	r, s := pod.Annotations[admission.AnnotationRecord], pod.Annotations[admission.AnnotationRecordSignature]
	if c, ok := a.records[pod.UID]; ok && c.record == r && c.signature == s {
		return c.rec, c.err
	}
	rec, err := admission.VerifyRecord(pod.Annotations, pod.Namespace, a.keys)
	a.records[pod.UID] = cachedRecord{record: r, signature: s, rec: rec, err: err}
	return rec, err
}

// containerField finds a container of a pod spec: its field and image.
func containerField(spec *corev1.PodSpec, container string) (field, image string) {
	for _, c := range spec.Containers {
		if c.Name == container {
			return "containers", c.Image
		}
	}
	for _, c := range spec.InitContainers {
		if c.Name == container {
			return "initContainers", c.Image
		}
	}
	for _, c := range spec.EphemeralContainers {
		if c.Name == container {
			return "ephemeralContainers", c.Image
		}
	}
	return "", ""
}

// report reports each finding: metric, log, Event and the action chosen.
func (a *agent) report(ctx context.Context, rep *Report, pods map[types.UID]*corev1.Pod, start time.Time) {
	gauges := map[string][]string{}
	recorded := map[string]time.Time{}
	toEvict := map[types.UID]string{} // pod → why
	for _, res := range rep.Results {
		a.m.containers.WithLabelValues(res.Result).Inc()
		if res.Result == ResultVerified {
			continue
		}
		action := a.o.onError
		if res.Violation() {
			rep.Violations++
			action = a.o.onViolation
		} else {
			rep.Errors++
		}
		labels := []string{res.Namespace, res.Pod, res.Container, res.Result}
		gauges[strings.Join(labels, "\x00")] = labels
		a.m.violations.WithLabelValues(labels...).Set(1)
		a.log.Warn("running container does not pass", "namespace", res.Namespace, "pod", res.Pod, "container", res.Container,
			"containerID", res.ContainerID, "imageID", res.ImageID, "recorded", res.Recorded, "result", res.Result, "reason", res.Reason)
		pod := pods[types.UID(res.PodUID)]
		if pod == nil {
			continue
		}
		ev := a.event(pod, res)
		if at, ok := a.recorded[ev.Name]; ok && start.Sub(at) < eventRepeat {
			recorded[ev.Name] = at
		} else if err := admission.RecordEvent(ctx, a.kube, ev); err != nil {
			a.m.events.WithLabelValues("error").Inc()
			a.log.Error("recording an Event failed; tried again on the next pass", "namespace", res.Namespace, "pod", res.Pod, "error", err.Error())
		} else {
			a.m.events.WithLabelValues("recorded").Inc()
			recorded[ev.Name] = start
		}
		if action == Evict {
			if _, ok := toEvict[pod.UID]; !ok {
				toEvict[pod.UID] = res.Container + ": " + res.Result
			}
		}
	}
	for key, labels := range a.gauges {
		if _, ok := gauges[key]; !ok {
			a.m.violations.DeleteLabelValues(labels...)
		}
	}
	a.gauges, a.recorded = gauges, recorded
	for uid := range a.evicted {
		if _, ok := pods[uid]; !ok {
			delete(a.evicted, uid)
		}
	}
	for uid := range a.records {
		if _, ok := pods[uid]; !ok {
			delete(a.records, uid)
		}
	}
	for uid, why := range toEvict {
		pod := pods[uid]
		if a.evicted[uid] || pod.DeletionTimestamp != nil {
			continue
		}
		if err := a.evict(ctx, pod); err != nil {
			a.log.Error("evicting a pod failed; tried again on the next pass", "namespace", pod.Namespace, "pod", pod.Name, "why", why, "error", err.Error())
			continue
		}
		a.evicted[uid] = true
		rep.Evicted = append(rep.Evicted, pod.Namespace+"/"+pod.Name)
		a.log.Warn("evicted a pod whose container does not pass", "namespace", pod.Namespace, "pod", pod.Name, "why", why)
	}
	slices.Sort(rep.Evicted)
}

// evict evicts a pod through the Eviction API (PodDisruptionBudgets hold),
// for exactly the pod checked (its UID).
func (a *agent) evict(ctx context.Context, pod *corev1.Pod) error {
	ctx, cancel := context.WithTimeout(ctx, apiTimeout)
	defer cancel()
	uid := pod.UID
	err := a.kube.PolicyV1().Evictions(pod.Namespace).Evict(ctx, &policyv1.Eviction{
		ObjectMeta:    metav1.ObjectMeta{Name: pod.Name, Namespace: pod.Namespace},
		DeleteOptions: &metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}},
	})
	switch {
	case err == nil:
		a.m.evictions.WithLabelValues("evicted").Inc()
		return nil
	case apierrors.IsNotFound(err) || apierrors.IsConflict(err):
		a.m.evictions.WithLabelValues("gone").Inc()
		return nil
	case apierrors.IsTooManyRequests(err):
		a.m.evictions.WithLabelValues("refused").Inc()
		return fmt.Errorf("refused (a PodDisruptionBudget allows no disruption now): %w", err)
	}
	a.m.evictions.WithLabelValues("error").Inc()
	return err
}

// event is the Warning Event about a finding, named after the pod, the
// container, the image and the result, so that one that persists is counted
// on one Event.
func (a *agent) event(pod *corev1.Pod, res ContainerResult) *corev1.Event {
	h := sha256.New()
	for _, s := range []string{string(pod.UID), res.Container, res.ImageID, res.Recorded, res.Result} {
		fmt.Fprintf(h, "%d:%s", len(s), s)
	}
	suffix := ".tfna." + hex.EncodeToString(h.Sum(nil))[:16]
	podName := pod.Name
	if n := validation.DNS1123SubdomainMaxLength - len(suffix); len(podName) > n {
		podName = strings.TrimRight(podName[:n], ".-")
	}
	msg := fmt.Sprintf("container %s (image %s) on node %s: %s: %s", res.Container, res.ImageID, a.node, res.Result, res.Reason)
	if len(msg) > 1024 {
		msg = msg[:1024]
	}
	field, _ := containerField(&pod.Spec, res.Container)
	now := metav1.NewTime(a.o.now())
	return &corev1.Event{
		ObjectMeta: metav1.ObjectMeta{Name: podName + suffix, Namespace: pod.Namespace},
		InvolvedObject: corev1.ObjectReference{
			Kind: "Pod", APIVersion: "v1", Namespace: pod.Namespace, Name: pod.Name, UID: pod.UID,
			ResourceVersion: pod.ResourceVersion, FieldPath: "spec." + field + "{" + res.Container + "}",
		},
		Reason:         eventReasons[res.Result],
		Message:        msg,
		Type:           corev1.EventTypeWarning,
		Source:         corev1.EventSource{Component: EventSourceComponent, Host: a.node},
		FirstTimestamp: now,
		LastTimestamp:  now,
		Count:          1,
	}
}
