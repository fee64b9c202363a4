package inference_test

import (
	"bufio"
	"context"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/bourse-dev/bourse/pkg/client"
	pb "github.com/bourse-dev/bourse/pkg/gen/inference"
	"github.com/bourse-dev/bourse/pkg/testenv"
	"github.com/bourse-dev/bourse/services/inference/internal/testutil"
)

const (
	adminKey   = "inf-admin"
	userKey    = "inf-payment"
	serviceKey = "inf-payment-service"
	// userKey is an account that happens to be named like the payment service; serviceKey is the
	// service itself.
	apiKeys = adminKey + "=admin:ops," + userKey + "=account:payment," + serviceKey + "=service:payment"
	mainPkg = "github.com/bourse-dev/bourse/services/inference/cmd/inference"
)

type proc struct {
	*testenv.Process
	admin, user, service, anon pb.GRPCInferenceServiceClient
}

// startInference runs the real binary on repo, registered in agent's Consul.
func startInference(t *testing.T, agent *testenv.ConsulAgent, repo string, env []string, args ...string) *proc {
	t.Helper()
	// The load tests drive one account key far past the default per-account rate limit, which has
	// its own test in pkg/server.
	args = append([]string{"--consul-addr=" + agent.Addr, "--api-keys=" + apiKeys, "--check-interval=1s", "--rate-limit-account=off",
		"--model-repository=" + repo, "--onnxruntime-lib=" + testutil.ORTLibrary(t)}, args...)
	p := &proc{Process: testenv.StartService(t, testenv.Build(t, mainPkg), env, args...)}
	for key, dst := range map[string]*pb.GRPCInferenceServiceClient{adminKey: &p.admin, userKey: &p.user, serviceKey: &p.service, "": &p.anon} {
		conn, err := client.Dial(p.GRPCAddr, client.Options{APIKey: key, MaxMessageBytes: 64 << 20})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		*dst = pb.NewGRPCInferenceServiceClient(conn)
	}
	return p
}

// metric reads one sample from the process's /metrics; series is the exact name{labels} text.
func (p *proc) metric(t *testing.T, series string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + p.MetricsAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), series+" "); ok {
			v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
			if err != nil {
				t.Fatal(err)
			}
			return v
		}
	}
	return 0
}

func irisTyped(rows ...[4]float32) *pb.ModelInferRequest {
	var vals []float32
	for _, r := range rows {
		vals = append(vals, r[:]...)
	}
	return &pb.ModelInferRequest{ModelName: "iris", Id: "req-1", Inputs: []*pb.ModelInferRequest_InferInputTensor{{
		Name: "X", Datatype: "FP32", Shape: []int64{int64(len(rows)), 4},
		Contents: &pb.InferTensorContents{Fp32Contents: vals}}}}
}

func irisRaw(rows ...[4]float32) *pb.ModelInferRequest {
	return &pb.ModelInferRequest{ModelName: "iris", Inputs: []*pb.ModelInferRequest_InferInputTensor{{
		Name: "X", Datatype: "FP32", Shape: []int64{int64(len(rows)), 4}}},
		RawInputContents: [][]byte{testutil.IrisBytes(rows...)}}
}

func vecsum(x float32) *pb.ModelInferRequest {
	v := make([]float32, 10)
	for i := range v {
		v[i] = x
	}
	return &pb.ModelInferRequest{ModelName: "vecsum", Inputs: []*pb.ModelInferRequest_InferInputTensor{{
		Name: "input_vectors", Datatype: "FP32", Shape: []int64{1, 10}, Contents: &pb.InferTensorContents{Fp32Contents: v}}}}
}

// wantCode fails unless err has code and its message contains every fragment.
func wantCode(t *testing.T, what string, err error, code codes.Code, fragments ...string) {
	t.Helper()
	st := status.Convert(err)
	if st.Code() != code {
		t.Errorf("%s: %v, want %v", what, err, code)
		return
	}
	for _, f := range fragments {
		if !strings.Contains(st.Message(), f) {
			t.Errorf("%s: message %q does not contain %q", what, st.Message(), f)
		}
	}
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}
