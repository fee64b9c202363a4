package matching_test

import (
	"path/filepath"
	"testing"

	"github.com/bourse-dev/bourse/pkg/auth/authtest"
	"github.com/bourse-dev/bourse/pkg/client"
	matchingv1 "github.com/bourse-dev/bourse/pkg/gen/bourse/matching/v1"
	"github.com/bourse-dev/bourse/pkg/testenv"
)

// Every matching method × no key, another account, the account named in the request, each service
// identity, an admin → admitted or the exact refusal, against the real binaries (matching calling a
// real risk as service:matching).
func TestAccessMatrix(t *testing.T) {
	keys := authtest.Keys{Own: aliceKey, Other: bobKey, OwnAccount: "alice", Admin: adminKey,
		Services: map[string]string{"payment": "k-payment", "training": "k-training", "inference": "k-inference"}}
	ring := apiKeys
	for name, key := range keys.Services {
		ring += "," + key + "=service:" + name
	}
	dir := t.TempDir()
	risk := testenv.StartService(t, testenv.Build(t, riskPkg), nil, "--register=false", "--api-keys="+ring,
		"--data-dir="+filepath.Join(dir, "risk"))
	matching := testenv.StartService(t, testenv.Build(t, matchingPkg), nil, "--register=false", "--api-keys="+ring,
		"--risk-addr="+risk.GRPCAddr, "--risk-api-key="+riskKey, "--data-dir="+filepath.Join(dir, "matching"), "--shards=1",
		"--rate-limit-account=off")
	conn, err := client.Dial(matching.GRPCAddr, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	authtest.Matrix(t, conn, matchingv1.File_bourse_matching_v1_matching_proto.Services().ByName("MatchingService"), map[string]authtest.Who{
		"SubmitOrder":     authtest.Own,
		"CancelOrder":     authtest.Own,
		"CancelAllOrders": authtest.Own,
		"AmendOrder":      authtest.Own,
		"GetOrder":        authtest.Own,
		"ListOrders":      authtest.Own,
		// Each command names its account; acting for another is refused in that command's answer.
		"StreamOrders": authtest.AnyAcct,

		"ListSymbols":      authtest.AnyAcct,
		"GetBook":          authtest.AnyAcct,
		"StreamMarketData": authtest.AnyAcct,

		"AddSymbol":           authtest.Admin,
		"GetSettlementStatus": authtest.Admin,
		"ResumeSettlement":    authtest.Admin,
	}, keys)
}
