package training_test

import (
	"strconv"
	"strings"
	"testing"
	"time"

	trainingv1 "github.com/bourse-dev/bourse/pkg/gen/bourse/training/v1"
	"github.com/bourse-dev/bourse/pkg/testenv"
)

func memberIDs(j *trainingv1.Job) []string {
	var ids []string
	for _, m := range j.GetMembers() {
		ids = append(ids, m.GetWorkerId())
	}
	return ids
}

func running(world int, minStep uint64) func(*trainingv1.Job) bool {
	return func(j *trainingv1.Job) bool {
		return j.GetStatus() == trainingv1.JobStatus_JOB_STATUS_RUNNING && len(j.GetMembers()) == world && j.GetStep() >= minStep
	}
}

func workerByID(c *cluster, id string) *testenv.Process {
	n, _ := strconv.Atoi(id[1:])
	return c.workers[n-1]
}

// Three workers; one is SIGKILLed mid-job. The collective fails on the survivors, a generation of
// two forms, the step is redone, and the job still reaches its accuracy target.
func TestElasticKillOneWorkerFinishesWithTwo(t *testing.T) {
	c := newCluster(t)
	spec := mnistSpec(400, 2, 3)
	spec.TargetAccuracy = 0.85
	spec.EvalInterval = 400
	for range 3 {
		c.startWorker()
	}
	// Each worker registers itself in Consul at the address it advertises, having asked the
	// coordinator for a job: the first generation has all three.
	testenv.WaitFor(t, 30*time.Second, "3 workers passing in Consul", func() bool { return len(c.agent.Passing(t, "training-worker")) == 3 })
	c.start("kill-one", spec)
	evs := c.progress("kill-one")
	j := c.waitJob("kill-one", time.Minute, "3 members past step 30", running(3, 30))
	// Kill rank 0: the new generation must take the most advanced state from a survivor.
	victim := j.GetMembers()[0].GetWorkerId()
	gen := j.GetGeneration()
	kill(workerByID(c, victim))
	t.Logf("killed %s (rank 0) at step %d of generation %d", victim, j.GetStep(), gen)

	j = c.waitJob("kill-one", 2*time.Minute, "the end", ended)
	if j.GetStatus() != trainingv1.JobStatus_JOB_STATUS_SUCCEEDED {
		t.Fatalf("job ended %v: %s", j.GetStatus(), j.GetReason())
	}
	if j.GetLastAccuracy() < spec.TargetAccuracy || j.GetStep() != 400 {
		t.Fatalf("accuracy %.4f at step %d, want ≥ %.2f at 400", j.GetLastAccuracy(), j.GetStep(), spec.TargetAccuracy)
	}
	var last *trainingv1.MembershipEvent
	for _, e := range <-evs {
		if m := e.GetMembership(); m != nil {
			last = m
		}
	}
	if last == nil || len(last.GetMembers()) != 2 || last.GetGeneration() <= gen {
		t.Fatalf("last generation %v: want two members after generation %d", last, gen)
	}
	for _, m := range last.GetMembers() {
		if m.GetWorkerId() == victim {
			t.Fatalf("the killed worker %s is in the last generation", victim)
		}
	}
	t.Logf("finished with %v at generation %d, accuracy %.4f", last.GetMembers(), last.GetGeneration(), j.GetLastAccuracy())
}

// A worker started mid-job joins between steps: it receives rank 0's parameters and optimizer
// state, the generation grows to three, and the job carries on from where it was.
func TestElasticAddWorkerMidJob(t *testing.T) {
	c := newCluster(t)
	spec := mnistSpec(1000, 1, 3)
	c.start("grow", spec)
	evs := c.progress("grow")
	c.startWorker()
	c.startWorker()
	before := c.waitJob("grow", time.Minute, "2 members past step 30", running(2, 30))
	joiner := c.startWorker()
	after := c.waitJob("grow", time.Minute, "3 members", func(j *trainingv1.Job) bool { return len(j.GetMembers()) == 3 || ended(j) })
	if len(after.GetMembers()) != 3 {
		t.Fatalf("job ended before the third worker joined: %v", after)
	}
	j := c.waitJob("grow", 2*time.Minute, "the end", ended)
	if j.GetStatus() != trainingv1.JobStatus_JOB_STATUS_SUCCEEDED {
		t.Fatalf("job ended %v: %s", j.GetStatus(), j.GetReason())
	}
	var grown *trainingv1.MembershipEvent
	for _, e := range <-evs {
		if m := e.GetMembership(); m != nil && len(m.GetMembers()) == 3 {
			grown = m
			break
		}
	}
	if grown == nil {
		t.Fatal("no generation of three in the progress stream")
	}
	if grown.GetStep() < before.GetStep() {
		t.Fatalf("the generation of three started at step %d, before the %d already done: the job went back", grown.GetStep(), before.GetStep())
	}
	if !joiner.LogContains("generation started") || !strings.Contains(joiner.Log(), "world=3") {
		t.Fatalf("the joiner never trained in the generation of three:\n%s", joiner.Log())
	}
	t.Logf("grew to 3 at step %d (generation %d); finished at step %d, accuracy %.4f", grown.GetStep(), grown.GetGeneration(), j.GetStep(), j.GetLastAccuracy())
}

