package admission

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"mime"
	"net/http"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/sigstore/sigstore-go/pkg/root"
	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/twinforge/twinforge/distribute/release"
)

// Paths the webhook serves.
const (
	PathValidate = "/validate"
	PathMutate   = "/mutate"
	PathHealthz  = "/healthz"
	PathReadyz   = "/readyz"
	PathMetrics  = "/metrics"
)

// maxConcurrentImages bounds the images of one review verified at once.
const maxConcurrentImages = 8

// maxMessageBytes bounds a denial message (registry error bodies can be
// long).
const maxMessageBytes = 4096

// Webhook is the admission webhook: an http.Handler serving PathValidate,
// PathMutate (WithMutation), PathHealthz and PathReadyz, the port the API
// server calls, which every pod of the cluster can reach too. It is safe for
// concurrent use.
type Webhook interface {
	http.Handler
	// Monitoring serves PathMetrics, PathReverify (WithReverification) and
	// PathHealthz. It says which images run where and which fail, in every
	// namespace, so it is never served on the webhook's port: give it a
	// listener of its own (ServeConfig.Monitoring), on loopback or behind a
	// bearer token.
	Monitoring() http.Handler
	// Reload re-reads the files of the Source now, as polling does. If one
	// does not parse, the error is returned and the last good version stays
	// in force. A change starts a re-verification pass
	// (WithReverification).
	Reload() error
	// Reverify re-verifies the images of the running pods now, reporting
	// each that fails as the background passes do (metric, log, Event), and
	// returns the report. It fails without WithReverification, and when the
	// pods cannot be listed (the report then says so too).
	Reverify(ctx context.Context) (*ReverifyReport, error)
	// Close stops polling the files and re-verifying; the handler keeps
	// answering.
	Close() error
}

// webhook is the Webhook.
type webhook struct {
	src      Source
	o        *options
	log      *slog.Logger
	registry registryClient
	cache    *decisionCache
	refs     refCache
	metrics  *metrics
	mux      *http.ServeMux
	ops      *http.ServeMux
	rv       *reverifier  // nil without WithReverification
	pulls    *pullSecrets // nil without WithImagePullSecrets
	configs  configDigests
	changes  chan struct{}

	snap atomic.Pointer[snapshot]
	// releaseErr is why the release index last failed to verify ("" when
	// it did).
	releaseErr atomic.Value
	reloadMu   sync.Mutex
	stop       chan struct{}
	closeOnce  sync.Once
	polling    sync.WaitGroup
}

var _ Webhook = (*webhook)(nil)

// New loads the files src names (an error if any is missing or invalid) and
// returns the webhook deciding by them. Unless WithPollInterval(0), it polls
// the files for changes until Close.
func New(src Source, opts ...Option) (Webhook, error) {
	o, err := makeOptions(opts...)
	if err != nil {
		return nil, err
	}
	snap, err := loadSnapshot(src)
	if err != nil {
		return nil, err
	}
	w := &webhook{src: src, o: o, log: o.logger, stop: make(chan struct{}), changes: make(chan struct{}, 1)}
	if w.registry, err = newRemoteClient(o.registry, o.insecureLoopback); err != nil {
		return nil, err
	}
	if o.pullSecrets != nil {
		cs, err := NewKubernetesClient(*o.pullSecrets, userAgent)
		if err != nil {
			return nil, fmt.Errorf("pull secrets: %w", err)
		}
		w.pulls = &pullSecrets{cs: cs}
	}
	w.cache = newDecisionCache(o.cacheSize, o.cacheTTL, o.negativeTTL, o.deadline, cacheableRefusal)
	w.cache.now = o.now
	w.metrics = newMetrics(func() float64 { return float64(w.cache.len()) }, o.reverify != nil)
	if o.reverify != nil {
		if w.rv, err = newReverifier(w); err != nil {
			return nil, err
		}
	}
	w.install(snap)

	w.mux = http.NewServeMux()
	w.mux.HandleFunc("POST "+PathValidate, func(rw http.ResponseWriter, r *http.Request) { w.serveReview(rw, r, false) })
	if o.mutation {
		w.mux.HandleFunc("POST "+PathMutate, func(rw http.ResponseWriter, r *http.Request) { w.serveReview(rw, r, true) })
	}
	ok := func(rw http.ResponseWriter, _ *http.Request) { io.WriteString(rw, "ok\n") }
	w.mux.HandleFunc("GET "+PathHealthz, ok)
	w.mux.HandleFunc("GET "+PathReadyz, ok)
	w.ops = http.NewServeMux()
	w.ops.HandleFunc("GET "+PathHealthz, ok)
	w.ops.Handle("GET "+PathMetrics, promhttp.HandlerFor(w.metrics.registry, promhttp.HandlerOpts{}))
	if w.rv != nil {
		w.ops.HandleFunc("GET "+PathReverify, w.rv.serveReport)
	}

	if o.pollInterval > 0 {
		w.polling.Add(1)
		go w.poll(o.pollInterval)
	}
	if o.release != nil {
		w.readRelease()
		w.polling.Add(1)
		go w.refreshRelease(o.releaseRefresh)
	}
	w.log.Info("admission webhook configured", "tenants", len(snap.tenants), "version", snap.version,
		"revoked", len(snap.revoked), "mutation", o.mutation, "deadline", o.deadline.String(),
		"reverification", w.rv != nil, "reverifyInterval", o.reverifyInterval.String())
	if w.rv != nil && o.reverifyInterval > 0 {
		w.polling.Add(1)
		go func() {
			defer w.polling.Done()
			if o.leaderElection != nil {
				w.rv.lead(w.stop, *o.leaderElection)
				return
			}
			w.rv.loop(w.stop)
		}()
	}
	return w, nil
}

