package risk_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

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

// The real risk process follows its key file: a changed file takes effect without a signal or a
// restart, and a broken one leaves the keys in force.
func TestKeyFileChangeWithoutRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "risk.keys")
	write := func(content string) {
		t.Helper()
		if err := os.WriteFile(path+".new", []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(path+".new", path); err != nil { // a Secret volume swaps atomically too
			t.Fatal(err)
		}
	}
	write("k-old=account:alice\n")
	p := testenv.StartService(t, testenv.Build(t, mainPkg), nil, "--register=false", "--api-keys-file="+path,
		"--api-keys-reload=100ms", "--data-dir="+filepath.Join(t.TempDir(), "risk"))
	code := func(key string) codes.Code {
		conn, err := client.Dial(p.GRPCAddr, client.Options{APIKey: key})
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, err = riskv1.NewRiskServiceClient(conn).GetAccount(ctx, &riskv1.GetAccountRequest{AccountId: "alice"})
		return status.Code(err)
	}
	if c := code("k-old"); c != codes.NotFound { // admitted; alice has no account yet
		t.Fatalf("key from the file at start: %v", c)
	}
	write("k-new=account:alice\n")
	testenv.WaitFor(t, 10*time.Second, "the new key accepted", func() bool { return code("k-new") == codes.NotFound })
	if c := code("k-old"); c != codes.Unauthenticated {
		t.Errorf("rotated-out key: %v", c)
	}
	write("k-new=account:alice\nk-new=admin:ops\n")
	testenv.WaitFor(t, 10*time.Second, "the bad file logged", func() bool {
		return p.LogContains("reloading API keys failed; keeping the previous keys")
	})
	if c := code("k-new"); c != codes.NotFound {
		t.Errorf("after a bad file: %v", c)
	}
}