// Two workers with min_workers 2; one is killed. The job waits (status WAITING), then fails after
// wait_timeout with a status that says why; the survivor does not hang in a collective.
func TestElasticBelowMinWaitsThenFails(t *testing.T) {
	c := newCluster(t)
	spec := mnistSpec(100_000, 2, 2)
	spec.WaitTimeoutMs = 3000
	c.start("below-min", spec)
	c.startWorker()
	c.startWorker()
	j := c.waitJob("below-min", time.Minute, "2 members past step 10", running(2, 10))
	victim := j.GetMembers()[1].GetWorkerId()
	kill(workerByID(c, victim))
	killed := time.Now()
	c.waitJob("below-min", 30*time.Second, "waiting", func(j *trainingv1.Job) bool {
		return j.GetStatus() == trainingv1.JobStatus_JOB_STATUS_WAITING || ended(j)
	})
	j = c.waitJob("below-min", 30*time.Second, "the end", ended)
	elapsed := time.Since(killed)
	if j.GetStatus() != trainingv1.JobStatus_JOB_STATUS_FAILED || !strings.Contains(j.GetReason(), "below min_workers 2") {
		t.Fatalf("job ended %v (%q), want failed below min_workers", j.GetStatus(), j.GetReason())
	}
	if elapsed < 3*time.Second {
		t.Fatalf("failed %v after the kill, before the 3s wait_timeout", elapsed)
	}
	t.Logf("failed %v after the kill: %s", elapsed.Round(time.Millisecond), j.GetReason())
	survivor := workerByID(c, map[string]string{"w1": "w2", "w2": "w1"}[victim])
	if survivor.WaitExit(0) {
		t.Fatalf("the surviving worker exited:\n%s", survivor.Log())
	}
}

// The coordinator is killed mid-job and restarted on the same data directory: the job is still
// there, the workers rejoin, and training continues from their state to the end.
func TestCoordinatorRestartMidJob(t *testing.T) {
	c := newCluster(t)
	spec := mnistSpec(500, 2, 2)
	c.start("restart", spec)
	c.startWorker()
	c.startWorker()
	before := c.waitJob("restart", time.Minute, "2 members past step 40", running(2, 40))
	kill(c.coord)
	time.Sleep(500 * time.Millisecond)
	c.startCoordinator()
	j := c.waitJob("restart", 30*time.Second, "the job after the restart", func(*trainingv1.Job) bool { return true })
	if j.GetSpec().GetSteps() != 500 || j.GetStep() == 0 {
		t.Fatalf("after the restart the job is %v", j)
	}
	evs := c.progress("restart")
	j = c.waitJob("restart", 2*time.Minute, "the end", ended)
	if j.GetStatus() != trainingv1.JobStatus_JOB_STATUS_SUCCEEDED || j.GetStep() != 500 {
		t.Fatalf("job ended %v at step %d: %s", j.GetStatus(), j.GetStep(), j.GetReason())
	}
	if j.GetGeneration() <= before.GetGeneration() {
		t.Fatalf("generation %d after the restart, want above %d", j.GetGeneration(), before.GetGeneration())
	}
	var resumed *trainingv1.MembershipEvent
	for _, e := range <-evs {
		if m := e.GetMembership(); m != nil && resumed == nil {
			resumed = m
		}
	}
	// The workers kept their state through the coordinator's restart: nothing is redone.
	if resumed == nil || resumed.GetStep() < before.GetStep() {
		t.Fatalf("first generation after the restart: %v, want it to start at or after step %d", resumed, before.GetStep())
	}
	t.Logf("killed at step %d (generation %d); generation %d resumed at step %d; finished in generation %d",
		before.GetStep(), before.GetGeneration(), resumed.GetGeneration(), resumed.GetStep(), j.GetGeneration())
}
