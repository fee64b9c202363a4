package grpcapi

import (
	"testing"

	"github.com/bourse-dev/bourse/pkg/auth/authtest"
	pb "github.com/bourse-dev/bourse/pkg/gen/inference"
)

// Default deny is only safe if nothing is forgotten: every method the service registers has a rule.
func TestPolicyClassifiesEveryMethod(t *testing.T) {
	authtest.RequireClassified(t, Policy, &pb.GRPCInferenceService_ServiceDesc)
}

// The README's "Security model" table for inference is rendered from Policy (make docs rewrites it).
func TestReadmeAccessTable(t *testing.T) {
	authtest.CheckReadme(t, "inference", Policy, &pb.GRPCInferenceService_ServiceDesc)
}
