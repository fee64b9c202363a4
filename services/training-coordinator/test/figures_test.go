package training_test

import (
	"fmt"
	"slices"

	trainingv1 "github.com/bourse-dev/bourse/pkg/gen/bourse/training/v1"
)

// stepFigures summarises a job's step events: the rate between the first and the last step event
// (so start-up and the rendezvous are left out), and rank 0's allreduce per step.
type stepFigures struct {
	Steps            int
	StepsPerSecond   float64
	AllreduceMean    float64 // seconds
	AllreduceMedian  float64 // seconds
	BytesPerStep     float64 // rank 0's mean bytes sent per allreduce
	OptimumPerStep   float64 // 2(N−1)/N × |θ| × 4 bytes
	AllreduceSeconds []float64
}

func figures(evs []*trainingv1.StreamJobProgressResponse) stepFigures {
	var f stepFigures
	var first, last *trainingv1.StreamJobProgressResponse
	var bytes, optimum float64
	for _, e := range evs {
		s := e.GetStep()
		if s == nil {
			continue
		}
		if first == nil {
			first = e
		}
		last = e
		f.Steps++
		f.AllreduceSeconds = append(f.AllreduceSeconds, s.GetAllreduceSeconds())
		f.AllreduceMean += s.GetAllreduceSeconds()
		bytes += float64(s.GetAllreduceBytes())
		optimum += float64(s.GetAllreduceOptimumBytes())
	}
	if f.Steps == 0 {
		return f
	}
	f.AllreduceMean /= float64(f.Steps)
	f.BytesPerStep, f.OptimumPerStep = bytes/float64(f.Steps), optimum/float64(f.Steps)
	sorted := slices.Sorted(slices.Values(f.AllreduceSeconds))
	f.AllreduceMedian = sorted[len(sorted)/2]
	if dt := last.GetTime().AsTime().Sub(first.GetTime().AsTime()).Seconds(); dt > 0 {
		f.StepsPerSecond = float64(last.GetStep().GetStep()-first.GetStep().GetStep()) / dt
	}
	return f
}

// ratio is bytes sent against the ring optimum (1 is optimal; the goal is ≤ 1.1).
func (f stepFigures) ratio() float64 {
	if f.OptimumPerStep == 0 {
		return 0
	}
	return f.BytesPerStep / f.OptimumPerStep
}

func (f stepFigures) String() string {
	return fmt.Sprintf("%d steps, %.1f steps/s, allreduce mean %.2fms median %.2fms, %.0f bytes/step (%.3f× the ring optimum %.0f)",
		f.Steps, f.StepsPerSecond, 1000*f.AllreduceMean, 1000*f.AllreduceMedian, f.BytesPerStep, f.ratio(), f.OptimumPerStep)
}
