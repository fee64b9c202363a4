package discovery_test

import (
	"testing"

	"github.com/bourse-dev/bourse/pkg/auth/authtest"
	"github.com/bourse-dev/bourse/pkg/client"
	discoveryv1 "github.com/bourse-dev/bourse/pkg/gen/bourse/discovery/v1"
	"github.com/bourse-dev/bourse/pkg/testenv"
)

// Every discovery method × no key, two accounts, each service identity, an admin → admitted or the
// exact refusal, against the real binary and Consul. The catalog is topology: no customer key reads it.
func TestAccessMatrix(t *testing.T) {
	agent := testenv.StartConsul(t)
	keys := authtest.Keys{Own: "k-alice", Other: "k-bob", OwnAccount: "alice", Admin: "k-admin",
		Services: map[string]string{"matching": "k-matching", "payment": "k-payment", "training": "k-training"}}
	ring := "k-alice=account:alice,k-bob=account:bob,k-admin=admin:ops"
	for name, key := range keys.Services {
		ring += "," + key + "=service:" + name
	}
	p := testenv.StartService(t, testenv.Build(t, mainPkg), nil, "--consul-addr="+agent.Addr, "--register=false", "--api-keys="+ring)
	conn, err := client.Dial(p.GRPCAddr, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	authtest.Matrix(t, conn, discoveryv1.File_bourse_discovery_v1_discovery_proto.Services().ByName("DiscoveryService"), map[string]authtest.Who{
		"Discover":   authtest.Svc("*"),
		"Watch":      authtest.Svc("*"),
		"Register":   authtest.Admin,
		"Deregister": authtest.Admin,
	}, keys)
}
