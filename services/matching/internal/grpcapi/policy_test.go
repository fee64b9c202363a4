package grpcapi

import (
	"testing"

	"github.com/bourse-dev/bourse/pkg/auth/authtest"
	matchingv1 "github.com/bourse-dev/bourse/pkg/gen/bourse/matching/v1"
)

// Default deny is only safe if nothing is forgotten: every method the service registers has a rule.
func TestPolicyClassifiesEveryMethod(t *testing.T) {
	authtest.RequireClassified(t, Policy, &matchingv1.MatchingService_ServiceDesc)
}

// The README's "Security model" table for matching is rendered from Policy (make docs rewrites it).
func TestReadmeAccessTable(t *testing.T) {
	authtest.CheckReadme(t, "matching", Policy, &matchingv1.MatchingService_ServiceDesc)
}
