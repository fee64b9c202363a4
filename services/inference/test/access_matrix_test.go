package inference_test

import (
	"testing"

	"github.com/bourse-dev/bourse/pkg/auth/authtest"
	"github.com/bourse-dev/bourse/pkg/client"
	pb "github.com/bourse-dev/bourse/pkg/gen/inference"
	"github.com/bourse-dev/bourse/pkg/testenv"
	"github.com/bourse-dev/bourse/services/inference/internal/testutil"
)

// Every inference method × no key, two accounts, each service identity, an admin → admitted or the
// exact refusal, against the real binary. (Which identities may use which model is the models' own
// access rule, tested with the model configs; the minimal requests here name no model.)
func TestAccessMatrix(t *testing.T) {
	keys := authtest.Keys{Own: "k-alice", Other: "k-bob", OwnAccount: "alice", Admin: "k-admin",
		Services: map[string]string{"training": "k-training", "payment": "k-payment", "matching": "k-matching"}}
	ring := "k-alice=account:alice,k-bob=account:bob,k-admin=admin:ops"
	for name, key := range keys.Services {
		ring += "," + key + "=service:" + name
	}
	p := testenv.StartService(t, testenv.Build(t, mainPkg), nil, "--register=false", "--api-keys="+ring,
		"--model-repository=../testdata/models", "--onnxruntime-lib="+testutil.ORTLibrary(t), "--rate-limit-account=off")
	conn, err := client.Dial(p.GRPCAddr, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	training := authtest.Svc("training")
	authtest.Matrix(t, conn, pb.File_inference_grpc_service_proto.Services().ByName("GRPCInferenceService"), map[string]authtest.Who{
		"ServerLive":  authtest.Public,
		"ServerReady": authtest.Public,

		"ServerMetadata":   authtest.AnyCaller,
		"ModelReady":       authtest.AnyCaller,
		"ModelMetadata":    authtest.AnyCaller,
		"ModelInfer":       authtest.AnyCaller,
		"ModelStreamInfer": authtest.AnyCaller,

		"RepositoryIndex":       training,
		"RepositoryModelLoad":   training,
		"RepositoryModelUnload": training,
	}, keys)
}
