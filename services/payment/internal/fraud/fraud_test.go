package fraud

import (
	"context"
	"errors"
	"math"
	"net"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/bourse-dev/bourse/pkg/errs"
	pkgfraud "github.com/bourse-dev/bourse/pkg/fraud"
	pb "github.com/bourse-dev/bourse/pkg/gen/inference"
	"github.com/bourse-dev/bourse/services/payment/internal/domain"
)

// fakeInference answers ModelInfer like the real server does for the fraud model on every point the
// client relies on: NotFound for another model, InvalidArgument for an input of the wrong name,
// datatype, shape or length, typed FP32 contents back for typed input (raw when answerRaw), output
// "probability" of shape [1, 1] computed by the same logistic model inference would run.
type fakeInference struct {
	pb.UnimplementedGRPCInferenceServiceServer
	model pkgfraud.Model

	mu        sync.Mutex
	delay     time.Duration
	answerRaw bool
	override  func() *pb.ModelInferResponse // a malformed answer, when set
	calls     int
}

func (f *fakeInference) ModelInfer(ctx context.Context, req *pb.ModelInferRequest) (*pb.ModelInferResponse, error) {
	f.mu.Lock()
	delay, raw, override := f.delay, f.answerRaw, f.override
	f.calls++
	f.mu.Unlock()
	if delay > 0 {
		select {
		case <-time.After(delay):
		case <-ctx.Done():
			return nil, status.FromContextError(ctx.Err()).Err()
		}
	}
	if req.GetModelName() != pkgfraud.ModelName {
		return nil, status.Errorf(codes.NotFound, "model %q not found", req.GetModelName())
	}
	if len(req.GetInputs()) != 1 {
		return nil, status.Error(codes.InvalidArgument, "inputs: want 1")
	}
	in := req.GetInputs()[0]
	vals := in.GetContents().GetFp32Contents()
	if in.GetName() != pkgfraud.InputName || in.GetDatatype() != "FP32" || len(in.GetShape()) != 2 ||
		in.GetShape()[0] != 1 || in.GetShape()[1] != pkgfraud.NumFeatures || len(vals) != pkgfraud.NumFeatures {
		return nil, status.Errorf(codes.InvalidArgument, "inputs[0]: want %s FP32 [1,%d]", pkgfraud.InputName, pkgfraud.NumFeatures)
	}
	if override != nil {
		return override(), nil
	}
	p := float32(f.model.Probability(vals))
	out := &pb.ModelInferResponse_InferOutputTensor{Name: pkgfraud.OutputName, Datatype: "FP32", Shape: []int64{1, 1}}
	resp := &pb.ModelInferResponse{ModelName: pkgfraud.ModelName, ModelVersion: "1", Outputs: []*pb.ModelInferResponse_InferOutputTensor{out}}
	if raw {
		b := math.Float32bits(p)
		resp.RawOutputContents = [][]byte{{byte(b), byte(b >> 8), byte(b >> 16), byte(b >> 24)}}
	} else {
		out.Contents = &pb.InferTensorContents{Fp32Contents: []float32{p}}
	}
	return resp, nil
}

var (
	modelOnce sync.Once
	model     pkgfraud.Model
	modelErr  error
)

// testModel is a small fit of pkg/fraud's dataset: the same kind of model make run serves.
func testModel(t *testing.T) pkgfraud.Model {
	t.Helper()
	modelOnce.Do(func() {
		model, modelErr = pkgfraud.Spec{Seed: 1, Samples: 5000, Fit: pkgfraud.FitOptions{Epochs: 200, LearningRate: 2, L2: 1e-3}}.Build()
	})
	if modelErr != nil {
		t.Fatal(modelErr)
	}
	return model
}

func serveFake(t *testing.T) (*fakeInference, pb.GRPCInferenceServiceClient, func()) {
	t.Helper()
	f := &fakeInference{model: testModel(t)}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	pb.RegisterGRPCInferenceServiceServer(srv, f)
	go srv.Serve(lis)
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	stop := func() { once.Do(srv.Stop) }
	t.Cleanup(func() { conn.Close(); stop() })
	return f, pb.NewGRPCInferenceServiceClient(conn), stop
}

// Two deposits the dataset tells apart: an old account's usual card payment, and a card-testing
// burst on a new account in a minor currency.
var (
	honest = pkgfraud.Features{AmountMajor: 120, Currency: "USD", Method: "card", AccountAgeDays: 700, DepositsLastDay: 1, AmountLastDayMajor: 90}
	risky  = pkgfraud.Features{AmountMajor: 2500, Currency: "TRY", Method: "card", AccountAgeDays: 0.2, DepositsLastHour: 9, DepositsLastDay: 12, AmountLastDayMajor: 9000}
)

var (
	usd100  = domain.Money{Amount: 10_000, Currency: "USD"}
	usd1000 = domain.Money{Amount: 100_000, Currency: "USD"}
	eur100  = domain.Money{Amount: 10_000, Currency: "EUR"}
)

