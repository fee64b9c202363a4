package grpcapi

import (
	"testing"

	"github.com/bourse-dev/bourse/pkg/auth/authtest"
	riskv1 "github.com/bourse-dev/bourse/pkg/gen/bourse/risk/v1"
)

// Default deny is only safe if nothing is forgotten: every method the service registers has a rule.
func TestPolicyClassifiesEveryMethod(t *testing.T) {
	authtest.RequireClassified(t, Policy, &riskv1.RiskService_ServiceDesc)
}

// The README's "Security model" table for risk is rendered from Policy (make docs rewrites it).
func TestReadmeAccessTable(t *testing.T) {
	authtest.CheckReadme(t, "risk", Policy, &riskv1.RiskService_ServiceDesc)
}
