package admission

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// metrics are the webhook's Prometheus metrics, in a registry of its own.
type metrics struct {
	registry *prometheus.Registry

	requests        *prometheus.CounterVec   // endpoint, code
	reviews         *prometheus.CounterVec   // endpoint, allowed
	images          *prometheus.CounterVec   // result
	cache           *prometheus.CounterVec   // outcome: hit, miss, shared
	requestSeconds  *prometheus.HistogramVec // endpoint
	verifySeconds   *prometheus.HistogramVec // result
	reloads         *prometheus.CounterVec   // result: changed, error
	cacheEntries    prometheus.GaugeFunc
	revokedDigests  prometheus.Gauge
	policiesVersion *prometheus.GaugeVec // version (always 1: the current one)

	// Re-verification of running pods.
	runtimeViolations   *prometheus.GaugeVec   // namespace, pod, image, digest, result
	reverifyRuns        *prometheus.CounterVec // trigger, result: ok, error
	reverifyImages      *prometheus.CounterVec // result
	reverifyEvents      *prometheus.CounterVec // result: recorded, error
	reverifyLastSuccess prometheus.Gauge
	reverifyLeader      prometheus.Gauge
}

// newMetrics makes the metrics; those of re-verification are registered
// only with reverify.
func newMetrics(cacheLen func() float64, reverify bool) *metrics {
	m := &metrics{
		registry: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "twinforge", Subsystem: "admission", Name: "requests_total",
			Help: "HTTP requests to the admission endpoints, by endpoint and status code.",
		}, []string{"endpoint", "code"}),
		reviews: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "twinforge", Subsystem: "admission", Name: "reviews_total",
			Help: "AdmissionReviews decided, by endpoint and whether they were allowed.",
		}, []string{"endpoint", "allowed"}),
		images: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "twinforge", Subsystem: "admission", Name: "decisions_total",
			Help: "Image decisions by result: admitted, or the class of the denial.",
		}, []string{"result"}),
		cache: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "twinforge", Subsystem: "admission", Name: "cache_lookups_total",
			Help: "Verification cache lookups: hit, miss (verified now) or shared (joined a verification in flight).",
		}, []string{"outcome"}),
		requestSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "twinforge", Subsystem: "admission", Name: "request_duration_seconds",
			Help:    "Time to answer an AdmissionReview, by endpoint.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 8, 10},
		}, []string{"endpoint"}),
		verifySeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "twinforge", Subsystem: "admission", Name: "verification_duration_seconds",
			Help:    "Time of one uncached verification (registry fetches and signature checks), by result.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 8, 10},
		}, []string{"result"}),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "twinforge", Subsystem: "admission", Name: "reloads_total",
			Help: "Reloads of the configuration, policies, trusted root and revocation list: changed or error (the last good version stays).",
		}, []string{"result"}),
		revokedDigests: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "twinforge", Subsystem: "admission", Name: "revoked_digests",
			Help: "Digests on the revocation list in force.",
		}),
		policiesVersion: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "twinforge", Subsystem: "admission", Name: "policy_info",
			Help: "The version (hash of the configuration, policies and trusted root) in force.",
		}, []string{"version"}),
	}
	m.runtimeViolations = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: "twinforge", Subsystem: "admission", Name: "runtime_violations",
		Help: "1 for each image of a running pod that no longer passes verification (last re-verification pass), by namespace, pod, image, digest and result.",
	}, []string{"namespace", "pod", "image", "digest", "result"})
	m.reverifyRuns = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "twinforge", Subsystem: "admission", Name: "reverify_runs_total",
		Help: "Re-verification passes over the running pods, by trigger (start, interval, change, retry, request) and result (ok, error: the pods could not be listed).",
	}, []string{"trigger", "result"})
	m.reverifyImages = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "twinforge", Subsystem: "admission", Name: "reverify_images_total",
		Help: "Pod images re-verified, by result: admitted, or the class of the failure.",
	}, []string{"result"})
	m.reverifyEvents = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "twinforge", Subsystem: "admission", Name: "reverify_events_total",
		Help: "Kubernetes Events about runtime violations, by result: recorded or error (tried again on the next pass).",
	}, []string{"result"})
	m.reverifyLastSuccess = prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: "twinforge", Subsystem: "admission", Name: "reverify_last_success_timestamp_seconds",
		Help: "When the last re-verification pass that listed the pods finished (Unix time).",
	})
	m.reverifyLeader = prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: "twinforge", Subsystem: "admission", Name: "reverify_leader",
		Help: "1 while this replica holds the re-verification Lease (WithReverifyLeaderElection), else 0.",
	})
	m.cacheEntries = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: "twinforge", Subsystem: "admission", Name: "cache_entries",
		Help: "Decisions held by the verification cache.",
	}, cacheLen)
	m.registry.MustRegister(m.requests, m.reviews, m.images, m.cache, m.requestSeconds, m.verifySeconds,
		m.reloads, m.cacheEntries, m.revokedDigests, m.policiesVersion,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if reverify {
		m.registry.MustRegister(m.runtimeViolations, m.reverifyRuns, m.reverifyImages, m.reverifyEvents, m.reverifyLastSuccess, m.reverifyLeader)
	}
	return m
}
