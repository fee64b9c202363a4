package risk_test

import (
	"path/filepath"
	"testing"

	"github.com/bourse-dev/bourse/pkg/auth/authtest"
	"github.com/bourse-dev/bourse/pkg/client"
	riskv1 "github.com/bourse-dev/bourse/pkg/gen/bourse/risk/v1"
	"github.com/bourse-dev/bourse/pkg/testenv"
)

// Every risk method × no key, another account, the account named in the request, each service
// identity, an admin → admitted or the exact refusal, against the real binary. A customer key reaches
// its own account and nothing else.
func TestAccessMatrix(t *testing.T) {
	keys := authtest.Keys{Own: "k-alice", Other: "k-bob", OwnAccount: "alice", Admin: "k-admin",
		Services: map[string]string{"matching": "k-matching", "payment": "k-payment", "training": "k-training", "inference": "k-inference"}}
	ring := "k-alice=account:alice,k-bob=account:bob,k-admin=admin:ops"
	for name, key := range keys.Services {
		ring += "," + key + "=service:" + name
	}
	p := testenv.StartService(t, testenv.Build(t, mainPkg), nil, "--register=false", "--api-keys="+ring,
		"--data-dir="+filepath.Join(t.TempDir(), "risk"), "--rate-limit-account=off")
	conn, err := client.Dial(p.GRPCAddr, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	matching, payment := authtest.Svc("matching"), authtest.Svc("payment")
	authtest.Matrix(t, conn, riskv1.File_bourse_risk_v1_risk_proto.Services().ByName("RiskService"), map[string]authtest.Who{
		"GetAccount": authtest.Own,

		"ListSymbols":         matching,
		"CheckOrder":          matching,
		"CheckOrders":         matching,
		"ReleaseReservation":  matching,
		"ReleaseReservations": matching,
		"RestoreReservations": matching,
		"ApplyExecutions":     matching,
		"Settle":              matching,
		"SyncReservations":    matching,

		"Credit": payment,
		"Debit":  payment,

		"DefineAsset":     authtest.Admin,
		"DefineSymbol":    authtest.Admin,
		"OpenAccount":     authtest.Admin,
		"SetLimits":       authtest.Admin,
		"SetTradingState": authtest.Admin,
		"Audit":           authtest.Admin,
	}, keys)
}
