package grpcapi

import (
	"context"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/bourse-dev/bourse/pkg/auth"
	"github.com/bourse-dev/bourse/pkg/errs"
	pb "github.com/bourse-dev/bourse/pkg/gen/inference"
	"github.com/bourse-dev/bourse/services/inference/internal/backend"
	"github.com/bourse-dev/bourse/services/inference/internal/metrics"
	"github.com/bourse-dev/bourse/services/inference/internal/repository"
	"github.com/bourse-dev/bourse/services/inference/internal/testutil"
)

// serve starts a real repository (onnxruntime, the iris model) with a "fraud" copy of iris that
// only the payment service and admins may use.
func serve(t *testing.T) *Server {
	t.Helper()
	root := testutil.CopyRepo(t, "iris")
	testutil.AddRestricted(t, root, "iris", "fraud", "service:payment", "admin")
	m, err := repository.New(repository.Options{Root: root, Backends: []backend.Backend{testutil.ORT(t)},
		Metrics: metrics.New(prometheus.NewRegistry())})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	return New(m)
}

func as(id auth.Identity) context.Context { return auth.WithIdentity(context.Background(), id) }

func fraudRequest() *pb.ModelInferRequest {
	r := typedIris()
	r.ModelName = "fraud"
	return r
}

// The fraud model answers the payment service and admins on every model RPC, and refuses anyone
// else with PermissionDenied before looking at the request's tensors or version, so a refused
// caller cannot use it as an oracle nor learn its inputs from error messages.
func TestModelAccessRule(t *testing.T) {
	s := serve(t)
	allowed := []auth.Identity{auth.Service("payment"), auth.Admin("ops")}
	refused := []auth.Identity{auth.Account("alice"), auth.Account("payment"), auth.Service("matching")}
	for _, id := range allowed {
		ctx := as(id)
		if resp, err := s.ModelInfer(ctx, fraudRequest()); err != nil || len(resp.GetOutputs()) != 1 {
			t.Errorf("%v: ModelInfer(fraud) = %v, %v", id, resp, err)
		}
		if md, err := s.ModelMetadata(ctx, &pb.ModelMetadataRequest{Name: "fraud"}); err != nil || md.GetInputs()[0].GetName() != "X" {
			t.Errorf("%v: ModelMetadata(fraud) = %v, %v", id, md, err)
		}
		if r, err := s.ModelReady(ctx, &pb.ModelReadyRequest{Name: "fraud"}); err != nil || !r.GetReady() {
			t.Errorf("%v: ModelReady(fraud) = %v, %v", id, r, err)
		}
	}
	badTensor := fraudRequest()
	badTensor.Inputs[0].Name = "guess"
	for _, id := range refused {
		ctx := as(id)
		for name, call := range map[string]func() error{
			"ModelInfer":               func() error { _, err := s.ModelInfer(ctx, fraudRequest()); return err },
			"ModelInfer, wrong tensor": func() error { _, err := s.ModelInfer(ctx, badTensor); return err },
			"ModelMetadata":            func() error { _, err := s.ModelMetadata(ctx, &pb.ModelMetadataRequest{Name: "fraud"}); return err },
			"ModelMetadata, version 9": func() error {
				_, err := s.ModelMetadata(ctx, &pb.ModelMetadataRequest{Name: "fraud", Version: "9"})
				return err
			},
			"ModelReady": func() error { _, err := s.ModelReady(ctx, &pb.ModelReadyRequest{Name: "fraud"}); return err },
			"ModelReady, version 9": func() error {
				_, err := s.ModelReady(ctx, &pb.ModelReadyRequest{Name: "fraud", Version: "9"})
				return err
			},
		} {
			err := call()
			if errs.KindOf(err) != errs.KindPermissionDenied {
				t.Errorf("%v: %s(fraud) = %v, want PermissionDenied", id, name, err)
				continue
			}
			for _, secret := range []string{"payment", "admin", "X", "guess", "9", id.Subject} {
				if strings.Contains(strings.TrimPrefix(err.Error(), `model "fraud"`), secret) {
					t.Errorf("%v: %s refusal %q reveals %q", id, name, err, secret)
				}
			}
		}
		// A model without a rule serves every authenticated caller.
		if _, err := s.ModelInfer(ctx, typedIris()); err != nil {
			t.Errorf("%v: ModelInfer(iris) = %v", id, err)
		}
	}
	if _, err := s.ModelInfer(context.Background(), fraudRequest()); errs.KindOf(err) != errs.KindUnauthenticated {
		t.Errorf("no identity: %v, want Unauthenticated", err)
	}
	if _, err := s.ModelInfer(as(auth.Service("payment")), &pb.ModelInferRequest{ModelName: "ghost", Inputs: fraudRequest().Inputs}); errs.KindOf(err) != errs.KindNotFound {
		t.Errorf("unknown model: %v, want NotFound", err)
	}
}
