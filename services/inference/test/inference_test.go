// Package inference_test runs the real inference binary against a real Consul agent, real
// onnxruntime and a real Redis, and speaks the KServe v2 protocol to it with a generated client.
package inference_test

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	pb "github.com/bourse-dev/bourse/pkg/gen/inference"
	"github.com/bourse-dev/bourse/pkg/testenv"
	"github.com/bourse-dev/bourse/services/inference/internal/testutil"
)

// Every RPC of the protocol, its validation and its errors, against one polling server.
func TestProtocolConformance(t *testing.T) {
	agent := testenv.StartConsul(t)
	repo := testutil.CopyRepo(t, "iris", "vecsum")
	// A batching window no scheduler delay on a busy machine can miss, for the batching check below.
	cfgPath := filepath.Join(repo, "iris", "config.json")
	cfg, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	wide := bytes.Replace(cfg, []byte(`"max_queue_delay": "500us"`), []byte(`"max_queue_delay": "50ms"`), 1)
	if bytes.Equal(wide, cfg) {
		t.Fatal("the iris test config no longer has a 500us queue delay to widen")
	}
	testutil.WriteFile(t, cfgPath, wide)
	p := startInference(t, agent, repo, nil, "--max-message-bytes=262144")
	testenv.WaitFor(t, 15*time.Second, "inference passing in consul", func() bool { return len(agent.Passing(t, "inference")) == 1 })
	c := ctx(t)

	live, err := p.anon.ServerLive(c, &pb.ServerLiveRequest{})
	if err != nil || !live.GetLive() {
		t.Fatalf("ServerLive without a key: %v %v", live, err)
	}
	ready, err := p.anon.ServerReady(c, &pb.ServerReadyRequest{})
	if err != nil || !ready.GetReady() {
		t.Fatalf("ServerReady: %v %v", ready, err)
	}
	meta, err := p.user.ServerMetadata(c, &pb.ServerMetadataRequest{})
	if err != nil || meta.GetName() == "" || !slices.Contains(meta.GetExtensions(), "model_repository") {
		t.Fatalf("ServerMetadata: %v %v", meta, err)
	}

	mr, err := p.user.ModelReady(c, &pb.ModelReadyRequest{Name: "iris"})
	if err != nil || !mr.GetReady() {
		t.Fatalf("ModelReady(iris): %v %v", mr, err)
	}
	_, err = p.user.ModelReady(c, &pb.ModelReadyRequest{Name: "ghost"})
	wantCode(t, "ModelReady(ghost)", err, codes.NotFound, "ghost")
	_, err = p.user.ModelReady(c, &pb.ModelReadyRequest{})
	wantCode(t, "ModelReady without a name", err, codes.InvalidArgument, "name")

	mm, err := p.user.ModelMetadata(c, &pb.ModelMetadataRequest{Name: "iris"})
	if err != nil {
		t.Fatal(err)
	}
	if mm.GetPlatform() != "onnxruntime_onnx" || !slices.Equal(mm.GetVersions(), []string{"1"}) || len(mm.GetInputs()) != 1 ||
		mm.GetInputs()[0].GetName() != "X" || mm.GetInputs()[0].GetDatatype() != "FP32" || !slices.Equal(mm.GetInputs()[0].GetShape(), []int64{-1, 4}) ||
		mm.GetOutputs()[0].GetName() != "output_label" || mm.GetOutputs()[0].GetDatatype() != "INT64" {
		t.Fatalf("ModelMetadata(iris) = %v", mm)
	}
	_, err = p.user.ModelMetadata(c, &pb.ModelMetadataRequest{Name: "iris", Version: "9"})
	wantCode(t, "ModelMetadata(iris, 9)", err, codes.NotFound)

	typed, err := p.user.ModelInfer(c, irisTyped(testutil.IrisRows...))
	if err != nil {
		t.Fatal(err)
	}
	if typed.GetId() != "req-1" || typed.GetModelVersion() != "1" || !slices.Equal(typed.GetOutputs()[0].GetShape(), []int64{6}) ||
		!slices.Equal(typed.GetOutputs()[0].GetContents().GetInt64Contents(), testutil.IrisLabels) {
		t.Fatalf("typed ModelInfer = %v", typed)
	}
	raw, err := p.user.ModelInfer(c, irisRaw(testutil.IrisRows...))
	if err != nil {
		t.Fatal(err)
	}
	if len(raw.GetRawOutputContents()) != 1 || !slices.Equal(testutil.Int64s(raw.GetRawOutputContents()[0]), testutil.IrisLabels) {
		t.Fatalf("raw ModelInfer = %v", raw)
	}

	bad := irisTyped(testutil.IrisRows[0])
	bad.Inputs[0].Datatype = "FP64"
	bad.Inputs[0].Contents = &pb.InferTensorContents{Fp64Contents: []float64{1, 2, 3, 4}}
	_, err = p.user.ModelInfer(c, bad)
	wantCode(t, "wrong datatype", err, codes.InvalidArgument, `inputs["X"].datatype`)
	short := irisRaw(testutil.IrisRows[0])
	short.RawInputContents[0] = short.RawInputContents[0][:12]
	_, err = p.user.ModelInfer(c, short)
	wantCode(t, "short raw input", err, codes.InvalidArgument, "raw_input_contents[0]", `"X"`)
	big := make([][4]float32, 65)
	_, err = p.user.ModelInfer(c, irisRaw(big...))
	wantCode(t, "oversize batch", err, codes.InvalidArgument, `inputs["X"].shape`, "1-64")
	ghost := irisTyped(testutil.IrisRows[0])
	ghost.ModelName = "ghost"
	_, err = p.user.ModelInfer(c, ghost)
	wantCode(t, "unknown model", err, codes.NotFound, "ghost")
	_, err = p.anon.ModelInfer(c, irisTyped(testutil.IrisRows[0]))
	wantCode(t, "no key", err, codes.Unauthenticated)
	huge := irisRaw(make([][4]float32, 20000)...) // 320 KB > --max-message-bytes
	_, err = p.user.ModelInfer(c, huge)
	wantCode(t, "message over the limit", err, codes.ResourceExhausted)

	// Streaming: requests are pipelined; answers come back in request order, and a bad request
	// answers with error_message while the stream goes on.
	stream, err := p.user.ModelStreamInfer(c)
	if err != nil {
		t.Fatal(err)
	}
	const streamed = 100
	go func() {
		for i := range streamed {
			r := irisTyped(testutil.IrisRows[i%6])
			if i == 1 {
				r = ghost
			}
			r.Id = strconv.Itoa(i)
			if err := stream.Send(r); err != nil {
				return
			}
		}
		_ = stream.CloseSend()
	}()
	for i := 0; ; i++ {
		r, err := stream.Recv()
		if err == io.EOF {
			if i != streamed {
				t.Fatalf("stream ended after %d answers, want %d", i, streamed)
			}
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if r.GetInferResponse().GetId() != strconv.Itoa(i) {
			t.Fatalf("answer %d is for request %q: out of order", i, r.GetInferResponse().GetId())
		}
		if i == 1 {
			if r.GetErrorMessage() == "" {
				t.Fatal("the unknown model's stream answer has no error_message")
			}
			continue
		}
		if r.GetErrorMessage() != "" || r.GetInferResponse().GetOutputs()[0].GetContents().GetInt64Contents()[0] != testutil.IrisLabels[i%6] {
			t.Fatalf("stream answer %d: %v", i, r)
		}
	}

	_, err = p.user.RepositoryIndex(c, &pb.RepositoryIndexRequest{})
	wantCode(t, "index by an account", err, codes.PermissionDenied)
	idx, err := p.admin.RepositoryIndex(c, &pb.RepositoryIndexRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if len(idx.GetModels()) != 2 || idx.GetModels()[0].GetName() != "iris" || idx.GetModels()[0].GetState() != "READY" || idx.GetModels()[1].GetName() != "vecsum" {
		t.Fatalf("RepositoryIndex = %v", idx)
	}
	_, err = p.admin.RepositoryIndex(c, &pb.RepositoryIndexRequest{RepositoryName: "other"})
	wantCode(t, "unknown repository", err, codes.InvalidArgument, "repository_name")
	_, err = p.user.RepositoryModelLoad(c, &pb.RepositoryModelLoadRequest{ModelName: "iris"})
	wantCode(t, "load by a non-admin", err, codes.PermissionDenied)
	if _, err = p.admin.RepositoryModelLoad(c, &pb.RepositoryModelLoadRequest{ModelName: "iris"}); err != nil {
		t.Errorf("load in polling mode (now instead of at the next scan): %v", err)
	}
	_, err = p.admin.RepositoryModelLoad(c, &pb.RepositoryModelLoadRequest{ModelName: "absent"})
	wantCode(t, "load of a model the repository does not have", err, codes.NotFound)
	_, err = p.admin.RepositoryModelUnload(c, &pb.RepositoryModelUnloadRequest{ModelName: "iris"})
	wantCode(t, "unload in polling mode", err, codes.FailedPrecondition, "explicit")
	_, err = p.admin.RepositoryModelUnload(c, &pb.RepositoryModelUnloadRequest{ModelName: "../iris"})
	wantCode(t, "unload of a path", err, codes.InvalidArgument, "model_name")

	// Dynamic batching over the wire: concurrent single-row requests share executions. The requests
	// of a burst start together; on a machine so loaded that a burst arrives spread out (each then
	// finds the model idle and runs alone, by design), up to three bursts are tried.
	var execs, count float64
	for burst := 0; burst < 3; burst++ {
		execsBefore := p.metric(t, `inference_exec_count_total{model="iris",version="1"}`)
		countBefore := p.metric(t, `inference_count_total{model="iris",version="1"}`)
		var wg sync.WaitGroup
		var failed atomic.Int64
		start := make(chan struct{})
		for i := range 64 {
			wg.Go(func() {
				<-start
				r, err := p.user.ModelInfer(c, irisRaw(testutil.IrisRows[i%6]))
				if err != nil || testutil.Int64s(r.GetRawOutputContents()[0])[0] != testutil.IrisLabels[i%6] {
					failed.Add(1)
				}
			})
		}
		close(start)
		wg.Wait()
		execs = p.metric(t, `inference_exec_count_total{model="iris",version="1"}`) - execsBefore
		count = p.metric(t, `inference_count_total{model="iris",version="1"}`) - countBefore
		if failed.Load() != 0 || count != 64 {
			t.Fatalf("batching: %d failed, %v inferences", failed.Load(), count)
		}
		if execs < count {
			break
		}
	}
	if execs >= count {
		t.Fatalf("batching: three bursts of 64 concurrent requests, the last in %v executions: nothing was batched", execs)
	}
	t.Logf("64 concurrent requests ran in %v executions", execs)
	if s := p.metric(t, `inference_request_success_total{model="iris",version="1"}`); s < 66 {
		t.Fatalf("success counter %v", s)
	}
	// Two requests reached version 1 and failed its checks (datatype, batch size).
	if f := p.metric(t, `inference_request_failure_total{model="iris",version="1"}`); f != 2 {
		t.Fatalf("failure counter %v", f)
	}
}

// Explicit model control: load, unload, and a corrupt version that stays out of service while the
// rest serves.
func TestExplicitLoadUnloadAndCorruptVersion(t *testing.T) {
	agent := testenv.StartConsul(t)
	repo := testutil.CopyRepo(t, "iris", "vecsum")
	testutil.WriteFile(t, filepath.Join(repo, "vecsum", "2", "model.onnx"), []byte("garbage, not ONNX"))
	p := startInference(t, agent, repo, nil, "--model-control=explicit", "--load-model=iris")
	c := ctx(t)

	if r, err := p.user.ModelReady(c, &pb.ModelReadyRequest{Name: "vecsum"}); err != nil || r.GetReady() {
		t.Fatalf("vecsum ready before any load: %v %v", r, err)
	}
	_, err := p.user.ModelInfer(c, vecsum(1))
	wantCode(t, "infer before load", err, codes.NotFound, "vecsum")
	if _, err := p.admin.RepositoryModelLoad(c, &pb.RepositoryModelLoadRequest{ModelName: "vecsum"}); err != nil {
		t.Fatal(err)
	}
	r, err := p.user.ModelInfer(c, vecsum(1.5))
	if err != nil || r.GetModelVersion() != "1" || r.GetOutputs()[0].GetContents().GetFp32Contents()[0] != 15 {
		t.Fatalf("vecsum after load: %v %v", r, err)
	}
	idx, err := p.admin.RepositoryIndex(c, &pb.RepositoryIndexRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var v2 *pb.RepositoryIndexResponse_ModelIndex
	for _, m := range idx.GetModels() {
		if m.GetName() == "vecsum" && m.GetVersion() == "2" {
			v2 = m
		}
	}
	if v2 == nil || v2.GetState() != "UNAVAILABLE" || v2.GetReason() == "" {
		t.Fatalf("corrupt version in the index: %v", idx)
	}
	if r, err := p.user.ModelReady(c, &pb.ModelReadyRequest{Name: "vecsum", Version: "2"}); err != nil || r.GetReady() {
		t.Fatalf("ModelReady(vecsum, 2) = %v %v", r, err)
	}
	v2req := vecsum(1)
	v2req.ModelVersion = "2"
	_, err = p.user.ModelInfer(c, v2req)
	wantCode(t, "infer on the corrupt version", err, codes.Unavailable, "not ready")
	if _, err := p.user.ModelInfer(c, irisTyped(testutil.IrisRows[0])); err != nil {
		t.Fatalf("iris stopped serving: %v", err)
	}
	if open := p.metric(t, "inference_sessions_open"); open != 2 {
		t.Fatalf("sessions open %v, want 2 (iris 1, vecsum 1)", open)
	}

	if _, err := p.admin.RepositoryModelUnload(c, &pb.RepositoryModelUnloadRequest{ModelName: "vecsum"}); err != nil {
		t.Fatal(err)
	}
	_, err = p.user.ModelInfer(c, vecsum(1))
	wantCode(t, "infer after unload", err, codes.NotFound)
	testenv.WaitFor(t, 5*time.Second, "vecsum's session freed", func() bool { return p.metric(t, "inference_sessions_open") == 1 })
	_, err = p.admin.RepositoryModelUnload(c, &pb.RepositoryModelUnloadRequest{ModelName: "vecsum"})
	wantCode(t, "second unload", err, codes.NotFound)
	_, err = p.admin.RepositoryModelLoad(c, &pb.RepositoryModelLoadRequest{ModelName: "ghost"})
	wantCode(t, "load of a missing model", err, codes.NotFound)
}

// A new version published while clients send requests: no request fails, and the old version's
// session is freed.
func TestHotReloadUnderLoad(t *testing.T) {
	agent := testenv.StartConsul(t)
	repo := testutil.CopyRepo(t, "iris")
	p := startInference(t, agent, repo, nil, "--poll-interval=100ms")
	c := ctx(t)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var ok, failed atomic.Int64
	versions := sync.Map{}
	var firstErr atomic.Value
	for range 8 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				r, err := p.user.ModelInfer(c, irisRaw(testutil.IrisRows[0]))
				if err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					continue
				}
				ok.Add(1)
				versions.Store(r.GetModelVersion(), true)
			}
		})
	}
	time.Sleep(300 * time.Millisecond)
	testutil.CopyVersion(t, repo, "iris", "1", "2")
	testenv.WaitFor(t, 15*time.Second, "version 2 to replace 1", func() bool {
		mm, err := p.user.ModelMetadata(c, &pb.ModelMetadataRequest{Name: "iris"})
		return err == nil && slices.Equal(mm.GetVersions(), []string{"2"})
	})
	time.Sleep(300 * time.Millisecond)
	close(stop)
	wg.Wait()
	_, saw1 := versions.Load("1")
	_, saw2 := versions.Load("2")
	if failed.Load() != 0 || !saw1 || !saw2 {
		t.Fatalf("%d of %d requests failed (first: %v); served v1=%v v2=%v", failed.Load(), ok.Load()+failed.Load(), firstErr.Load(), saw1, saw2)
	}
	testenv.WaitFor(t, 5*time.Second, "version 1's session freed", func() bool { return p.metric(t, "inference_sessions_open") == 1 })
	t.Logf("%d requests across the reload, none failed", ok.Load())
}

