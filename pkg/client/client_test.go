package client

import (
	"encoding/json"
	"testing"
)

func TestServiceConfigRoundRobinAndRetries(t *testing.T) {
	cfg, err := ServiceConfig([]string{"bourse.risk.v1.RiskService/GetAccount", "bourse.discovery.v1.DiscoveryService"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	var parsed struct {
		LoadBalancingConfig []map[string]any `json:"loadBalancingConfig"`
		MethodConfig        []struct {
			Name []struct {
				Service, Method string
			} `json:"name"`
			RetryPolicy struct {
				MaxAttempts          int      `json:"maxAttempts"`
				RetryableStatusCodes []string `json:"retryableStatusCodes"`
			} `json:"retryPolicy"`
		} `json:"methodConfig"`
	}
	if err := json.Unmarshal([]byte(cfg), &parsed); err != nil {
		t.Fatal(err)
	}
	if _, ok := parsed.LoadBalancingConfig[0]["round_robin"]; !ok {
		t.Errorf("no round_robin in %s", cfg)
	}
	mc := parsed.MethodConfig[0]
	if len(mc.Name) != 2 || mc.Name[0].Method != "GetAccount" || mc.Name[1].Method != "" || mc.RetryPolicy.MaxAttempts != 4 ||
		mc.RetryPolicy.RetryableStatusCodes[0] != "UNAVAILABLE" {
		t.Errorf("method config %+v", mc)
	}
	// gRPC itself must accept it.
	conn, err := Dial("127.0.0.1:1", Options{Idempotent: []string{"a.B/C"}})
	if err != nil {
		t.Fatalf("grpc rejected the service config: %v", err)
	}
	conn.Close()
	if _, err := ServiceConfig([]string{"/"}, 0); err == nil {
		t.Error("empty service name accepted")
	}
	if _, err := Dial("consul:///x", Options{}); err == nil {
		t.Error("consul target without resolver accepted")
	}
}
