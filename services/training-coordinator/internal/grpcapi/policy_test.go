package grpcapi

import (
	"testing"

	"github.com/bourse-dev/bourse/pkg/auth/authtest"
	trainingv1 "github.com/bourse-dev/bourse/pkg/gen/bourse/training/v1"
)

// Default deny is only safe if nothing is forgotten: every method has a rule.
func TestPolicyClassifiesEveryMethod(t *testing.T) {
	authtest.RequireClassified(t, Policy, &trainingv1.TrainingCoordinatorService_ServiceDesc)
	authtest.RequireClassified(t, WorkerPolicy, &trainingv1.WorkerService_ServiceDesc)
}

// The README's "Security model" tables for the coordinator and the workers are rendered from the
// policies (make docs rewrites them).
func TestReadmeAccessTable(t *testing.T) {
	authtest.CheckReadme(t, "training-coordinator", Policy, &trainingv1.TrainingCoordinatorService_ServiceDesc)
	authtest.CheckReadme(t, "training-worker", WorkerPolicy, &trainingv1.WorkerService_ServiceDesc)
}
