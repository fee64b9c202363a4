package model

import (
	"math/rand/v2"
	"syscall"
	"testing"
	"time"
)

// cpuTime is the process's user+system CPU time: on a shared machine it moves far less with other
// load than wall time does, so it is reported next to ns/op.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkLossAndGrad times one training step's forward and backward pass of the MNIST MLP and of
// logistic regression on a batch of 128 MNIST-like rows (about 80% zero pixels, as in MNIST).
func BenchmarkLossAndGrad(b *testing.B) {
	for _, tc := range []struct {
		name string
		spec Spec
	}{
		{"mlp-784-256-128-10", Spec{Kind: KindMLP, Inputs: 784, Hidden: []int{256, 128}, Classes: 10}},
		{"logreg-784-10", Spec{Kind: KindLogReg, Inputs: 784, Classes: 10}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			const n = 128
			m := mustNew(b, tc.spec)
			params := make([]float32, m.NumParams())
			grad := make([]float32, m.NumParams())
			m.Init(params, 1)
			x, y := randBatch(rand.New(rand.NewPCG(1, 1)), n, tc.spec.Inputs, tc.spec.Classes, 0.8)
			for i := range x {
				if x[i] != 0 {
					x[i] = float32(i%255) / 255
				}
			}
			b.ReportAllocs()
			cpu0 := cpuTime()
			for b.Loop() {
				m.LossAndGrad(params, x, y, grad)
			}
			b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
			b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "samples/s")
		})
	}
}
