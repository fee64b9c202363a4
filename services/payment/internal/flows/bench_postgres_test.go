package flows

import (
	"context"
	"database/sql"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bourse-dev/bourse/pkg/testenv"
	"github.com/bourse-dev/bourse/services/payment/internal/processor/instant"
	"github.com/bourse-dev/bourse/services/payment/internal/store"
)

// CreatePayment in process on PostgreSQL (instant processor). Besides the rate it reports the
// server's WAL flushes and transactions per payment (pg_stat_wal, pg_stat_database; transactions
// count read-only ones too, each autocommit read among them): a deposit commits two write
// transactions, so 2 / wal-syncs is how many commits PostgreSQL's own grouping of concurrent commits
// put in one flush.
func BenchmarkCreatePaymentInProcessPostgres(b *testing.B) {
	url := testenv.StartPostgres(b)
	st, err := store.Open(context.Background(), url)
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	stats, err := sql.Open("pgx", url)
	if err != nil {
		b.Fatal(err)
	}
	defer stats.Close()
	counters := func() (syncs, xacts float64) {
		// Statistics reach the views when a backend reports them; force this session's view fresh.
		if _, err := stats.Exec(`SELECT pg_stat_clear_snapshot()`); err != nil {
			b.Fatal(err)
		}
		if err := stats.QueryRow(`SELECT wal_sync FROM pg_stat_wal`).Scan(&syncs); err != nil {
			b.Fatal(err)
		}
		if err := stats.QueryRow(`SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()`).Scan(&xacts); err != nil {
			b.Fatal(err)
		}
		return syncs, xacts
	}
	e := &env{st: st, risk: newFakeRisk(), now: time.Now()}
	e.svc = New(Config{Store: st, Router: Static{instant.New("instant")}, Risk: e.risk, ProcessorTimeout: time.Second,
		SettleAfter: 5 * time.Second})
	s0, c0 := counters()
	var n atomic.Int64
	b.SetParallelism(16)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, _, err := e.svc.CreatePayment(context.Background(), "account:alice", fmt.Sprint("k", n.Add(1)), deposit(100, "tok")); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "payments/s")
	time.Sleep(time.Second) // backends report their statistics at most once a second when idle
	s1, c1 := counters()
	b.ReportMetric((s1-s0)/float64(b.N), "wal-syncs/op")
	b.ReportMetric((c1-c0)/float64(b.N), "xacts/op")
}
