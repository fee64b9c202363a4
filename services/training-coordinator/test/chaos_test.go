package training_test

import (
	"math/rand/v2"
	"os"
	"strconv"
	"testing"
	"time"

	trainingv1 "github.com/bourse-dev/bourse/pkg/gen/bourse/training/v1"
	"github.com/bourse-dev/bourse/pkg/testenv"
)

// Workers are SIGKILLed at random points of a job, one after another, and a fresh one started after
// each kill. Every kill ends in a new generation, the job never hangs, and it finishes every step
// at its accuracy target. BOURSE_TRAINING_CHAOS_ROUNDS sets the number of kills (default 3).
func TestElasticChaosKillsAndJoins(t *testing.T) {
	rounds := 3
	if v := os.Getenv("BOURSE_TRAINING_CHAOS_ROUNDS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("BOURSE_TRAINING_CHAOS_ROUNDS=%q: want a positive number", v)
		}
		rounds = n
	}
	c := newCluster(t)
	spec := mnistSpec(uint64(300+100*rounds), 1, 3)
	spec.TargetAccuracy = 0.85
	spec.EvalInterval = spec.Steps
	c.start("chaos", spec)
	for range 3 {
		c.startWorker()
	}
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	alive := map[string]*testenv.Process{}
	for i, w := range c.workers {
		alive[memberName(i)] = w
	}
	j := c.waitJob("chaos", time.Minute, "3 members", running(3, 1))
	for round := range rounds {
		// Somewhere in the next 20 steps, and then at a random moment within a step.
		target := j.GetStep() + uint64(5+rng.IntN(15))
		j = c.waitJob("chaos", time.Minute, "progress", func(j *trainingv1.Job) bool { return j.GetStep() >= target || ended(j) })
		if ended(j) {
			t.Fatalf("job ended after %d of %d kills: %v %s", round, rounds, j.GetStatus(), j.GetReason())
		}
		time.Sleep(time.Duration(rng.IntN(5)) * time.Millisecond)
		victim := j.GetMembers()[rng.IntN(len(j.GetMembers()))].GetWorkerId()
		gen := j.GetGeneration()
		kill(alive[victim])
		delete(alive, victim)
		t.Logf("round %d: killed %s at step %d of generation %d", round+1, victim, j.GetStep(), gen)
		w := c.startWorker()
		alive[memberName(len(c.workers)-1)] = w
		j = c.waitJob("chaos", time.Minute, "a generation without "+victim, func(j *trainingv1.Job) bool {
			if ended(j) {
				return true
			}
			if j.GetGeneration() <= gen || j.GetStatus() != trainingv1.JobStatus_JOB_STATUS_RUNNING {
				return false
			}
			for _, m := range j.GetMembers() {
				if m.GetWorkerId() == victim {
					return false
				}
			}
			return true
		})
	}
	j = c.waitJob("chaos", 3*time.Minute, "the end", ended)
	if j.GetStatus() != trainingv1.JobStatus_JOB_STATUS_SUCCEEDED || j.GetStep() != spec.GetSteps() {
		t.Fatalf("job ended %v at step %d: %s", j.GetStatus(), j.GetStep(), j.GetReason())
	}
	t.Logf("finished at generation %d with %d members, accuracy %.4f", j.GetGeneration(), len(j.GetMembers()), j.GetLastAccuracy())
}

// memberName is the worker id startWorker gives its i-th worker.
func memberName(i int) string { return "w" + strconv.Itoa(i+1) }