func (w *webhook) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	w.mux.ServeHTTP(rw, r)
}

func (w *webhook) Monitoring() http.Handler { return w.ops }

// install puts a snapshot in force, emptying the cache when the decisions it
// makes may differ.
func (w *webhook) install(s *snapshot) {
	old := w.snap.Swap(s)
	if old == nil || old.version != s.version {
		w.cache.purge()
		w.metrics.policiesVersion.Reset()
		w.metrics.policiesVersion.WithLabelValues(s.version).Set(1)
	}
	w.metrics.revokedDigests.Set(float64(len(s.revoked)))
}

func (w *webhook) Reload() error {
	_, err := w.reload(true)
	return err
}

// reload loads the files again and puts them in force. It reports whether
// anything changed; errors are logged (and counted) only when report is set.
func (w *webhook) reload(report bool) (bool, error) {
	w.reloadMu.Lock()
	defer w.reloadMu.Unlock()
	s, err := loadSnapshot(w.src)
	if err != nil {
		if report {
			w.metrics.reloads.WithLabelValues("error").Inc()
			w.log.Error("reload failed: the last good configuration stays in force", "error", err.Error())
		}
		return false, err
	}
	old := w.snap.Load()
	if maps.Equal(old.files, s.files) {
		return false, nil
	}
	w.install(s)
	if w.rv != nil {
		w.rv.changed()
	}
	select {
	case w.changes <- struct{}{}:
	default: // one is pending already
	}
	w.metrics.reloads.WithLabelValues("changed").Inc()
	w.log.Info("configuration reloaded", "version", s.version, "previous", old.version,
		"tenants", len(s.tenants), "revoked", len(s.revoked), "cachePurged", old.version != s.version)
	return true, nil
}

// poll reloads whenever a file read for the snapshot in force changes.
// While the files do not load, it retries on every tick and reports each
// distinct error once.
func (w *webhook) poll(every time.Duration) {
	defer w.polling.Done()
	t := time.NewTicker(every)
	defer t.Stop()
	lastErr := ""
	for {
		select {
		case <-w.stop:
			return
		case <-t.C:
		}
		if lastErr == "" && !w.snap.Load().files.changed() {
			continue
		}
		_, err := w.reload(false)
		switch {
		case err == nil:
			lastErr = ""
		case err.Error() != lastErr:
			lastErr = err.Error()
			w.metrics.reloads.WithLabelValues("error").Inc()
			w.log.Error("reload failed: the last good configuration stays in force", "error", lastErr)
		}
	}
}

func (w *webhook) Reverify(ctx context.Context) (*ReverifyReport, error) {
	if w.rv == nil {
		return nil, errors.New("re-verification is not configured (WithReverification)")
	}
	return w.rv.pass(ctx, TriggerRequest)
}

