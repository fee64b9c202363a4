package telemetry

import (
	"testing"

	"google.golang.org/grpc/stats"
)

func TestHealthAndReflectionAreNotTraced(t *testing.T) {
	for method, traced := range map[string]bool{
		"/grpc.health.v1.Health/Check":                                   false,
		"/grpc.health.v1.Health/Watch":                                   false,
		"/grpc.reflection.v1.ServerReflection/ServerReflectionInfo":      false,
		"/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo": false,
		"/bourse.matching.v1.MatchingService/SubmitOrder":                true,
		"/bourse.risk.v1.RiskService/Settle":                             true,
		"/inference.GRPCInferenceService/ModelInfer":                     true,
	} {
		if got := TracedRPC(&stats.RPCTagInfo{FullMethodName: method}); got != traced {
			t.Errorf("%s: traced = %v, want %v", method, got, traced)
		}
	}
}
