package repository

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/bourse-dev/bourse/pkg/errs"
	"github.com/bourse-dev/bourse/services/inference/internal/backend"
	"github.com/bourse-dev/bourse/services/inference/internal/cache"
	"github.com/bourse-dev/bourse/services/inference/internal/metrics"
	"github.com/bourse-dev/bourse/services/inference/internal/tensor"
	"github.com/bourse-dev/bourse/services/inference/internal/testutil"
)

type harness struct {
	m    *Manager
	reg  *prometheus.Registry
	root string
}

func start(t *testing.T, mode Mode, models ...string) *harness {
	t.Helper()
	root := testutil.CopyRepo(t, models...)
	reg := prometheus.NewRegistry()
	m, err := New(Options{Root: root, Mode: mode, PollInterval: 20 * time.Millisecond,
		Backends: []backend.Backend{testutil.ORT(t)}, Cache: cache.NewLRU(1 << 20), Metrics: metrics.New(reg)})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	return &harness{m: m, reg: reg, root: root}
}

// metric reads one series (counter or gauge) from the registry; 0 when it does not exist yet.
func (h *harness) metric(t *testing.T, name string, labels ...string) float64 {
	t.Helper()
	fams, err := h.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			if hasLabels(m, labels) {
				if c := m.GetCounter(); c != nil {
					return c.GetValue()
				}
				return m.GetGauge().GetValue()
			}
		}
	}
	return 0
}

func hasLabels(m *dto.Metric, kv []string) bool {
	for i := 0; i+1 < len(kv); i += 2 {
		found := false
		for _, l := range m.GetLabel() {
			if l.GetName() == kv[i] && l.GetValue() == kv[i+1] {
				found = true
			}
		}
		if !found {
			return false
		}
	}
	return true
}

func irisRequest(version string, rows ...[4]float32) Request {
	return Request{Model: "iris", Version: version, Inputs: []tensor.Tensor{{
		Name: "X", Datatype: tensor.FP32, Shape: []int64{int64(len(rows)), 4}, Data: testutil.IrisBytes(rows...)}}}
}

func TestInferIrisThroughTheRepository(t *testing.T) {
	h := start(t, ModePoll, "iris")
	resp, err := h.m.Infer(context.Background(), irisRequest("", testutil.IrisRows...))
	if err != nil {
		t.Fatal(err)
	}
	if resp.Model != "iris" || resp.Version != "1" || resp.Cached {
		t.Fatalf("response %+v", resp)
	}
	if got := testutil.Int64s(resp.Outputs[0].Data); !slices.Equal(got, testutil.IrisLabels) {
		t.Fatalf("labels %v, want %v", got, testutil.IrisLabels)
	}
	if got := h.metric(t, "inference_request_success_total", "model", "iris", "version", "1"); got != 1 {
		t.Fatalf("success counter %v", got)
	}
}