func (w *webhook) Close() error {
	w.closeOnce.Do(func() {
		close(w.stop)
		w.polling.Wait()
		if w.rv != nil && w.rv.reports != nil {
			close(w.rv.reports)
		}
	})
	w.polling.Wait()
	return nil
}

// serveReview answers one AdmissionReview.
func (w *webhook) serveReview(rw http.ResponseWriter, r *http.Request, mutate bool) {
	start := time.Now()
	endpoint := PathValidate
	if mutate {
		endpoint = PathMutate
	}
	code := http.StatusOK
	defer func() {
		w.metrics.requests.WithLabelValues(endpoint, strconv.Itoa(code)).Inc()
		w.metrics.requestSeconds.WithLabelValues(endpoint).Observe(time.Since(start).Seconds())
	}()
	fail := func(status int, msg string, args ...any) {
		code = status
		text := fmt.Sprintf(msg, args...)
		w.log.Warn("bad admission request", "endpoint", endpoint, "status", status, "error", text, "remote", r.RemoteAddr)
		http.Error(rw, text, status)
	}

	if ct := r.Header.Get("Content-Type"); ct != "" {
		if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/json" {
			fail(http.StatusUnsupportedMediaType, "content type %q: want application/json", ct)
			return
		}
	}
	body, err := io.ReadAll(http.MaxBytesReader(rw, r.Body, w.o.maxBodyBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			fail(http.StatusRequestEntityTooLarge, "AdmissionReview larger than %d bytes", mbe.Limit)
			return
		}
		fail(http.StatusBadRequest, "reading AdmissionReview: %v", err)
		return
	}
	var review admissionv1.AdmissionReview
	if err := json.Unmarshal(body, &review); err != nil {
		fail(http.StatusBadRequest, "decoding AdmissionReview: %v", err)
		return
	}
	switch {
	case review.APIVersion != admissionv1.SchemeGroupVersion.String() || review.Kind != "AdmissionReview":
		fail(http.StatusBadRequest, "apiVersion %q kind %q: want %s AdmissionReview", review.APIVersion, review.Kind, admissionv1.SchemeGroupVersion)
		return
	case review.Request == nil:
		fail(http.StatusBadRequest, "AdmissionReview has no request")
		return
	case review.Request.UID == "":
		fail(http.StatusBadRequest, "AdmissionReview request has no uid")
		return
	}

	ctx, cancel := context.WithTimeout(r.Context(), w.deadlineFor(r))
	defer cancel()
	resp := w.review(ctx, review.Request, mutate)
	w.metrics.reviews.WithLabelValues(endpoint, strconv.FormatBool(resp.Allowed)).Inc()

	out := admissionv1.AdmissionReview{TypeMeta: review.TypeMeta, Response: resp}
	data, err := json.Marshal(out)
	if err != nil {
		fail(http.StatusInternalServerError, "encoding AdmissionReview: %v", err)
		return
	}
	rw.Header().Set("Content-Type", "application/json")
	rw.Write(data)
}

// deadlineFor is the time to decide a review: WithDeadline, or less when
// the API server says (the timeout query parameter it adds to the webhook's
// URL) that it waits for less, so that the denial it gets names the reason.
func (w *webhook) deadlineFor(r *http.Request) time.Duration {
	d := w.o.deadline
	if t, err := time.ParseDuration(r.URL.Query().Get("timeout")); err == nil && t > 0 {
		d = min(d, t-t/5)
	}
	return d
}

// imageVerdict is the decision about one image of a review.
type imageVerdict struct {
	containerImage
	digest  string           // resolved digest, "" when not resolved
	tenants []RecordedTenant // the tenants whose policies passed
	err     error            // nil: admitted
}

