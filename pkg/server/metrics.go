package server

import (
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/codes"
)

type rpcMetrics struct {
	handled *prometheus.CounterVec
	latency *prometheus.HistogramVec
}

func newRPCMetrics(reg prometheus.Registerer) *rpcMetrics {
	m := &rpcMetrics{
		handled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "grpc_server_handled_total",
			Help: "RPCs completed on the server, by method and status code.",
		}, []string{"grpc_service", "grpc_method", "grpc_code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "grpc_server_handling_seconds",
			Help:    "Time from the start of an RPC to its end on the server.",
			Buckets: prometheus.ExponentialBuckets(0.00005, 2.5, 14),
		}, []string{"grpc_service", "grpc_method"}),
	}
	reg.MustRegister(m.handled, m.latency)
	return m
}

func (m *rpcMetrics) observe(fullMethod string, code codes.Code, elapsed time.Duration) {
	svc, method, _ := strings.Cut(strings.TrimPrefix(fullMethod, "/"), "/")
	m.handled.WithLabelValues(svc, method, code.String()).Inc()
	m.latency.WithLabelValues(svc, method).Observe(elapsed.Seconds())
}
