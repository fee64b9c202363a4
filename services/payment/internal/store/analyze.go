package store

import (
	"context"
	"log/slog"
	"sync/atomic"
)

// PostgreSQL plans a prepared statement once per connection and keeps the plan until the tables'
// statistics change. A lane statement joins a batch to a big table by its key; planned while that
// table was small (a new database, or one growing faster than autovacuum analyzes it), the cached
// plan may walk the whole table, or all of one of its indexes, for every batch: a batch of 128 took a
// second at 60,000 payments. So the lanes have the tables analyzed each time the deposits they
// wrote double (from 256 on), which makes every connection plan again on statistics at most half
// as old as the tables: a few dozen ANALYZEs over a billion deposits, and autovacuum's own from the
// start.
//
// Ownership: startAnalyzer (PostgreSQL only) starts the goroutine and stopAnalyzer stops it; it
// blocks only on the database.

const firstAnalyzeAt = 256

type analyzer struct {
	next   atomic.Int64 // the lane claims at which the next ANALYZE is due
	wake   chan struct{}
	cancel context.CancelFunc
	done   chan struct{}
}

// laneTables are the tables the lanes write and join.
const laneTables = `payments, attempts, idempotency, events, outbox, ledger_transactions, ledger_entries, webhook_endpoints`

func (s *Store) startAnalyzer() {
	ctx, cancel := context.WithCancel(context.Background())
	a := &analyzer{wake: make(chan struct{}, 1), cancel: cancel, done: make(chan struct{})}
	a.next.Store(firstAnalyzeAt)
	s.analyzer = a
	go func() {
		defer close(a.done)
		for {
			select {
			case <-a.wake:
			case <-ctx.Done():
				return
			}
			if _, err := s.db.ExecContext(ctx, `ANALYZE `+laneTables); err != nil && ctx.Err() == nil {
				// Autovacuum analyzes them anyway, later: slower plans meanwhile, nothing lost.
				slog.Warn("payment store: analyzing the tables the deposit lanes write", "err", err)
			}
		}
	}()
}

// claimed counts a lane claim, and asks for an ANALYZE when the claims have doubled.
func (a *analyzer) claimed(n int64) {
	if a == nil {
		return
	}
	next := a.next.Load()
	if n < next || !a.next.CompareAndSwap(next, 2*next) {
		return
	}
	select {
	case a.wake <- struct{}{}:
	default: // one is running or asked for already
	}
}

func (s *Store) stopAnalyzer() {
	if a := s.analyzer; a != nil {
		a.cancel()
		<-a.done
	}
}