// review decides one AdmissionRequest.
func (w *webhook) review(ctx context.Context, req *admissionv1.AdmissionRequest, mutate bool) *admissionv1.AdmissionResponse {
	start := time.Now()
	snap := w.snap.Load()
	log := w.log.With("uid", string(req.UID), "namespace", req.Namespace, "name", req.Name,
		"kind", gvkString(req.Kind), "operation", string(req.Operation), "mutate", mutate)
	deny := func(err error) *admissionv1.AdmissionResponse {
		result, reason := classify(err)
		w.metrics.images.WithLabelValues(result).Inc()
		log.Info("denied", "result", result, "reason", reason)
		return denied(req.UID, fmt.Sprintf("%s %s/%s: %s", req.Kind.Kind, req.Namespace, req.Name, reason))
	}

	kind, ok := kindFor(req.Kind)
	if !ok {
		return deny(fmt.Errorf("%w: %s (resource %s): the webhook decides only pods and their workload templates; deny by default", ErrUnsupportedKind, gvkString(req.Kind), req.Resource.Resource))
	}
	if req.Operation != admissionv1.Create && req.Operation != admissionv1.Update {
		return deny(fmt.Errorf("%w: operation %s: the webhook decides CREATE and UPDATE only; deny by default", ErrUnsupportedKind, req.Operation))
	}
	images, err := kind.images(req.Object.Raw)
	if err != nil {
		return deny(err)
	}
	all := images
	// An UPDATE is decided on the images it introduces: an image already in
	// the old object at the same place was decided when it came in, and a
	// later revocation must not block, say, removing a finalizer.
	if req.Operation == admissionv1.Update && len(req.OldObject.Raw) > 0 {
		old, err := kind.images(req.OldObject.Raw)
		if err != nil {
			return deny(err)
		}
		images = introduced(images, old)
	}

	var pull authn.Keychain
	if w.pulls != nil && len(images) > 0 {
		spec, err := kind.podSpec(req.Object.Raw)
		if err != nil {
			return deny(fmt.Errorf("%w: decoding %s: %v", errInvalidObject, req.Kind.Kind, err))
		}
		if pull, err = w.pulls.keychain(ctx, req.Namespace, spec); err != nil {
			log.Warn("deciding without the pod's pull secrets", "error", err.Error())
		}
	}
	// Without mutation nothing pins a tag to the digest verified here.
	verdicts := w.decideAll(ctx, snap, req.Namespace, images, !mutate && !w.o.mutation, pull)
	resp := &admissionv1.AdmissionResponse{UID: req.UID, Allowed: true}
	var reasons []string
	var patch []jsonPatchOp
	for _, v := range verdicts {
		result, reason := classify(v.err)
		w.metrics.images.WithLabelValues(result).Inc()
		attrs := []any{"image", v.Image, "path", v.Path, "digest", v.digest, "result", result}
		if v.err != nil {
			resp.Allowed = false
			reasons = append(reasons, w.denialMessage(req.UID, v, reason))
			attrs = append(attrs, "reason", reason)
		} else if pinned, ok := pin(v.Image, v.digest); ok {
			patch = append(patch, jsonPatchOp{Op: "replace", Path: v.Path, Value: pinned})
		}
		log.Info("image decision", attrs...)
	}
	log.Info("review decided", "allowed", resp.Allowed, "images", len(verdicts), "duration", time.Since(start).String())
	if !resp.Allowed {
		return denied(req.UID, truncate(strings.Join(reasons, "; "), maxMessageBytes))
	}
	if mutate && w.o.recordKey != nil && kind.gvk.Kind == "Pod" {
		ops, err := w.recordPatch(req, snap, all, verdicts)
		if err != nil {
			return deny(err)
		}
		patch = append(patch, ops...)
	}
	if mutate && len(patch) > 0 {
		data, err := json.Marshal(patch)
		if err != nil {
			return deny(fmt.Errorf("encoding patch: %w", err))
		}
		pt := admissionv1.PatchTypeJSONPatch
		resp.Patch, resp.PatchType = data, &pt
	}
	return resp
}

func denied(uid types.UID, message string) *admissionv1.AdmissionResponse {
	return &admissionv1.AdmissionResponse{UID: uid, Allowed: false, Result: &metav1.Status{
		Status: metav1.StatusFailure, Code: http.StatusForbidden, Reason: metav1.StatusReasonForbidden, Message: message,
	}}
}

// introduced keeps the images of cur that are not at the same place in old.
func introduced(cur, old []containerImage) []containerImage {
	was := map[string]string{}
	for _, o := range old {
		was[o.Path] = o.Image
	}
	var out []containerImage
	for _, c := range cur {
		if img, ok := was[c.Path]; !ok || img != c.Image {
			out = append(out, c)
		}
	}
	return out
}

