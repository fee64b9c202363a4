package training_test

import (
	"fmt"
	"net"
	"testing"
	"time"

	trainingv1 "github.com/bourse-dev/bourse/pkg/gen/bourse/training/v1"
	"github.com/bourse-dev/bourse/pkg/testenv"
)

// hostDelay is the one-way latency added into every host in the delayed run.
const hostDelay = 5 * time.Millisecond

// Three workers, each in a network namespace of its own on a private bridge, train a job over
// the ring: each advertises its namespace's address (the root namespace's loopback is not
// reachable from there), the job succeeds, and the bytes per step stay at the ring optimum. Then
// the same with 5ms of latency into every host: netem on the bridge ports where the kernel has
// it, otherwise a relay inside each namespace that delays every byte. The allreduce time per step
// grows by at least the latency of the dependent rounds, and the job still succeeds.
func TestWorkersInSeparateNetworkNamespaces(t *testing.T) {
	const world = 3
	nw := testenv.NewNetwork(t, world)
	hc := newHostCluster(t, nw)
	spec := mnistSpec(60, world, world)
	spec.EvalInterval = 60

	runJob := func(id string, start func(h *testenv.Host, workerID string)) stepFigures {
		t.Helper()
		hc.start(id, spec)
		evs := hc.progress(id)
		want := map[string]string{}
		for i, h := range nw.Hosts {
			wid := fmt.Sprintf("%s-w%d", id, i+1)
			want[wid] = h.Addr
			start(h, wid)
		}
		j := hc.waitJob(id, 90*time.Second, "the end", ended)
		if j.GetStatus() != trainingv1.JobStatus_JOB_STATUS_SUCCEEDED {
			t.Fatalf("job %s ended %v: %s", id, j.GetStatus(), j.GetReason())
		}
		all := <-evs
		checkAddresses(t, all, want)
		checkRegistered(t, hc, want)
		f := figures(all)
		if f.Steps != int(spec.Steps) {
			t.Fatalf("job %s: %d step events, want %d", id, f.Steps, spec.Steps)
		}
		if r := f.ratio(); r < 0.99 || r > 1.1 {
			t.Fatalf("job %s: %.0f bytes per step is %.3f× the ring optimum %.0f, want within [0.99, 1.1]", id, f.BytesPerStep, r, f.OptimumPerStep)
		}
		hc.stopWorkers()
		return f
	}

	direct := runJob("direct", func(h *testenv.Host, id string) {
		hc.startWorkerOn(h, id, h.Addr, testenv.FreePort(t))
	})
	t.Logf("no added latency: %v", direct)

	var relays []*relay
	netem, why := nw.Netem(t, hostDelay)
	if netem {
		t.Logf("delay: netem %v on every bridge port", hostDelay)
	} else {
		t.Logf("delay: this kernel has no netem (%s); a relay in each namespace delays every byte by %v", why, hostDelay)
	}
	delayed := runJob("delayed", func(h *testenv.Host, id string) {
		port := testenv.FreePort(t)
		if netem {
			hc.startWorkerOn(h, id, h.Addr, port)
			return
		}
		addr := net.JoinHostPort(h.Addr, fmt.Sprint(port))
		relays = append(relays, startRelay(t, h, addr, net.JoinHostPort("127.0.0.1", fmt.Sprint(port)), hostDelay))
		hc.startWorkerOn(h, id, "127.0.0.1", port)
	})
	t.Logf("%v one-way latency into each host: %v", hostDelay, delayed)
	t.Logf("allreduce per step: %.2fms → %.2fms median (%+.2fms), %.2fms → %.2fms mean",
		1000*direct.AllreduceMedian, 1000*delayed.AllreduceMedian, 1000*(delayed.AllreduceMedian-direct.AllreduceMedian),
		1000*direct.AllreduceMean, 1000*delayed.AllreduceMean)

	// Every connection to a worker is a connection to its relay, so every byte of the ring went
	// through a delay: world workers each sent the steps' allreduce bytes.
	if !netem {
		var got int64
		for _, r := range relays {
			got += r.Bytes.Load()
		}
		if min := int64(float64(world) * delayed.BytesPerStep * float64(delayed.Steps)); got < min {
			t.Fatalf("the relays forwarded %d bytes, less than the ring's %d: the peers did not go through them", got, min)
		}
	}
	// Rank 0's last chunk of an allreduce depends on a chain of world−1 hops that starts with its
	// own first send, each waiting for the latency: a floor no scheduling can beat.
	if floor := float64(world-1) * hostDelay.Seconds(); delayed.AllreduceMedian < floor {
		t.Fatalf("median allreduce %.2fms with %v per hop, below the floor of %.2fms: the latency is not on the ring's path",
			1000*delayed.AllreduceMedian, hostDelay, 1000*floor)
	}
	// Over many steps the ring is a chain of 2(N−1) dependent hops per step (a rank's next step
	// starts after its last receive), so no step can take less than 2(N−1) latencies on average.
	if period, floor := 1/delayed.StepsPerSecond, 2*float64(world-1)*hostDelay.Seconds(); period < 0.9*floor {
		t.Fatalf("%.2fms per step with %v per hop, below the ring's floor of %.2fms: the latency is not on the ring's path",
			1000*period, hostDelay, 1000*floor)
	}
	if delayed.AllreduceMedian <= direct.AllreduceMedian {
		t.Fatalf("median allreduce %.2fms with %v latency is not above %.2fms without", 1000*delayed.AllreduceMedian, hostDelay, 1000*direct.AllreduceMedian)
	}
}
