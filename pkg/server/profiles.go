package server

import (
	"fmt"
	"net"
)

// profilesOn decides whether /debug/pprof is served next to /metrics. Profiles expose code paths
// and memory and let a caller load the CPU, so by default they are served only when the metrics
// port is bound to loopback; a metrics port opened for a scraper (0.0.0.0 in a pod) does not carry
// them unless the operator says --pprof=on.
func profilesOn(mode, metricsAddr string) (bool, error) {
	switch mode {
	case "on":
		return true, nil
	case "off":
		return false, nil
	case "loopback":
		host, _, err := net.SplitHostPort(metricsAddr)
		if err != nil {
			return false, fmt.Errorf("--metrics-addr %q: %w", metricsAddr, err)
		}
		if host == "localhost" {
			return true, nil
		}
		ip := net.ParseIP(host)
		return ip != nil && ip.IsLoopback(), nil
	}
	return false, fmt.Errorf("--pprof: %q is not loopback, on or off", mode)
}