// decideAll decides each distinct image once, a few at a time.
func (w *webhook) decideAll(ctx context.Context, snap *snapshot, namespace string, images []containerImage, refuseTags bool, pull authn.Keychain) []imageVerdict {
	type result struct {
		digest  string
		tenants []RecordedTenant
		err     error
	}
	var distinct []string
	results := map[string]*result{}
	for _, img := range images {
		if _, ok := results[img.Image]; !ok {
			results[img.Image] = nil
			distinct = append(distinct, img.Image)
		}
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, maxConcurrentImages)
	for _, image := range distinct {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			d, tenants, err := w.decideGuarded(ctx, snap, namespace, image, refuseTags, pull)
			mu.Lock()
			results[image] = &result{d, tenants, err}
			mu.Unlock()
		}()
	}
	wg.Wait()
	out := make([]imageVerdict, len(images))
	for i, img := range images {
		r := results[img.Image]
		out[i] = imageVerdict{containerImage: img, digest: r.digest, tenants: r.tenants, err: r.err}
	}
	return out
}

// errPanicked is the cause of a denial whose decision panicked.
var errPanicked = errors.New("deciding the image panicked")

// decideGuarded is decideImage on a goroutine of its own: a panic anywhere
// in it (tag resolution, a registry client, verification) denies the image
// instead of ending the process.
func (w *webhook) decideGuarded(ctx context.Context, snap *snapshot, namespace, image string, refuseTags bool, pull authn.Keychain) (digest string, tenants []RecordedTenant, err error) {
	defer func() {
		if r := recover(); r != nil {
			w.log.Error("deciding an image panicked: denied", "image", image, "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
			digest, tenants, err = "", nil, fmt.Errorf("%w (fail closed): %v", errPanicked, r)
		}
	}()
	return w.decide(ctx, snap, namespace, image, refuseTags, pull)
}

// denialMessage is what the API server shows the user about one denied
// image. The webhook reads registries with credentials of its own, which
// the caller may lack (and any pod can POST a review to the webhook's
// port): what a denial says must not tell such a caller anything only a
// puller of the image could know, whether it exists, the digest its tag
// points at, who signed it or what its provenance says. So unless
// WithDenialReasonsUnsafe, a denial that depends on the registry says only
// that the image was not verified; the reason is in the webhook's log
// under the review's uid. Denials that follow from the request and the
// configuration alone (an invalid reference, an image no tenant covers, a
// revoked digest the caller named) keep their reason.
func (w *webhook) denialMessage(uid types.UID, v imageVerdict, reason string) string {
	msg := fmt.Sprintf("image %q", v.Image)
	var te *tenantError
	tenant := ""
	if errors.As(v.err, &te) {
		tenant = fmt.Sprintf(" by tenant %q", te.tenant)
	}
	named := strings.Contains(v.Image, "@")
	switch {
	case w.o.denialReasons:
		if v.digest != "" {
			msg += " (" + v.digest + ")"
		}
		return msg + " denied: " + reason
	case errors.Is(v.err, ErrNoPolicy), errors.Is(v.err, errInvalidImage), errors.Is(v.err, ErrTagNotPinned), errors.Is(v.err, ErrRevoked) && named:
		return msg + " denied: " + reason
	}
	return fmt.Sprintf("%s denied%s: not verified (fail closed); the webhook's log has the reason under review uid %s", msg, tenant, uid)
}

// decideImage decides one image in a namespace: nil admits it. It returns
// the digest it resolved, if any. With refuseTags, an image named by tag is
// denied for every tenant that does not allow tags.
func (w *webhook) decideImage(ctx context.Context, snap *snapshot, namespace, image string, refuseTags bool) (string, error) {
	d, _, err := w.decide(ctx, snap, namespace, image, refuseTags, nil)
	return d, err
}

// decide is decideImage, also returning the tenants whose policies passed.
func (w *webhook) decide(ctx context.Context, snap *snapshot, namespace, image string, refuseTags bool, pull authn.Keychain) (string, []RecordedTenant, error) {
	if image == "" {
		return "", nil, fmt.Errorf("%w: empty image", errInvalidImage)
	}
	ref, err := w.refs.parse(image)
	if err != nil {
		return "", nil, fmt.Errorf("%w %q: %v", errInvalidImage, image, err)
	}
	repo := canonicalRepository(ref.Context())
	tenants := snap.tenantsFor(namespace, repo)
	if len(tenants) == 0 {
		return "", nil, fmt.Errorf("%w: no tenant of namespace %q covers repository %s", ErrNoPolicy, namespace, repo)
	}
	var d name.Digest
	switch r := ref.(type) {
	case name.Digest:
		d = r
	case name.Tag:
		if refuseTags && !w.o.allowTags {
			for _, t := range tenants {
				if !t.AllowTags {
					return "", nil, &tenantError{tenant: t.Name, err: fmt.Errorf("%w: %s: the webhook does not pin tags (validation only), so the kubelet may run another digest than the one verified; name the image by digest, run the webhook with mutation, or set allowTags on the tenant", ErrTagNotPinned, image)}
				}
			}
		}
		if d, err = w.registry.resolve(ctx, r, pull); err != nil {
			return "", nil, err
		}
	}
	digest := d.DigestStr()
	if !sha256Digest.MatchString(digest) {
		return "", nil, fmt.Errorf("%w %q: only sha256 digests are verified", errInvalidImage, image)
	}
	if snap.revoked.has(digest) {
		return digest, nil, fmt.Errorf("%w: %s is on the revocation list", ErrRevoked, digest)
	}
	// The release index is consulted on every decision, cached or not: a
	// tag moved or an index gone stale denies at once.
	released := ""
	if w.o.release != nil {
		if released, err = w.releaseCheck(ref, digest); err != nil {
			return digest, nil, err
		}
	}
	passed := make([]RecordedTenant, 0, len(tenants))
	for _, t := range tenants {
		key := repo + "@" + digest + "|" + t.Name + "|" + t.version + "|" + released
		outcome, err := w.cache.lookup(ctx, key, func(ctx context.Context) error {
			return w.verify(ctx, d, t, snap.trustedRoot, released, pull)
		})
		w.metrics.cache.WithLabelValues(outcome.String()).Inc()
		if err != nil {
			return digest, nil, &tenantError{tenant: t.Name, err: err}
		}
		passed = append(passed, RecordedTenant{Name: t.Name, Policy: t.version})
	}
	// The list may have changed while the image was verified.
	if w.snap.Load().revoked.has(digest) {
		return digest, nil, fmt.Errorf("%w: %s is on the revocation list", ErrRevoked, digest)
	}
	return digest, passed, nil
}

// verify fetches an image's evidence and verifies it under one tenant's
// policy with attest/verify, as `twinforge verify` does, rebuild verdicts
// included, through package attest/evidence. The registry may hold several
// bundles of each kind (an image signed again, or a junk referrer): the
// image is admitted when one provenance bundle, with one of the image
// bundles if there are any, verifies.
func (w *webhook) verify(ctx context.Context, d name.Digest, t *tenantState, tm root.TrustedMaterial, releasedProv string, pull authn.Keychain) (err error) {
	start := time.Now()
	defer func() {
		result, _ := classify(err)
		w.metrics.verifySeconds.WithLabelValues(result).Observe(time.Since(start).Seconds())
	}()
	ev, err := w.registry.evidence(ctx, d, pull)
	if err != nil {
		return err
	}
	if releasedProv != "" {
		// Only the provenance the release names counts.
		if ev.Provenance = releasedProvenance(ev.Provenance, releasedProv); len(ev.Provenance) == 0 {
			return &release.Error{Check: release.CheckProvenance, Err: fmt.Errorf("none of the image's provenance statements is %s, the one its release names", releasedProv)}
		}
	}
	_, err = ev.Verify(ctx, tm, t.policy)
	return err
}

// pin returns image rewritten to digest, keeping the name as the user wrote
// it ("app:1.0" → "app@sha256:..."); false when it is by digest already.
func pin(image, digest string) (string, bool) {
	if digest == "" || strings.Contains(image, "@") {
		return "", false
	}
	repo := image
	if i := strings.LastIndexByte(image, ':'); i > strings.LastIndexByte(image, '/') {
		repo = image[:i]
	}
	return repo + "@" + digest, true
}

// jsonPatchOp is one RFC 6902 operation.
type jsonPatchOp struct {
	Op    string `json:"op"`
	Path  string `json:"path"`
	Value any    `json:"value,omitempty"`
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