func TestBadRequestsNameTheProblem(t *testing.T) {
	h := start(t, ModePoll, "iris")
	ctx := context.Background()
	row := testutil.IrisRows[0]
	tooMany := make([][4]float32, 65)
	cases := []struct {
		name  string
		req   Request
		kind  errs.Kind
		field string
	}{
		{"unknown model", Request{Model: "nope", Inputs: irisRequest("", row).Inputs}, errs.KindNotFound, ""},
		{"unknown version", irisRequest("7", row), errs.KindNotFound, ""},
		{"bad version", irisRequest("x", row), errs.KindInvalidArgument, "model_version"},
		{"wrong datatype", Request{Model: "iris", Inputs: []tensor.Tensor{{Name: "X", Datatype: tensor.FP64, Shape: []int64{1, 4}, Data: make([]byte, 32)}}}, errs.KindInvalidArgument, `inputs["X"].datatype`},
		{"wrong shape", Request{Model: "iris", Inputs: []tensor.Tensor{{Name: "X", Datatype: tensor.FP32, Shape: []int64{1, 5}, Data: make([]byte, 20)}}}, errs.KindInvalidArgument, `inputs["X"].shape`},
		{"no batch dim", Request{Model: "iris", Inputs: []tensor.Tensor{{Name: "X", Datatype: tensor.FP32, Shape: []int64{4}, Data: make([]byte, 16)}}}, errs.KindInvalidArgument, `inputs["X"].shape`},
		{"oversize batch", irisRequest("", tooMany...), errs.KindInvalidArgument, `inputs["X"].shape`},
		{"short bytes", Request{Model: "iris", Inputs: []tensor.Tensor{{Name: "X", Datatype: tensor.FP32, Shape: []int64{1, 4}, Data: make([]byte, 12)}}}, errs.KindInvalidArgument, `inputs["X"].contents`},
		{"unknown input", Request{Model: "iris", Inputs: []tensor.Tensor{{Name: "Y", Datatype: tensor.FP32, Shape: []int64{1, 4}, Data: make([]byte, 16)}}}, errs.KindInvalidArgument, `inputs["Y"]`},
		{"unknown output", Request{Model: "iris", Inputs: irisRequest("", row).Inputs, Outputs: []string{"proba"}}, errs.KindInvalidArgument, `outputs["proba"]`},
	}
	for _, tc := range cases {
		_, err := h.m.Infer(ctx, tc.req)
		if errs.KindOf(err) != tc.kind {
			t.Errorf("%s: %v, want kind %v", tc.name, err, tc.kind)
			continue
		}
		if tc.field != "" {
			if e, ok := err.(*errs.Error); !ok || e.Field != tc.field {
				t.Errorf("%s: %v does not name %s", tc.name, err, tc.field)
			}
		}
	}
	if got := h.metric(t, "inference_request_failure_total", "model", "iris", "version", "1"); got < 6 {
		t.Fatalf("failure counter %v", got)
	}
}

// An idle server runs a lone request at once, so a round whose requests happen to arrive one by one
// is not batched; rounds of concurrent requests, released together, are repeated until one shares an
// execution (a server that never batches fails every round).
func TestConcurrentRequestsAreBatched(t *testing.T) {
	h := start(t, ModePoll, "iris")
	const clients, rounds = 64, 5
	var inferences, execs float64
	for round := 1; round <= rounds; round++ {
		var wg sync.WaitGroup
		var failed atomic.Int64
		release := make(chan struct{})
		for i := range clients {
			wg.Go(func() {
				<-release
				row := testutil.IrisRows[i%len(testutil.IrisRows)]
				resp, err := h.m.Infer(context.Background(), irisRequest("", row))
				if err != nil || testutil.Int64s(resp.Outputs[0].Data)[0] != testutil.IrisLabels[i%len(testutil.IrisLabels)] {
					failed.Add(1)
				}
			})
		}
		close(release)
		wg.Wait()
		if failed.Load() != 0 {
			t.Fatalf("round %d: %d requests failed or got a wrong label", round, failed.Load())
		}
		inferences = h.metric(t, "inference_count_total", "model", "iris")
		execs = h.metric(t, "inference_exec_count_total", "model", "iris")
		if inferences != float64(round*clients) {
			t.Fatalf("round %d: %v inferences counted, want %d", round, inferences, round*clients)
		}
		if execs < inferences {
			t.Logf("%v inferences in %v executions after %d round(s)", inferences, execs, round)
			return
		}
	}
	t.Fatalf("inferences %v, executions %v after %d rounds: want fewer executions than inferences", inferences, execs, rounds)
}

