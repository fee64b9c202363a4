package grpcapi

import (
	"testing"

	"github.com/bourse-dev/bourse/pkg/auth/authtest"
	discoveryv1 "github.com/bourse-dev/bourse/pkg/gen/bourse/discovery/v1"
)

// Default deny is only safe if nothing is forgotten: every method the service registers has a rule.
func TestPolicyClassifiesEveryMethod(t *testing.T) {
	authtest.RequireClassified(t, Policy, &discoveryv1.DiscoveryService_ServiceDesc)
}

// The README's "Security model" table for discovery is rendered from Policy (make docs rewrites it).
func TestReadmeAccessTable(t *testing.T) {
	authtest.CheckReadme(t, "discovery", Policy, &discoveryv1.DiscoveryService_ServiceDesc)
}
