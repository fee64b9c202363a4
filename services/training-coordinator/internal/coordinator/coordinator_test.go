package coordinator

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bourse-dev/bourse/pkg/errs"
	"github.com/bourse-dev/bourse/services/training-coordinator/internal/checkpoint"
	"github.com/bourse-dev/bourse/services/training-coordinator/internal/dataset"

	"github.com/bourse-dev/bourse/pkg/testenv"
)

// fakeInfo answers what dataset.Load would for MNIST (784 features, 10 classes) without reading the
// files; the coordinator uses nothing else of the dataset.
func fakeInfo(name string, limit int, _ int64) (int, int, int, error) {
	if name != dataset.MNIST {
		return 0, 0, 0, errs.Invalid("dataset", "unknown %q", name)
	}
	n := 60000
	if limit > 0 {
		n = min(n, limit)
	}
	return n, 784, 10, nil
}

func newTestCoordinator(t *testing.T, dir string, clk *testenv.Clock) *Coordinator {
	t.Helper()
	st, err := OpenStore(context.Background(), filepath.Join(dir, "jobs.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	c, err := New(context.Background(), Config{Store: st, Checkpoints: checkpoint.Store{Dir: filepath.Join(dir, "ck")}, DataInfo: fakeInfo, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func spec(minW, maxW int) Spec {
	return Spec{Dataset: dataset.MNIST, ModelKind: "mlp", Hidden: []int{8}, TrainLimit: 1000, LearningRate: 0.1,
		BatchSize: 10, Steps: 50, Seed: 1, MinWorkers: minW, MaxWorkers: maxW, WaitTimeout: 5 * time.Second,
		Heartbeat: 2 * time.Second, Collective: time.Second}
}

// join runs Join in the background (it blocks until a generation forms).
func join(c *Coordinator, id, stateJob string, stateStep int64) <-chan Assignment {
	out := make(chan Assignment, 1)
	go func() {
		a, ok, err := c.Join(context.Background(), JoinRequest{WorkerID: id, Address: id + ":1", StateJob: stateJob, StateStep: stateStep, Wait: 5 * time.Second})
		if err != nil || !ok {
			close(out)
			return
		}
		out <- a
	}()
	return out
}

func recv(t *testing.T, ch <-chan Assignment) Assignment {
	t.Helper()
	select {
	case a, ok := <-ch:
		if !ok {
			t.Fatal("join returned without an assignment")
		}
		return a
	case <-time.After(10 * time.Second):
		t.Fatal("join still waiting")
	}
	return Assignment{}
}

func TestRendezvousRanksTheMostAdvancedStateFirst(t *testing.T) {
	clk := testenv.NewClock(time.Unix(1000, 0))
	c := newTestCoordinator(t, t.TempDir(), clk)
	if _, _, err := c.StartJob("j", spec(2, 3)); err != nil {
		t.Fatal(err)
	}
	a1 := join(c, "a", "", 0)
	time.Sleep(50 * time.Millisecond)
	if j, _ := c.GetJob("j"); j.Generation != 0 {
		t.Fatalf("a generation formed with one worker below min 2: %+v", j)
	}
	a2 := join(c, "b", "j", 0)
	x, y := recv(t, a1), recv(t, a2)
	if x.Generation != 1 || y.Generation != 1 || x.World != 2 || x.Rank == y.Rank {
		t.Fatalf("assignments %+v %+v", x, y)
	}
	if x.Source != SourceInit || x.StartStep != 0 {
		t.Fatalf("fresh job starts from %v at %d", x.Source, x.StartStep)
	}
	// b breaks the generation (its collective failed) holding step 7; a still has 5.
	b := join(c, "b", "j", 7)
	time.Sleep(50 * time.Millisecond)
	a := join(c, "a", "j", 5)
	ga, gb := recv(t, a), recv(t, b)
	if gb.Rank != 0 || ga.Rank != 1 || gb.Source != SourceOwn || gb.StartStep != 7 || gb.Generation != 2 {
		t.Fatalf("second generation: b %+v, a %+v", gb, ga)
	}
}

// Every member gets rank 0's decision for a step: the others wait for it, and a worker waiting to
// join makes it Rejoin for all.
func TestCommitDecisionIsTheSameForEveryMember(t *testing.T) {
	clk := testenv.NewClock(time.Unix(1000, 0))
	c := newTestCoordinator(t, t.TempDir(), clk)
	if _, _, err := c.StartJob("j", spec(2, 3)); err != nil {
		t.Fatal(err)
	}
	x, y := join(c, "a", "", 0), join(c, "b", "", 0)
	ax, ay := recv(t, x), recv(t, y)
	r0, r1 := ax, ay
	if ay.Rank == 0 {
		r0, r1 = ay, ax
	}
	commit := func(a Assignment, step int64) <-chan Action {
		out := make(chan Action, 1)
		go func() {
			act, err := c.CommitStep(context.Background(), CommitRequest{JobID: "j", WorkerID: a.Members[a.Rank].WorkerID,
				Generation: a.Generation, Rank: a.Rank, Step: step, Loss: 1})
			if err != nil {
				t.Error(err)
			}
			out <- act
		}()
		return out
	}
	waiting := commit(r1, 1)
	time.Sleep(50 * time.Millisecond)
	select {
	case act := <-waiting:
		t.Fatalf("rank 1 answered %v before rank 0 committed", act)
	default:
	}
	if act := <-commit(r0, 1); act != Continue {
		t.Fatalf("rank 0: %v", act)
	}
	if act := <-waiting; act != Continue {
		t.Fatalf("rank 1: %v", act)
	}
	newcomer := join(c, "c", "", 0)
	time.Sleep(50 * time.Millisecond)
	if act := <-commit(r0, 2); act != Rejoin {
		t.Fatalf("rank 0 with a joiner waiting: %v", act)
	}
	if act := <-commit(r1, 2); act != Rejoin {
		t.Fatalf("rank 1 with a joiner waiting: %v", act)
	}
	a, b := join(c, "a", "j", 2), join(c, "b", "j", 2)
	for _, ch := range []<-chan Assignment{newcomer, a, b} {
		if g := recv(t, ch); g.World != 3 || g.StartStep != 2 {
			t.Fatalf("after the rejoin: %+v", g)
		}
	}
}

// A member that stops heartbeating breaks the generation; below min the job waits, then fails
// with a reason after wait_timeout.
func TestSilentWorkerThenBelowMinFails(t *testing.T) {
	clk := testenv.NewClock(time.Unix(1000, 0))
	c := newTestCoordinator(t, t.TempDir(), clk)
	if _, _, err := c.StartJob("j", spec(2, 2)); err != nil {
		t.Fatal(err)
	}
	ja, jb := join(c, "a", "", 0), join(c, "b", "", 0)
	recv(t, ja)
	recv(t, jb)
	tick := func() {
		c.mu.Lock()
		c.expire(clk.Now())
		c.formAll(clk.Now())
		c.mu.Unlock()
	}
	clk.Advance(time.Second)
	if _, err := c.Heartbeat("a", "j", 1); err != nil {
		t.Fatal(err)
	}
	clk.Advance(1500 * time.Millisecond) // b silent for 2.5s > 2s
	tick()
	if rejoin, _ := c.Heartbeat("a", "j", 1); !rejoin {
		t.Fatal("a was not told to rejoin after b went silent")
	}
	go func() {
		_, _, _ = c.Join(context.Background(), JoinRequest{WorkerID: "a", Address: "a:1", Wait: time.Second})
	}()
	time.Sleep(50 * time.Millisecond)
	tick()
	if j, _ := c.GetJob("j"); j.Status != StatusWaiting {
		t.Fatalf("status %v, want waiting", j.Status)
	}
	for range 5 {
		clk.Advance(time.Second)
		_, _ = c.Heartbeat("a", "j", 0)
		tick()
	}
	clk.Advance(1100 * time.Millisecond)
	_, _ = c.Heartbeat("a", "j", 0)
	tick()
	j, _ := c.GetJob("j")
	if j.Status != StatusFailed || !strings.Contains(j.Reason, "below min_workers 2") {
		t.Fatalf("job %v: %q", j.Status, j.Reason)
	}
}

// A step that fails in generation after generation ends the job instead of looping forever.
func TestRepeatedFailureOfAStepFailsTheJob(t *testing.T) {
	clk := testenv.NewClock(time.Unix(1000, 0))
	c := newTestCoordinator(t, t.TempDir(), clk)
	if _, _, err := c.StartJob("j", spec(1, 1)); err != nil {
		t.Fatal(err)
	}
	for range MaxGenerationFailures {
		recv(t, join(c, "a", "j", 0))
	}
	// The last join broke the fifth generation: no sixth forms.
	_, ok, err := c.Join(context.Background(), JoinRequest{WorkerID: "a", Address: "a:1", Wait: 200 * time.Millisecond})
	j, _ := c.GetJob("j")
	if ok || j.Status != StatusFailed || !strings.Contains(j.Reason, "in a row") {
		t.Fatalf("ok=%v err=%v job %v %q", ok, err, j.Status, j.Reason)
	}
}

// Jobs survive a restart: the same record comes back and generations continue above the last one.
func TestJobsSurviveARestart(t *testing.T) {
	dir := t.TempDir()
	clk := testenv.NewClock(time.Unix(1000, 0))
	c := newTestCoordinator(t, dir, clk)
	if _, _, err := c.StartJob("j", spec(1, 1)); err != nil {
		t.Fatal(err)
	}
	recv(t, join(c, "a", "", 0))
	c2 := newTestCoordinator(t, dir, clk)
	j, err := c2.GetJob("j")
	if err != nil || j.Generation != 1 || j.Status != StatusRunning || j.Spec.Steps != 50 {
		t.Fatalf("after restart: %+v %v", j, err)
	}
	if a := recv(t, join(c2, "a", "j", 3)); a.Generation != 2 || a.StartStep != 3 {
		t.Fatalf("first generation after the restart: %+v", a)
	}
}

func TestValidateNamesTheField(t *testing.T) {
	for field, mutate := range map[string]func(*Spec){
		"spec.dataset":         func(s *Spec) { s.Dataset = "x" },
		"spec.model.kind":      func(s *Spec) { s.ModelKind = "tree" },
		"spec.min_workers":     func(s *Spec) { s.MinWorkers, s.MaxWorkers = 3, 2 },
		"spec.max_workers":     func(s *Spec) { s.MaxWorkers = 0 },
		"spec.learning_rate":   func(s *Spec) { s.LearningRate = 0 },
		"spec.batch_size":      func(s *Spec) { s.BatchSize = -1 },
		"spec.optimizer":       func(s *Spec) { s.Optimizer = "rmsprop" },
		"spec.model.hidden":    func(s *Spec) { s.Hidden = nil },
		"spec.wait_timeout_ms": func(s *Spec) { s.WaitTimeout = time.Hour },
	} {
		s := spec(1, 2).withDefaults()
		mutate(&s)
		_, err := s.Validate(fakeInfo)
		if e, ok := err.(*errs.Error); !ok || e.Kind != errs.KindInvalidArgument || e.Field != field {
			t.Errorf("%s: %v", field, err)
		}
	}
}