func TestNewVersionLoadsWithoutFailingARequest(t *testing.T) {
	h := start(t, ModePoll, "iris")
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var ok, failed atomic.Int64
	var mu sync.Mutex
	seen := map[string]int{}
	var firstErr atomic.Value
	for range 8 {
		wg.Go(func() {
			for ctx.Err() == nil {
				resp, err := h.m.Infer(context.Background(), irisRequest("", testutil.IrisRows[0]))
				if err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					continue
				}
				ok.Add(1)
				mu.Lock()
				seen[resp.Version]++
				mu.Unlock()
			}
		})
	}
	time.Sleep(100 * time.Millisecond)
	testutil.CopyVersion(t, h.root, "iris", "1", "2")
	deadline := time.Now().Add(10 * time.Second)
	for {
		md, err := h.m.Metadata(Caller{}, "iris", "")
		if err == nil && slices.Equal(md.Versions, []string{"2"}) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("version 2 never replaced 1: %+v %v", md, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond)
	stop()
	wg.Wait()
	if failed.Load() != 0 {
		t.Fatalf("%d of %d requests failed during the reload, first: %v", failed.Load(), ok.Load()+failed.Load(), firstErr.Load())
	}
	if seen["1"] == 0 || seen["2"] == 0 {
		t.Fatalf("versions served %v: want both", seen)
	}
	// Version 1's session is freed once its last request is done.
	testutilWait(t, func() bool { return h.metric(t, "inference_sessions_open") == 1 })
}

