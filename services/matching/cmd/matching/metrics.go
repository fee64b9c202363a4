package main

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/bourse-dev/bourse/services/matching/internal/exchange"
)

// settlementCollector exports each shard's settlement with risk. matching_settlement_halted is the
// alert: 1 while risk refuses a shard's settlement and its symbols refuse new orders.
type settlementCollector struct {
	x                        *exchange.Exchange
	halted, lag, queued, syn *prometheus.Desc
}

func registerSettlementMetrics(reg prometheus.Registerer, x *exchange.Exchange) {
	if reg == nil {
		return
	}
	labels := []string{"shard"}
	reg.MustRegister(&settlementCollector{x: x,
		halted: prometheus.NewDesc("matching_settlement_halted", "1 while risk refuses the shard's settlement: its symbols refuse new orders (see GetSettlementStatus).", labels, nil),
		lag:    prometheus.NewDesc("matching_settlement_lag_records", "Journal records of the shard not yet settled with risk.", labels, nil),
		queued: prometheus.NewDesc("matching_settlement_queued_items", "Trades and releases waiting to be sent to risk.", labels, nil),
		syn:    prometheus.NewDesc("matching_settlement_syncing", "1 while the shard re-syncs its reservations with risk.", labels, nil),
	})
}

func (c *settlementCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.halted
	ch <- c.lag
	ch <- c.queued
	ch <- c.syn
}

func (c *settlementCollector) Collect(ch chan<- prometheus.Metric) {
	b := func(v bool) float64 {
		if v {
			return 1
		}
		return 0
	}
	for _, s := range c.x.SettlementStatus() {
		shard := strconv.Itoa(s.Shard)
		ch <- prometheus.MustNewConstMetric(c.halted, prometheus.GaugeValue, b(s.Halted), shard)
		ch <- prometheus.MustNewConstMetric(c.lag, prometheus.GaugeValue, float64(s.JournalSeq-min(s.SettledSeq, s.JournalSeq)), shard)
		ch <- prometheus.MustNewConstMetric(c.queued, prometheus.GaugeValue, float64(s.Queued), shard)
		ch <- prometheus.MustNewConstMetric(c.syn, prometheus.GaugeValue, b(s.Syncing), shard)
	}
}
