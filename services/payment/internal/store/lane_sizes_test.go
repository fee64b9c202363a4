package store

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bourse-dev/bourse/pkg/sqldb"
)

// The padded sizes: ascending, ending at maxSetRows, each n (1..maxSetRows) padded to the least size
// not below it, the padding at most a third of the statement's rows (up to half again n: 17 rows
// take 24), and a statement of n rows
// carries exactly padded(n) rows of placeholders.
func TestSetSizesPadEveryN(t *testing.T) {
	if !slices.IsSorted(setSizes) || setSizes[0] != 1 || setSizes[len(setSizes)-1] != maxSetRows || len(slices.Compact(slices.Clone(setSizes))) != len(setSizes) {
		t.Fatalf("setSizes %v", setSizes)
	}
	st := newSetStmt([]col{{"a", "TEXT"}, {"b", "BIGINT"}}, `SELECT a, b FROM v WHERE a IS NOT NULL`)
	if len(st.texts) != len(setSizes) {
		t.Fatalf("%d texts for %d sizes", len(st.texts), len(setSizes))
	}
	for n := 1; n <= maxSetRows; n++ {
		p := padded(n)
		i := slices.Index(setSizes, p)
		if i < 0 || p < n || i > 0 && setSizes[i-1] >= n {
			t.Fatalf("padded(%d) = %d, not the least of %v from %d", n, p, setSizes, n)
		}
		if 3*(p-n) > p || 2*p > 3*n+1 {
			t.Fatalf("padded(%d) = %d: padding past a third of the rows", n, p)
		}
		if got := strings.Count(st.text(n), "(CAST(? AS TEXT),CAST(? AS BIGINT))"); got != p {
			t.Fatalf("text(%d) has %d rows, want %d", n, got, p)
		}
	}
	// each: every n up to 300 in chunks of at most maxSetRows, each padded with NULL rows, the real
	// rows in order and every placeholder bound.
	for n := 1; n <= 300; n++ {
		a := st.args(n)
		for i := range n {
			a.add(fmt.Sprint("r", i), int64(i))
		}
		next, chunks := 0, 0
		if err := a.each(func(q string, args []any) error {
			chunks++
			ph := strings.Count(q, "?")
			if ph != len(args) {
				return fmt.Errorf("%d placeholders, %d args", ph, len(args))
			}
			rows := len(args) / 2
			if rows > maxSetRows {
				return fmt.Errorf("a statement of %d rows", rows)
			}
			real := 0
			for r := range rows {
				if args[2*r] == nil {
					if args[2*r+1] != nil {
						return fmt.Errorf("padding row %d half bound", r)
					}
					continue
				}
				if real != r {
					return fmt.Errorf("a real row after padding")
				}
				if args[2*r] != fmt.Sprint("r", next) || args[2*r+1] != int64(next) {
					return fmt.Errorf("row %d is %v %v, want r%d", r, args[2*r], args[2*r+1], next)
				}
				real++
				next++
			}
			if rows != padded(real) {
				return fmt.Errorf("%d real rows padded to %d, want %d", real, rows, padded(real))
			}
			return nil
		}); err != nil {
			t.Fatalf("%d rows: %v", n, err)
		}
		if next != n || chunks != (n+maxSetRows-1)/maxSetRows {
			t.Fatalf("%d rows: %d written in %d statements", n, next, chunks)
		}
	}
}

// Every n from 1 to 300 rows through a lane set statement writes exactly n rows, on SQLite and
// PostgreSQL, in one transaction: the padding rows are skipped and chunks past maxSetRows all run.
// On SQLite every shape the statement ran is then prepared, within the store's bound.
func TestLaneSetStatementWritesEveryN(t *testing.T) {
	onBoth(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		for n := 1; n <= 300; n++ {
			account := fmt.Sprint("everyn-", n)
			err := s.db.InTx(ctx, func(tx *sql.Tx) error {
				w := &laneWrite{ctx: ctx, s: s, q: s.stmts.In(tx), events: s.laneSQL.insEvents.args(n), eventsOf: map[string][]laneEvent{}}
				for i := range n {
					w.events.add(fmt.Sprintf("evt_%d_%d", n, i), "payment.created", account, fmt.Sprintf("pay_%d_%d", n, i), "{}", int64(1000+i))
				}
				return w.exec(w.events)
			})
			if err != nil {
				t.Fatalf("%d rows: %v", n, err)
			}
			if got := count(t, s, `SELECT COUNT(*) FROM events WHERE account_id = ?`, account); got != n {
				t.Fatalf("%d rows written as %d", n, got)
			}
			if got := count(t, s, `SELECT COUNT(DISTINCT created_at) FROM events WHERE account_id = ?`, account); got != n {
				t.Fatalf("%d rows: %d distinct, want all", n, got)
			}
		}
		if got := count(t, s, `SELECT COUNT(*) FROM events WHERE id IS NULL OR account_id IS NULL OR account_id = ''`); got != 0 {
			t.Fatalf("%d padding rows written", got)
		}
		if s.db.Dialect != sqldb.SQLite {
			return
		}
		deadline := time.Now().Add(5 * time.Second)
		for _, q := range s.laneSQL.insEvents.texts {
			for !s.stmts.Prepared(q) && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
			}
			if !s.stmts.Prepared(q) {
				t.Fatalf("a shape of the events statement (%d placeholders) was never prepared; %d prepared of %d", strings.Count(q, "?"), s.stmts.Len(), maxStmts)
			}
		}
		if s.stmts.Len() >= maxStmts {
			t.Fatalf("%d statements prepared, at the bound %d", s.stmts.Len(), maxStmts)
		}
	})
}

// Claims and captures in batches at and just past every padded size (and past two statements'
// worth) write every row.
func TestLaneBatchAtEveryPaddedSize(t *testing.T) {
	var ns []int
	for _, n := range setSizes {
		ns = append(ns, n, n+1)
	}
	ns = append(ns, 255, 256, 257)
	slices.Sort(ns)
	ns = slices.Compact(ns)
	onBoth(t, func(t *testing.T, s *Store) {
		for _, n := range ns {
			account := fmt.Sprint("padsize", n)
			batchOfDeposits(t, s, account, n, func(i int) bool { return i%3 != 0 })
			captured := 0
			for i := range n {
				if i%3 != 0 {
					captured++
				}
			}
			for q, want := range map[string]int{
				`SELECT COUNT(*) FROM payments WHERE account_id = ?`:                                                    n,
				`SELECT COUNT(*) FROM payments WHERE account_id = ? AND status = 'succeeded'`:                           captured,
				`SELECT COUNT(*) FROM attempts a JOIN payments p ON p.id = a.payment_id WHERE p.account_id = ?`:         n,
				`SELECT COUNT(*) FROM idempotency WHERE caller = 'account:' || ? AND state = 'done' AND response <> ''`: n,
				`SELECT COUNT(*) FROM events WHERE account_id = ?`:                                                      2 * n,
				`SELECT COUNT(*) FROM ledger_transactions l JOIN payments p ON p.id = l.ref WHERE p.account_id = ?`:     captured,
				`SELECT COUNT(*) FROM outbox o JOIN payments p ON p.id = o.ref WHERE p.account_id = ?`:                  captured,
				`SELECT COUNT(*) FROM ledger_entries e JOIN ledger_transactions l ON l.id = e.tx_id JOIN payments p ON p.id = l.ref
					WHERE p.account_id = ?`: 2 * captured,
			} {
				if got := count(t, s, q, account); got != want {
					t.Fatalf("batches of %d: %s: %d, want %d", n, q, got, want)
				}
			}
		}
	})
}
