package grpcapi

import (
	"context"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

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

// serveExplicit is serve with explicit model control and nothing loaded: the test loads and
// unloads through the returned manager.
func serveExplicit(t *testing.T) (*repository.Manager, string) {
	t.Helper()
	root := testutil.CopyRepo(t, "iris")
	testutil.AddRestricted(t, root, "iris", "fraud", "service:payment", "admin")
	m, err := repository.New(repository.Options{Root: root, Mode: repository.ModeExplicit,
		Backends: []backend.Backend{testutil.ORT(t)}, Metrics: metrics.New(prometheus.NewRegistry())})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	return m, root
}

// loadsOnCall loads a model at the moment the server hands a model call to the repository: after
// every check the server made on its own, before the repository looks the model up.
type loadsOnCall struct {
	*repository.Manager
	t     *testing.T
	model string
}

func (l loadsOnCall) load() {
	if err := l.Manager.Load(context.Background(), l.model); err != nil {
		l.t.Errorf("load %s: %v", l.model, err)
	}
}

func (l loadsOnCall) Infer(ctx context.Context, req repository.Request) (repository.Response, error) {
	l.load()
	return l.Manager.Infer(ctx, req)
}

func (l loadsOnCall) Metadata(c repository.Caller, name, ver string) (repository.Metadata, error) {
	l.load()
	return l.Manager.Metadata(c, name, ver)
}

func (l loadsOnCall) ModelReady(c repository.Caller, name, ver string) (bool, error) {
	l.load()
	return l.Manager.ModelReady(c, name, ver)
}

// A restricted model that is not loaded when a call arrives and gets loaded before the repository
// finds it for the call must still refuse a caller its rule does not admit, on every model RPC
// (the stream's requests take the ModelInfer path): the rule is checked by the lookup the call
// uses, not by an earlier look at a model that was not there.
func TestRuleHoldsForAModelLoadedDuringTheCall(t *testing.T) {
	m, _ := serveExplicit(t)
	s := &Server{repo: loadsOnCall{Manager: m, t: t, model: "fraud"}}
	admin := repository.Caller{Role: "admin", Subject: "ops"}
	alice := as(auth.Account("alice"))
	calls := map[string]func() (answered bool, err error){
		"ModelInfer": func() (bool, error) {
			r, err := s.ModelInfer(alice, fraudRequest())
			return len(r.GetOutputs()) > 0, err
		},
		"ModelStreamInfer": func() (bool, error) {
			r := s.streamOne(alice, fraudRequest())
			if msg := r.GetErrorMessage(); msg != "" {
				return false, errs.New(errs.KindPermissionDenied, "%s", msg)
			}
			return true, nil
		},
		"ModelMetadata": func() (bool, error) {
			md, err := s.ModelMetadata(alice, &pb.ModelMetadataRequest{Name: "fraud"})
			return len(md.GetInputs()) > 0, err
		},
		"ModelReady": func() (bool, error) {
			r, err := s.ModelReady(alice, &pb.ModelReadyRequest{Name: "fraud"})
			return r.GetReady(), err
		},
	}
	for name, call := range calls {
		_ = m.Unload(context.Background(), "fraud")
		if ready, err := m.ModelReady(admin, "fraud", ""); ready || err != nil {
			t.Fatalf("%s: fraud ready before the call: %v, %v", name, ready, err)
		}
		answered, err := call()
		if answered || errs.KindOf(err) != errs.KindPermissionDenied || !strings.Contains(err.Error(), "may not use") {
			t.Errorf("%s(fraud) as account:alice while fraud loads: answered %v, %v; want PermissionDenied and no answer", name, answered, err)
		}
		if ready, err := m.ModelReady(admin, "fraud", ""); !ready || err != nil {
			t.Fatalf("%s: fraud not loaded by the call: %v, %v", name, ready, err)
		}
	}
	// The same path answers a caller the rule admits.
	_ = m.Unload(context.Background(), "fraud")
	if r, err := s.ModelInfer(as(auth.Service("payment")), fraudRequest()); err != nil || len(r.GetOutputs()) != 1 {
		t.Fatalf("ModelInfer(fraud) as service:payment while fraud loads = %v, %v", r, err)
	}
}

// While the fraud model is loaded and unloaded over and over, an account never gets an answer from
// it on any model RPC: inference and metadata are refused or not found, and readiness is refused
// whether the model is loaded at that moment or not.
func TestRuleHoldsWhileTheModelLoadsAndUnloads(t *testing.T) {
	m, _ := serveExplicit(t)
	s := New(m)
	alice := as(auth.Account("alice"))
	stop := make(chan struct{})
	loaderDone := make(chan int)
	go func() {
		cycles := 0
		defer func() { loaderDone <- cycles }()
		for {
			select {
			case <-stop:
				return
			default:
			}
			if err := m.Load(context.Background(), "fraud"); err != nil {
				t.Errorf("load: %v", err)
				return
			}
			if err := m.Unload(context.Background(), "fraud"); err != nil {
				t.Errorf("unload: %v", err)
				return
			}
			cycles++
		}
	}()
	notFoundOrRefused := func(err error) bool {
		k := errs.KindOf(err)
		return k == errs.KindNotFound || k == errs.KindPermissionDenied
	}
	var wg sync.WaitGroup
	var refusedLoaded atomic.Int64
	deadline := time.Now().Add(2 * time.Second)
	for range 2 {
		wg.Go(func() {
			for time.Now().Before(deadline) {
				r, err := s.ModelInfer(alice, fraudRequest())
				if err == nil || len(r.GetOutputs()) > 0 || !notFoundOrRefused(err) {
					t.Errorf("ModelInfer(fraud) as account:alice = %v, %v", r, err)
					return
				}
				if errs.KindOf(err) == errs.KindPermissionDenied {
					refusedLoaded.Add(1)
				}
				if st := s.streamOne(alice, fraudRequest()); len(st.GetInferResponse().GetOutputs()) > 0 || st.GetErrorMessage() == "" {
					t.Errorf("ModelStreamInfer(fraud) as account:alice = %v", st)
					return
				}
				md, err := s.ModelMetadata(alice, &pb.ModelMetadataRequest{Name: "fraud"})
				if err == nil || len(md.GetInputs()) > 0 || !notFoundOrRefused(err) {
					t.Errorf("ModelMetadata(fraud) as account:alice = %v, %v", md, err)
					return
				}
				rd, err := s.ModelReady(alice, &pb.ModelReadyRequest{Name: "fraud"})
				if rd.GetReady() || errs.KindOf(err) != errs.KindPermissionDenied {
					t.Errorf("ModelReady(fraud) as account:alice = %v, %v; want PermissionDenied", rd, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(stop)
	cycles := <-loaderDone
	if cycles == 0 {
		t.Fatal("the model never completed a load and unload")
	}
	t.Logf("%d load/unload cycles; %d inference calls met the model loaded and were refused", cycles, refusedLoaded.Load())
}

// ModelReady tells a caller that a model's rule refuses nothing about whether it is loaded: it is
// refused the same way before and after the load (the rule comes from the config on disk while the
// model is not loaded). Callers the rule admits keep the protocol's answers: not ready for a known
// model that is not loaded, NotFound for an unknown name. A model whose config cannot be read, so
// whose rule is unknown, answers like an unknown name. Metadata of a model that is not loaded is
// NotFound with the same text as for an unknown name.
func TestModelReadyRevealsNothingToARefusedCaller(t *testing.T) {
	m, root := serveExplicit(t)
	testutil.WriteFile(t, filepath.Join(root, "broken", "config.json"), []byte("{"))
	s := New(m)
	alice := as(auth.Account("alice"))
	admin := as(auth.Admin("ops"))
	sameAs := func(what string, err error, name, want string) {
		t.Helper()
		if err == nil || strings.ReplaceAll(err.Error(), name, "NAME") != strings.ReplaceAll(want, "ghost", "NAME") {
			t.Errorf("%s = %v, want the answer for an unknown name (%s)", what, err, want)
		}
	}
	_, ghost := s.ModelReady(alice, &pb.ModelReadyRequest{Name: "ghost"})
	if errs.KindOf(ghost) != errs.KindNotFound {
		t.Fatalf("ModelReady(ghost) = %v, want NotFound", ghost)
	}
	_, ghostMd := s.ModelMetadata(alice, &pb.ModelMetadataRequest{Name: "ghost"})
	if errs.KindOf(ghostMd) != errs.KindNotFound {
		t.Fatalf("ModelMetadata(ghost) = %v, want NotFound", ghostMd)
	}
	var refusals []string
	for _, loaded := range []bool{false, true} {
		if loaded {
			if err := m.Load(context.Background(), "fraud"); err != nil {
				t.Fatal(err)
			}
		}
		for _, ver := range []string{"", "1", "9"} {
			r, err := s.ModelReady(alice, &pb.ModelReadyRequest{Name: "fraud", Version: ver})
			if r.GetReady() || errs.KindOf(err) != errs.KindPermissionDenied {
				t.Errorf("loaded %v: ModelReady(fraud, %q) as account:alice = %v, %v; want PermissionDenied", loaded, ver, r, err)
				continue
			}
			refusals = append(refusals, err.Error())
		}
		r, err := s.ModelReady(admin, &pb.ModelReadyRequest{Name: "fraud"})
		if err != nil || r.GetReady() != loaded {
			t.Errorf("loaded %v: ModelReady(fraud) as admin = %v, %v", loaded, r, err)
		}
	}
	for _, r := range refusals[1:] {
		if r != refusals[0] {
			t.Errorf("refusals differ: %q and %q", refusals[0], r)
		}
	}
	if err := m.Unload(context.Background(), "fraud"); err != nil {
		t.Fatal(err)
	}
	_, err := s.ModelMetadata(alice, &pb.ModelMetadataRequest{Name: "fraud"})
	sameAs("ModelMetadata(fraud), not loaded, as account:alice", err, "fraud", ghostMd.Error())
	for _, ctx := range []context.Context{alice, admin} {
		_, err := s.ModelReady(ctx, &pb.ModelReadyRequest{Name: "broken"})
		sameAs("ModelReady(broken)", err, "broken", ghost.Error())
	}
	// A model without a rule, not loaded: not ready, for anyone.
	if r, err := s.ModelReady(alice, &pb.ModelReadyRequest{Name: "iris"}); err != nil || r.GetReady() {
		t.Errorf("ModelReady(iris), not loaded, as account:alice = %v, %v; want not ready", r, err)
	}
}
