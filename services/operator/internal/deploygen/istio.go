package deploygen

import "time"

// Istio resources are written as plain maps: Istio's typed Go client pins an older Kubernetes
// library than the rest of this module, and only a few fields are needed.

// virtualService routes a service's gRPC methods in three groups: streams (no timeout: they are
// meant to stay open), idempotent unary calls (retried on UNAVAILABLE), and everything else
// (retried only when the request never reached a pod).
func (t *Table) virtualService(s Service) map[string]any {
	var http []any
	route := t.routeTo(s)
	if len(s.Streaming) > 0 {
		// No timeout field: Istio then sets none, and the CRD refuses "0s".
		http = append(http, map[string]any{
			"name":  "streams",
			"match": t.methodMatches(s, s.Streaming),
			"route": route,
		})
	}
	if len(s.Idempotent) > 0 {
		http = append(http, map[string]any{
			"name":    "idempotent",
			"match":   t.methodMatches(s, s.Idempotent),
			"timeout": t.timeout(s),
			"retries": map[string]any{
				"attempts":      3,
				"perTryTimeout": perTry(t.timeout(s)),
				"retryOn":       "unavailable,connect-failure,refused-stream,reset",
			},
			"route": route,
		})
	}
	http = append(http, map[string]any{
		"name":    "default",
		"timeout": t.timeout(s),
		"retries": map[string]any{"attempts": 2, "retryOn": "connect-failure,refused-stream"},
		"route":   route,
	})
	return map[string]any{
		"apiVersion": "networking.istio.io/v1",
		"kind":       "VirtualService",
		"metadata":   map[string]any{"name": s.Name, "labels": labels(s, "stable")},
		// Short host names resolve in the resource's own namespace, so an overlay may move it.
		"spec": map[string]any{"hosts": []any{s.Name}, "http": http},
	}
}

func (t *Table) methodMatches(s Service, methods []string) []any {
	var out []any
	for _, m := range methods {
		out = append(out, map[string]any{"uri": map[string]any{"exact": "/" + s.GRPCService + "/" + m}})
	}
	return out
}

// routeTo sends everything to the stable subset, or splits by canaryWeight.
func (t *Table) routeTo(s Service) []any {
	dest := func(subset string, weight int32) map[string]any {
		return map[string]any{
			"destination": map[string]any{"host": s.Name, "subset": subset, "port": map[string]any{"number": s.GRPCPort}},
			"weight":      weight,
		}
	}
	if s.CanaryWeight == 0 {
		return []any{dest("stable", 100)}
	}
	return []any{dest("stable", 100-s.CanaryWeight), dest("canary", s.CanaryWeight)}
}

// destinationRule: least-request balancing over HTTP/2 connections, outlier detection that
// ejects a pod answering errors (gRPC UNAVAILABLE and friends count as gateway errors), and the
// version subsets the canary split uses.
func (t *Table) destinationRule(s Service) map[string]any {
	return map[string]any{
		"apiVersion": "networking.istio.io/v1",
		"kind":       "DestinationRule",
		"metadata":   map[string]any{"name": s.Name, "labels": labels(s, "stable")},
		"spec": map[string]any{
			"host": s.Name,
			"trafficPolicy": map[string]any{
				"loadBalancer": map[string]any{"simple": "LEAST_REQUEST"},
				"connectionPool": map[string]any{
					"http": map[string]any{"http2MaxRequests": 1000, "maxRequestsPerConnection": 0},
				},
				"outlierDetection": map[string]any{
					"consecutiveGatewayErrors": 5,
					"consecutive5xxErrors":     10,
					"interval":                 "10s",
					"baseEjectionTime":         "30s",
					"maxEjectionPercent":       50,
				},
			},
			"subsets": []any{
				map[string]any{"name": "stable", "labels": map[string]any{"version": "stable"}},
				map[string]any{"name": "canary", "labels": map[string]any{"version": "canary"}},
			},
		},
	}
}

// perTry leaves room for at least one retry inside the route's overall timeout.
func perTry(timeout string) string {
	d, err := time.ParseDuration(timeout)
	if err != nil || d <= 0 {
		return timeout
	}
	return (d / 2).String()
}
