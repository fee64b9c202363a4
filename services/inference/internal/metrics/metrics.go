// Package metrics holds the inference service's Prometheus series, labelled by model and version.
package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the per-model series. A nil *Metrics records nothing (handy in unit tests).
type Metrics struct {
	success, failure   *prometheus.CounterVec
	inferences, execs  *prometheus.CounterVec
	queue, compute     *prometheus.HistogramVec
	cacheHit, cacheMis *prometheus.CounterVec
	sessions           prometheus.Gauge
}

var latencyBuckets = prometheus.ExponentialBuckets(0.00002, 2, 18) // 20µs .. ~2.6s

// New registers the series on reg.
func New(reg prometheus.Registerer) *Metrics {
	labels := []string{"model", "version"}
	counter := func(name, help string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)
	}
	hist := func(name, help string) *prometheus.HistogramVec {
		return prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: name, Help: help, Buckets: latencyBuckets}, labels)
	}
	m := &Metrics{
		success:    counter("inference_request_success_total", "Inference requests that succeeded."),
		failure:    counter("inference_request_failure_total", "Inference requests that failed after naming a model version."),
		inferences: counter("inference_count_total", "Rows inferred (a request of batch size n counts n)."),
		execs:      counter("inference_exec_count_total", "Model executions; fewer than inference_count_total when requests are batched."),
		queue:      hist("inference_queue_duration_seconds", "Time a request waited in the batch queue."),
		compute:    hist("inference_compute_duration_seconds", "Time of one model execution."),
		cacheHit:   counter("inference_cache_hits_total", "Responses served from the response cache."),
		cacheMis:   counter("inference_cache_misses_total", "Response cache look-ups that missed."),
		sessions: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "inference_sessions_open", Help: "Backend sessions (loaded model versions) not yet freed."}),
	}
	reg.MustRegister(m.success, m.failure, m.inferences, m.execs, m.queue, m.compute, m.cacheHit, m.cacheMis, m.sessions)
	return m
}

// Request records the outcome of one request.
func (m *Metrics) Request(model, version string, err error) {
	if m == nil {
		return
	}
	if err != nil {
		m.failure.WithLabelValues(model, version).Inc()
		return
	}
	m.success.WithLabelValues(model, version).Inc()
}

// Execution records one model execution of rows rows.
func (m *Metrics) Execution(model, version string, rows int, compute time.Duration) {
	if m == nil {
		return
	}
	m.execs.WithLabelValues(model, version).Inc()
	m.inferences.WithLabelValues(model, version).Add(float64(rows))
	m.compute.WithLabelValues(model, version).Observe(compute.Seconds())
}

// Queued records how long one request waited before its execution started.
func (m *Metrics) Queued(model, version string, wait time.Duration) {
	if m == nil {
		return
	}
	m.queue.WithLabelValues(model, version).Observe(wait.Seconds())
}

// Cache records a cache look-up.
func (m *Metrics) Cache(model, version string, hit bool) {
	if m == nil {
		return
	}
	if hit {
		m.cacheHit.WithLabelValues(model, version).Inc()
	} else {
		m.cacheMis.WithLabelValues(model, version).Inc()
	}
}

// SessionOpened and SessionClosed track loaded sessions.
func (m *Metrics) SessionOpened() {
	if m != nil {
		m.sessions.Inc()
	}
}

// SessionClosed records a freed session.
func (m *Metrics) SessionClosed() {
	if m != nil {
		m.sessions.Dec()
	}
}
