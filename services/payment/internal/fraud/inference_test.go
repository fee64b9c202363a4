package fraud

import (
	"context"
	"math"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/bourse-dev/bourse/pkg/client"
	pkgfraud "github.com/bourse-dev/bourse/pkg/fraud"
	pb "github.com/bourse-dev/bourse/pkg/gen/inference"
	"github.com/bourse-dev/bourse/pkg/testenv"
)

// The real path: the inference binary, onnxruntime, and the fraud model pkg/fraud writes (a smaller
// fit of the same dataset than make run's), registered in a real Consul agent.
func TestAgainstRealInference(t *testing.T) {
	agent := testenv.StartConsul(t)
	repo := t.TempDir()
	spec := pkgfraud.Spec{Seed: 1, Samples: 5000, Fit: pkgfraud.FitOptions{Epochs: 200, LearningRate: 2, L2: 1e-3}}
	m, err := pkgfraud.WriteRepository(filepath.Join(repo, pkgfraud.ModelName), spec)
	if err != nil {
		t.Fatal(err)
	}
	const key = "pay-svc"
	inf := testenv.StartService(t, testenv.Build(t, "github.com/bourse-dev/bourse/services/inference/cmd/inference"), nil,
		"--consul-addr="+agent.Addr, "--api-keys="+key+"=service:payment", "--check-interval=1s",
		"--model-repository="+repo, "--onnxruntime-lib="+testenv.Tool(t, "libonnxruntime.so"))
	conn, err := client.Dial(inf.GRPCAddr, client.Options{APIKey: key})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()

	lo, hi := m.Probability(honest.Vector()), m.Probability(risky.Vector())
	if !(lo < hi) {
		t.Fatalf("the model does not separate the two deposits: %v vs %v", lo, hi)
	}
	failOpen := map[string]int64{"USD": 50_000}
	c := New(pb.NewGRPCInferenceServiceClient(conn), Config{Threshold: (lo + hi) / 2, Timeout: 5 * time.Second, FailOpenMax: failOpen}, nil)
	ctx := context.Background()

	// The model may still be loading when the server reports ready.
	var v Verdict
	deadline := time.Now().Add(30 * time.Second)
	for v, err = c.Check(ctx, honest, usd100); err != nil; v, err = c.Check(ctx, honest, usd100) {
		if time.Now().After(deadline) {
			t.Fatalf("no score in 30s: %v\n%s", err, inf.Log())
		}
		time.Sleep(100 * time.Millisecond)
	}
	// onnxruntime computes in float32: agree with the Go model to float32 precision.
	if !v.Scored || v.Decline || math.Abs(v.Score-lo) > 1e-4 {
		t.Fatalf("honest deposit: %+v, want scored %v and not declined", v, lo)
	}
	v, err = c.Check(ctx, risky, usd100)
	if err != nil || !v.Scored || !v.Decline || v.Reason != ReasonFraudSuspected || math.Abs(v.Score-hi) > 1e-4 {
		t.Fatalf("risky deposit: %+v %v, want declined fraud_suspected scoring %v", v, err, hi)
	}

	// Inference goes away: the policy decides, by amount.
	inf.Signal(syscall.SIGTERM)
	if !inf.WaitExit(20 * time.Second) {
		t.Fatal("inference did not stop")
	}
	c.cfg.Timeout = 500 * time.Millisecond
	if v, err := c.Check(ctx, risky, usd100); err == nil || v.Scored || v.Decline {
		t.Fatalf("down, 100.00 USD: %+v %v, want unscored and let through", v, err)
	}
	if v, err := c.Check(ctx, honest, usd1000); err == nil || v.Scored || !v.Decline || v.Reason != ReasonUnscoredClosed {
		t.Fatalf("down, 1,000.00 USD: %+v %v, want unscored and declined", v, err)
	}
}
