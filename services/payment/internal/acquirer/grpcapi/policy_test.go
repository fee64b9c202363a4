package grpcapi

import (
	"testing"

	"github.com/bourse-dev/bourse/pkg/auth/authtest"
	acquirerv1 "github.com/bourse-dev/bourse/pkg/gen/bourse/acquirer/v1"
)

func TestPolicyClassifiesEveryMethod(t *testing.T) {
	authtest.RequireClassified(t, Policy, &acquirerv1.AcquirerService_ServiceDesc)
}

// The README's "Security model" table for the acquirer is rendered from Policy (make docs rewrites it).
func TestReadmeAccessTable(t *testing.T) {
	authtest.CheckReadme(t, "acquirer", Policy, &acquirerv1.AcquirerService_ServiceDesc)
}