func testutilWait(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached in 5s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestUnloadFreesTheSessionAfterTheLastRequest(t *testing.T) {
	h := start(t, ModeExplicit)
	if err := os.CopyFS(filepath.Join(h.root, "iris"), os.DirFS(filepath.Join(testutil.ModelsDir(t), "iris"))); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := h.m.Infer(ctx, irisRequest("", testutil.IrisRows[0])); errs.KindOf(err) != errs.KindNotFound {
		t.Fatalf("explicit mode served a model never loaded: %v", err)
	}
	if err := h.m.Load(ctx, "iris"); err != nil {
		t.Fatal(err)
	}
	if got := h.metric(t, "inference_sessions_open"); got != 1 {
		t.Fatalf("sessions open after load: %v", got)
	}
	inFlight, err := h.m.resolve(Caller{}, "iris", "") // a request that has not finished yet
	if err != nil {
		t.Fatal(err)
	}
	if err := h.m.Unload(ctx, "iris"); err != nil {
		t.Fatal(err)
	}
	if _, err := h.m.Infer(ctx, irisRequest("", testutil.IrisRows[0])); errs.KindOf(err) != errs.KindNotFound {
		t.Fatalf("unloaded model still served: %v", err)
	}
	select {
	case <-inFlight.freed:
		t.Fatal("session freed while a request still held it")
	default:
	}
	// The in-flight request can still run on it.
	if _, err := inFlight.run(ctx, irisRequest("", testutil.IrisRows[0]).Inputs, 1); err != nil {
		t.Fatalf("in-flight request failed after unload: %v", err)
	}
	inFlight.release()
	select {
	case <-inFlight.freed:
	case <-time.After(5 * time.Second):
		t.Fatal("session not freed after the last request")
	}
	if got := h.metric(t, "inference_sessions_open"); got != 0 {
		t.Fatalf("sessions open after unload: %v", got)
	}
	if err := h.m.Unload(ctx, "iris"); errs.KindOf(err) != errs.KindNotFound {
		t.Fatalf("second unload: %v", err)
	}
	if err := h.m.Load(ctx, "missing"); errs.KindOf(err) != errs.KindNotFound {
		t.Fatalf("load of a model not in the repository: %v", err)
	}
}

func TestCorruptVersionIsNotReadyAndTheRestServes(t *testing.T) {
	h := start(t, ModeExplicit, "iris", "vecsum")
	testutil.WriteFile(t, filepath.Join(h.root, "vecsum", "2", "model.onnx"), []byte("corrupt: not an ONNX model"))
	ctx := context.Background()
	if err := h.m.Load(ctx, "vecsum"); err != nil { // version 1 loads, so the model loads
		t.Fatal(err)
	}
	if err := h.m.Load(ctx, "iris"); err != nil {
		t.Fatal(err)
	}
	idx, err := h.m.Index(false)
	if err != nil {
		t.Fatal(err)
	}
	var v2 *IndexEntry
	for i, e := range idx {
		if e.Name == "vecsum" && e.Version == "2" {
			v2 = &idx[i]
		}
	}
	if v2 == nil || v2.State != StateUnavailable || v2.Reason == "" {
		t.Fatalf("index %+v: want vecsum 2 UNAVAILABLE with a reason", idx)
	}
	if ready, err := h.m.ModelReady(Caller{}, "vecsum", "2"); ready || err != nil {
		t.Fatalf("ModelReady(vecsum, 2) = %v, %v", ready, err)
	}
	if ready, err := h.m.ModelReady(Caller{}, "vecsum", "1"); !ready || err != nil {
		t.Fatalf("ModelReady(vecsum, 1) = %v, %v", ready, err)
	}
	if _, err := h.m.ModelReady(Caller{}, "ghost", ""); errs.KindOf(err) != errs.KindNotFound {
		t.Fatalf("ModelReady(ghost) = %v", err)
	}
	vec := func(version string) Request {
		return Request{Model: "vecsum", Version: version, Inputs: []tensor.Tensor{{Name: "input_vectors", Datatype: tensor.FP32,
			Shape: []int64{1, 10}, Data: testutil.FP32Bytes(1, 1, 1, 1, 1, 1, 1, 1, 1, 1)}}}
	}
	if _, err := h.m.Infer(ctx, vec("2")); errs.KindOf(err) != errs.KindUnavailable || !strings.Contains(err.Error(), "not ready") {
		t.Fatalf("infer on the corrupt version: %v", err)
	}
	resp, err := h.m.Infer(ctx, vec(""))
	if err != nil || resp.Version != "1" || testutil.Float32s(resp.Outputs[0].Data)[0] != 10 {
		t.Fatalf("newest ready version: %+v %v", resp, err)
	}
	if _, err := h.m.Infer(ctx, irisRequest("", testutil.IrisRows[0])); err != nil {
		t.Fatalf("another model stopped serving: %v", err)
	}
}

func TestResponseCacheHit(t *testing.T) {
	h := start(t, ModePoll, "vecsum") // vecsum has response_cache on
	ctx := context.Background()
	req := func(x float32) Request {
		return Request{Model: "vecsum", Inputs: []tensor.Tensor{{Name: "input_vectors", Datatype: tensor.FP32,
			Shape: []int64{1, 10}, Data: testutil.FP32Bytes(x, x, x, x, x, x, x, x, x, x)}}}
	}
	first, err := h.m.Infer(ctx, req(2))
	if err != nil || first.Cached {
		t.Fatalf("first: %+v %v", first, err)
	}
	second, err := h.m.Infer(ctx, req(2))
	if err != nil || !second.Cached || testutil.Float32s(second.Outputs[0].Data)[0] != 20 {
		t.Fatalf("second: %+v %v", second, err)
	}
	other, err := h.m.Infer(ctx, req(3))
	if err != nil || other.Cached || testutil.Float32s(other.Outputs[0].Data)[0] != 30 {
		t.Fatalf("different input: %+v %v", other, err)
	}
	if execs := h.metric(t, "inference_exec_count_total", "model", "vecsum"); execs != 2 {
		t.Fatalf("%v executions for 3 requests with one cache hit", execs)
	}
	if hits := h.metric(t, "inference_cache_hits_total", "model", "vecsum"); hits != 1 {
		t.Fatalf("cache hits %v", hits)
	}
}

func TestPollingUnloadsRemovedModels(t *testing.T) {
	h := start(t, ModePoll, "iris", "vecsum")
	if err := os.RemoveAll(filepath.Join(h.root, "vecsum")); err != nil {
		t.Fatal(err)
	}
	testutilWait(t, func() bool {
		_, err := h.m.Metadata(Caller{}, "vecsum", "")
		return errs.KindOf(err) == errs.KindNotFound
	})
	testutilWait(t, func() bool { return h.metric(t, "inference_sessions_open") == 1 })
	if err := h.m.Load(context.Background(), "iris"); err != nil {
		// Load in polling mode is refused by the API layer, not here: the manager still syncs.
		t.Fatal(err)
	}
}
