package server

import (
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
)

type rpcMetrics struct {
	handled *prometheus.CounterVec
	latency *prometheus.HistogramVec
	// known holds the full names of the methods the server registered. A name a client sends is
	// a label only if it is one of them: anything else (a typo, a scan, bytes that are not UTF-8,
	// which Prometheus refuses with a panic) counts under one fixed label, so no caller can grow
	// the metric families or break the reader goroutine the tap runs on.
	known atomic.Pointer[map[string]struct{}]
}

// unknownMethod labels calls to methods the server does not serve.
const unknownMethod = "unknown"

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

// setKnown records the registered methods; call it once every service is registered, before serving.
func (m *rpcMetrics) setKnown(info map[string]grpc.ServiceInfo) {
	known := make(map[string]struct{})
	for svc, si := range info {
		for _, method := range si.Methods {
			known["/"+svc+"/"+method.Name] = struct{}{}
		}
	}
	m.known.Store(&known)
}

func (m *rpcMetrics) observe(fullMethod string, code codes.Code, elapsed time.Duration) {
	svc, method := unknownMethod, unknownMethod
	if known := m.known.Load(); known != nil {
		if _, ok := (*known)[fullMethod]; ok {
			svc, method, _ = strings.Cut(strings.TrimPrefix(fullMethod, "/"), "/")
		}
	}
	m.handled.WithLabelValues(svc, method, code.String()).Inc()
	m.latency.WithLabelValues(svc, method).Observe(elapsed.Seconds())
}
