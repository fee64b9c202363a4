package main

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/bourse-dev/bourse/services/payment/internal/acquirer"
)

// statsCollector exports the acquirer's own counters (GetStats) on /metrics, read at each scrape, so
// the domain keeps no metric state of its own.
type statsCollector struct {
	acq                                             *acquirer.Acquirer
	operations, replays, conflicts, faults, lookups *prometheus.Desc
}

func newStatsCollector(acq *acquirer.Acquirer) *statsCollector {
	return &statsCollector{
		acq: acq,
		operations: prometheus.NewDesc("acquirer_operations_total",
			"Operations decided by this process, by kind and outcome.", []string{"kind", "outcome"}, nil),
		replays: prometheus.NewDesc("acquirer_replays_total",
			"Calls answered with the first outcome of their key.", []string{"kind"}, nil),
		conflicts: prometheus.NewDesc("acquirer_key_conflicts_total",
			"Calls refused because their key was used with other parameters.", []string{"kind"}, nil),
		faults: prometheus.NewDesc("acquirer_injected_faults_total",
			"Injected faults: fail_before (refused before acting) and answer_lost (after acting).", []string{"kind", "fault"}, nil),
		lookups: prometheus.NewDesc("acquirer_lookups_total", "Lookup calls.", nil, nil),
	}
}

func (c *statsCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.operations, c.replays, c.conflicts, c.faults, c.lookups} {
		ch <- d
	}
}

func (c *statsCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.acq.Stats()
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	for _, k := range acquirer.Kinds {
		v, kind := s.Kinds[k], string(k)
		counter(c.operations, v.Approved, kind, "approved")
		counter(c.operations, v.Declined, kind, "declined")
		counter(c.replays, v.Replayed, kind)
		counter(c.conflicts, v.KeyConflicts, kind)
		counter(c.faults, v.FailedBefore, kind, "fail_before")
		counter(c.faults, v.AnswersLost, kind, "answer_lost")
	}
	counter(c.lookups, s.Lookups)
}
