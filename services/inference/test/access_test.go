package inference_test

import (
	"io"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"

	pb "github.com/bourse-dev/bourse/pkg/gen/inference"
	"github.com/bourse-dev/bourse/pkg/testenv"
	"github.com/bourse-dev/bourse/services/inference/internal/testutil"
)

// A fraud model that only the payment service and admins may use, served by the real binary: every
// model RPC, the stream included, answers them and refuses an account (even one named "payment")
// with PermissionDenied that names no rule, version or tensor; other models stay open to it.
func TestFraudModelAnswersOnlyPaymentAndAdmins(t *testing.T) {
	agent := testenv.StartConsul(t)
	repo := testutil.CopyRepo(t, "iris")
	testutil.AddRestricted(t, repo, "iris", "fraud", "service:payment", "admin")
	p := startInference(t, agent, repo, nil)
	c := ctx(t)
	fraud := func() *pb.ModelInferRequest {
		r := irisTyped(testutil.IrisRows[0])
		r.ModelName = "fraud"
		return r
	}
	for name, cl := range map[string]pb.GRPCInferenceServiceClient{"service:payment": p.service, "admin": p.admin} {
		r, err := cl.ModelInfer(c, fraud())
		if err != nil || r.GetOutputs()[0].GetContents().GetInt64Contents()[0] != testutil.IrisLabels[0] {
			t.Fatalf("%s: ModelInfer(fraud) = %v, %v", name, r, err)
		}
		if md, err := cl.ModelMetadata(c, &pb.ModelMetadataRequest{Name: "fraud"}); err != nil || md.GetInputs()[0].GetName() != "X" {
			t.Fatalf("%s: ModelMetadata(fraud) = %v, %v", name, md, err)
		}
		if mr, err := cl.ModelReady(c, &pb.ModelReadyRequest{Name: "fraud"}); err != nil || !mr.GetReady() {
			t.Fatalf("%s: ModelReady(fraud) = %v, %v", name, mr, err)
		}
		if msg := streamOnce(t, cl, fraud()); msg != "" {
			t.Fatalf("%s: ModelStreamInfer(fraud) answered %q", name, msg)
		}
	}

	_, err := p.user.ModelInfer(c, fraud())
	wantCode(t, "account ModelInfer(fraud)", err, codes.PermissionDenied, "fraud")
	wrong := fraud()
	wrong.Inputs[0].Name = "probe"
	_, err = p.user.ModelInfer(c, wrong)
	wantCode(t, "account ModelInfer(fraud) with a wrong tensor", err, codes.PermissionDenied)
	_, err = p.user.ModelMetadata(c, &pb.ModelMetadataRequest{Name: "fraud"})
	wantCode(t, "account ModelMetadata(fraud)", err, codes.PermissionDenied)
	_, err = p.user.ModelReady(c, &pb.ModelReadyRequest{Name: "fraud", Version: "1"})
	wantCode(t, "account ModelReady(fraud, 1)", err, codes.PermissionDenied)
	for _, leak := range []string{"service", "admin", "X", "probe", "version"} {
		if _, err := p.user.ModelInfer(c, wrong); strings.Contains(err.Error(), leak) {
			t.Errorf("the refusal %q reveals %q", err, leak)
		}
	}
	if msg := streamOnce(t, p.user, fraud()); !strings.Contains(msg, "may not use") {
		t.Fatalf("account ModelStreamInfer(fraud) answered %q, want a refusal", msg)
	}
	if r, err := p.user.ModelInfer(c, irisTyped(testutil.IrisRows[0])); err != nil || r.GetOutputs()[0].GetContents().GetInt64Contents()[0] != testutil.IrisLabels[0] {
		t.Fatalf("account ModelInfer(iris), a model without a rule: %v, %v", r, err)
	}
}

// streamOnce sends one request on a new stream and returns the answer's error_message.
func streamOnce(t *testing.T, cl pb.GRPCInferenceServiceClient, req *pb.ModelInferRequest) string {
	t.Helper()
	c := ctx(t)
	stream, err := cl.ModelStreamInfer(c)
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(req); err != nil {
		t.Fatal(err)
	}
	if err := stream.CloseSend(); err != nil {
		t.Fatal(err)
	}
	r, err := stream.Recv()
	if err != nil {
		t.Fatalf("stream answer: %v", err)
	}
	if _, err := stream.Recv(); err != io.EOF {
		t.Fatalf("stream did not end after one answer: %v", err)
	}
	return r.GetErrorMessage()
}
