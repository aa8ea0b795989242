package nodeagent

import "github.com/prometheus/client_golang/prometheus"

// metrics are the agent's Prometheus metrics.
type metrics struct {
	registry    *prometheus.Registry
	passes      *prometheus.CounterVec // trigger, result: ok, error
	containers  *prometheus.CounterVec // result
	violations  *prometheus.GaugeVec   // namespace, pod, container, result
	errors      *prometheus.CounterVec // source: cri, api, registry, record
	events      *prometheus.CounterVec // result: recorded, error
	evictions   *prometheus.CounterVec // result: evicted, refused, gone, error
	lastSuccess prometheus.Gauge
}

func newMetrics() *metrics {
	opts := func(name, help string) prometheus.Opts {
		return prometheus.Opts{Namespace: "twinforge", Subsystem: "node_agent", Name: name, Help: help}
	}
	m := &metrics{
		registry: prometheus.NewRegistry(),
		passes: prometheus.NewCounterVec(prometheus.CounterOpts(opts("passes_total",
			"Passes over the node's running containers, by trigger and result (ok, error: the containers or pods could not be listed).")),
			[]string{"trigger", "result"}),
		containers: prometheus.NewCounterVec(prometheus.CounterOpts(opts("containers_total",
			"Containers checked, by result.")), []string{"result"}),
		violations: prometheus.NewGaugeVec(prometheus.GaugeOpts(opts("violations",
			"1 for each running container that does not pass (mismatch, no_record, invalid_record, revoked, verification_failed) or could not be checked (error), as of the last pass.")),
			[]string{"namespace", "pod", "container", "result"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts(opts("errors_total",
			"Failures of the agent's own, by source: cri, api, registry, record.")), []string{"source"}),
		events: prometheus.NewCounterVec(prometheus.CounterOpts(opts("events_total",
			"Events about findings, by result: recorded, error.")), []string{"result"}),
		evictions: prometheus.NewCounterVec(prometheus.CounterOpts(opts("evictions_total",
			"Evictions, by result: evicted, refused (a PodDisruptionBudget), gone, error.")), []string{"result"}),
		lastSuccess: prometheus.NewGauge(prometheus.GaugeOpts(opts("last_success_timestamp_seconds",
			"When the last pass that listed the containers and pods finished, Unix time."))),
	}
	m.registry.MustRegister(m.passes, m.containers, m.violations, m.errors, m.events, m.evictions, m.lastSuccess)
	return m
}
