package matching_test

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	matchingv1 "github.com/bourse-dev/bourse/pkg/gen/bourse/matching/v1"
	riskv1 "github.com/bourse-dev/bourse/pkg/gen/bourse/risk/v1"
	"github.com/bourse-dev/bourse/pkg/testenv"
)

// Matching reaches risk with its own service identity read from a key file; risk's keyring is a file
// rotated with SIGHUP, and matching's key file is followed, both without a restart. When risk stops accepting matching's key, matching's users
// get Unavailable saying matching's credentials were refused, never risk's "unknown API key" as if it
// were about their own key; a bad keyring file keeps the keys in force.
func TestRiskKeyRotationWithoutRestart(t *testing.T) {
	dir := t.TempDir()
	riskKeys := filepath.Join(dir, "risk.keys")
	writeFile := func(path, content string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	writeFile(riskKeys, "# matching's identity towards risk\n"+riskKey+"=service:matching\n")
	matchingKey := filepath.Join(dir, "matching-risk.key")
	writeFile(matchingKey, riskKey+"\n")

	p := &platform{agent: testenv.StartConsul(t), dataDir: filepath.Join(dir, "matching")}
	people := adminKey + "=admin:ops," + aliceKey + "=account:alice," + bobKey + "=account:bob"
	// Only SIGHUP reloads here (the poll is an hour), so each step below is the signal's doing.
	p.riskProc = testenv.StartService(t, testenv.Build(t, riskPkg), nil, "--consul-addr="+p.agent.Addr, "--api-keys="+people,
		"--api-keys-file="+riskKeys, "--api-keys-reload=1h", "--check-interval=1s", "--data-dir="+filepath.Join(dir, "risk"))
	p.risk = riskv1.NewRiskServiceClient(dial(t, p.riskProc.GRPCAddr, adminKey))
	setupRisk(t, p.risk)
	testenv.WaitFor(t, 20*time.Second, "risk passing in consul", func() bool { return len(p.agent.Passing(t, "risk")) == 1 })
	p.matching = testenv.StartService(t, testenv.Build(t, matchingPkg), nil, "--consul-addr="+p.agent.Addr, "--api-keys="+people,
		"--check-interval=1s", "--risk-addr=consul:///risk", "--risk-api-key-file="+matchingKey, "--data-dir="+p.dataDir, "--shards=1")
	p.admin = matchingv1.NewMatchingServiceClient(dial(t, p.matching.GRPCAddr, adminKey))
	p.alice = matchingv1.NewMatchingServiceClient(dial(t, p.matching.GRPCAddr, aliceKey))
	p.addSymbol(t)
	ctx := context.Background()
	n := 0
	submit := func() error {
		n++
		_, err := p.alice.SubmitOrder(ctx, limitOrder("alice", "bid-"+strconv.Itoa(n), buy, "100", "0.01"))
		return err
	}
	if err := submit(); err != nil {
		t.Fatalf("order with matching's service identity: %v", err)
	}
	// The customer's key itself gets nothing from risk but its own account.
	aliceRisk := riskv1.NewRiskServiceClient(dial(t, p.riskProc.GRPCAddr, aliceKey))
	if _, err := aliceRisk.CheckOrders(ctx, &riskv1.CheckOrdersRequest{}); status.Code(err) != codes.PermissionDenied {
		t.Errorf("alice's key on risk CheckOrders: %v", err)
	}

	// A broken keyring file: the reload fails, is logged, and the keys in force stay.
	writeFile(riskKeys, riskKey+"=service:matching\n"+riskKey+"=service:payment\n")
	p.riskProc.Signal(syscall.SIGHUP)
	testenv.WaitFor(t, 10*time.Second, "risk logging the failed reload", func() bool {
		return p.riskProc.LogContains("reloading API keys failed; keeping the previous keys")
	})
	if err := submit(); err != nil {
		t.Fatalf("order after a failed reload: %v", err)
	}
	if log := p.riskProc.Log(); strings.Contains(log, riskKey) {
		t.Error("risk's log holds a key")
	}

	// Matching's key rotated out of risk's keyring.
	writeFile(riskKeys, "other-key=service:payment\n")
	p.riskProc.Signal(syscall.SIGHUP)
	var err error
	testenv.WaitFor(t, 10*time.Second, "risk refusing matching's old key", func() bool {
		err = submit()
		return err != nil
	})
	st := status.Convert(err)
	if st.Code() != codes.Unavailable || st.Code() == codes.Unauthenticated {
		t.Errorf("alice's order while risk refuses matching: %v, want Unavailable", err)
	}
	if strings.Contains(st.Message(), "unknown API key") || !strings.Contains(st.Message(), "credentials were refused") {
		t.Errorf("alice reads %q; want it to say matching's credentials were refused, not risk's verdict", st.Message())
	}

	// Back in: the same process serves matching again.
	writeFile(riskKeys, riskKey+"=service:matching\n")
	p.riskProc.Signal(syscall.SIGHUP)
	testenv.WaitFor(t, 10*time.Second, "risk accepting matching's key again", func() bool { return submit() == nil })
	if !p.riskProc.LogContains("reloaded API keys") {
		t.Error("risk did not log the reload")
	}

	// Rotating matching's own key, no restart anywhere: risk accepts both, matching's key file gets
	// the new one (matching re-reads it), risk drops the old one.
	reloads := func() int { return strings.Count(p.riskProc.Log(), "reloaded API keys") }
	before := reloads()
	writeFile(riskKeys, riskKey+"=service:matching\nmatching-risk-key-2=service:matching\n")
	p.riskProc.Signal(syscall.SIGHUP)
	testenv.WaitFor(t, 10*time.Second, "risk holding both keys", func() bool { return reloads() > before })
	writeFile(matchingKey, "matching-risk-key-2\n")
	testenv.WaitFor(t, 10*time.Second, "matching re-reading its key file", func() bool {
		_ = submit() // matching looks at its key file when it calls risk
		return p.matching.LogContains("client key reloaded")
	})
	before = reloads()
	writeFile(riskKeys, "matching-risk-key-2=service:matching\n")
	p.riskProc.Signal(syscall.SIGHUP)
	testenv.WaitFor(t, 10*time.Second, "risk dropping the old key", func() bool { return reloads() > before })
	if err := submit(); err != nil {
		t.Fatalf("order after rotating matching's key: %v", err)
	}
	if strings.Contains(p.matching.Log(), "matching-risk-key-2") {
		t.Error("matching's log holds its key")
	}
}