// Two replicas share responses through a real Redis: the second answers from the cache without
// running the model.
func TestRedisSharedResponseCache(t *testing.T) {
	agent := testenv.StartConsul(t)
	url := testenv.StartRedis(t)
	env := []string{"BOURSE_INFERENCE_REDIS_URL=" + url}
	a := startInference(t, agent, testutil.CopyRepo(t, "vecsum"), env)
	b := startInference(t, agent, testutil.CopyRepo(t, "vecsum"), env)
	c := ctx(t)
	ra, err := a.user.ModelInfer(c, vecsum(4))
	if err != nil {
		t.Fatal(err)
	}
	rb, err := b.user.ModelInfer(c, vecsum(4))
	if err != nil {
		t.Fatal(err)
	}
	if ra.GetOutputs()[0].GetContents().GetFp32Contents()[0] != 40 || rb.GetOutputs()[0].GetContents().GetFp32Contents()[0] != 40 {
		t.Fatalf("answers %v and %v", ra, rb)
	}
	if hits, execs := b.metric(t, `inference_cache_hits_total{model="vecsum",version="1"}`), b.metric(t, `inference_exec_count_total{model="vecsum",version="1"}`); hits != 1 || execs != 0 {
		t.Fatalf("replica b: %v cache hits, %v executions; want 1 and 0", hits, execs)
	}
	// A different input is a miss everywhere and runs the model.
	if _, err := b.user.ModelInfer(c, vecsum(5)); err != nil {
		t.Fatal(err)
	}
	if execs := b.metric(t, `inference_exec_count_total{model="vecsum",version="1"}`); execs != 1 {
		t.Fatalf("replica b executions %v after a new input", execs)
	}
}