func TestScoresAndThreshold(t *testing.T) {
	m := testModel(t)
	lo, hi := m.Probability(honest.Vector()), m.Probability(risky.Vector())
	if !(lo < hi) {
		t.Fatalf("the test model does not separate the two deposits: %v vs %v", lo, hi)
	}
	threshold := (lo + hi) / 2
	for _, raw := range []bool{false, true} {
		f, cl, _ := serveFake(t)
		f.answerRaw = raw
		c := New(cl, Config{Threshold: threshold, Timeout: 5 * time.Second}, nil)
		v, err := c.Check(context.Background(), honest, usd100)
		if err != nil || !v.Scored || v.Decline || math.Abs(v.Score-lo) > 1e-6 {
			t.Fatalf("raw=%v honest: %+v %v; want scored %v, not declined", raw, v, err, lo)
		}
		v, err = c.Check(context.Background(), risky, usd100)
		if err != nil || !v.Scored || !v.Decline || v.Reason != ReasonFraudSuspected || math.Abs(v.Score-hi) > 1e-6 {
			t.Fatalf("raw=%v risky: %+v %v; want declined fraud_suspected with score %v", raw, v, err, hi)
		}
	}
}

func TestPolicyWhenInferenceDoesNotAnswer(t *testing.T) {
	failOpen := map[string]int64{"USD": 50_000}
	cases := map[string]func(f *fakeInference, stop func()) Config{
		"slow": func(f *fakeInference, _ func()) Config {
			f.delay = 10 * time.Second
			return Config{Timeout: 50 * time.Millisecond, FailOpenMax: failOpen}
		},
		"down": func(_ *fakeInference, stop func()) Config {
			stop()
			return Config{Timeout: 2 * time.Second, FailOpenMax: failOpen}
		},
		"model missing": func(*fakeInference, func()) Config {
			return Config{Model: "fraud-v9", Timeout: 2 * time.Second, FailOpenMax: failOpen}
		},
		"not a probability": func(f *fakeInference, _ func()) Config {
			f.override = func() *pb.ModelInferResponse {
				return &pb.ModelInferResponse{Outputs: []*pb.ModelInferResponse_InferOutputTensor{{
					Name: pkgfraud.OutputName, Datatype: "FP32", Shape: []int64{1, 1},
					Contents: &pb.InferTensorContents{Fp32Contents: []float32{float32(math.NaN())}}}}}
			}
			return Config{Timeout: 2 * time.Second, FailOpenMax: failOpen}
		},
		"no output": func(f *fakeInference, _ func()) Config {
			f.override = func() *pb.ModelInferResponse { return &pb.ModelInferResponse{} }
			return Config{Timeout: 2 * time.Second, FailOpenMax: failOpen}
		},
		"two values": func(f *fakeInference, _ func()) Config {
			f.override = func() *pb.ModelInferResponse {
				return &pb.ModelInferResponse{Outputs: []*pb.ModelInferResponse_InferOutputTensor{{
					Name: pkgfraud.OutputName, Datatype: "FP32", Shape: []int64{2, 1},
					Contents: &pb.InferTensorContents{Fp32Contents: []float32{0.1, 0.2}}}}}
			}
			return Config{Timeout: 2 * time.Second, FailOpenMax: failOpen}
		},
	}
	for name, setup := range cases {
		t.Run(name, func(t *testing.T) {
			f, cl, stop := serveFake(t)
			c := New(cl, setup(f, stop), nil)
			for _, tc := range []struct {
				m       domain.Money
				decline bool
			}{
				{usd100, false}, // 100.00 USD ≤ 500.00: fail open
				{usd1000, true}, // above the limit: fail closed
				{eur100, true},  // no limit for EUR: fail closed
				{domain.Money{Amount: 50_000, Currency: "USD"}, false}, // the limit itself is open
			} {
				start := time.Now()
				v, err := c.Check(context.Background(), risky, tc.m)
				if err == nil || errs.KindOf(err) != errs.KindUnavailable {
					t.Fatalf("%v: err %v, want Unavailable", tc.m, err)
				}
				if v.Scored || v.Score != 0 || v.Decline != tc.decline || (tc.decline && v.Reason != ReasonUnscoredClosed) {
					t.Fatalf("%v: %+v, want unscored with decline=%v", tc.m, v, tc.decline)
				}
				if name == "slow" && time.Since(start) > 5*time.Second {
					t.Fatalf("the check waited %v for a slow model; its deadline is 50ms", time.Since(start))
				}
			}
		})
	}
}

func TestParseFailOpen(t *testing.T) {
	got, err := ParseFailOpen(" USD:50000, JPY:5000000 ")
	if err != nil || len(got) != 2 || got["USD"] != 50000 || got["JPY"] != 5000000 {
		t.Fatalf("got %v %v", got, err)
	}
	if got, err := ParseFailOpen(""); err != nil || len(got) != 0 {
		t.Fatalf("empty: %v %v", got, err)
	}
	for _, bad := range []string{"USD", "usd:1", "USD:-1", "USD:1.5", "USD:1,USD:2", "US:1"} {
		_, err := ParseFailOpen(bad)
		var e *errs.Error
		if !errors.As(err, &e) || e.Field != "fraud-fail-open" {
			t.Errorf("ParseFailOpen(%q) = %v, want InvalidArgument naming fraud-fail-open", bad, err)
		}
	}
}
