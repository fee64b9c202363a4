package store

import (
	"context"
	"fmt"
	"testing"

	"github.com/bourse-dev/bourse/pkg/testenv"
	"github.com/bourse-dev/bourse/services/payment/internal/domain"
)

// BenchmarkEventsPostgres compares, on one PostgreSQL server in one run, the event insert and the
// ListEvents page of the sequence-ordered log (before: "seq") with the commit-safe one (after:
// "xid": the insert takes the larger of its transaction id and the log's highest, the page reads
// below the snapshot's xmin in (xid, seq) order). Inserts run from parallel clients, each in its
// own transaction.
func BenchmarkEventsPostgres(b *testing.B) {
	s, err := Open(context.Background(), testenv.StartPostgres(b))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	inserts := map[string]string{
		"seq": `INSERT INTO events (id, type, account_id, object_id, data, created_at) VALUES (?,?,?,?,?,?)`,
		"xid": `INSERT INTO events (id, type, account_id, object_id, data, created_at, xid) VALUES (?,?,?,?,?,?,
			GREATEST(pg_current_xact_id(), (SELECT xid FROM events ORDER BY xid DESC LIMIT 1)))`,
	}
	for _, v := range []string{"seq", "xid"} {
		b.Run("insert/"+v, func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					err := s.InTx(ctx, func(tx *Tx) error {
						_, err := tx.exec(ctx, inserts[v], domain.NewID("evt"), "payment.succeeded", "alice", "pay_1", `{}`, nanos(tx.now))
						return err
					})
					if err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
	lists := map[string]string{
		"seq": `SELECT seq, id, type, account_id, object_id, data, created_at FROM events WHERE seq > ? AND account_id = ? ORDER BY seq LIMIT ?`,
		"xid": `SELECT seq, id, type, account_id, object_id, data, created_at FROM events
			WHERE xid < pg_snapshot_xmin(pg_current_snapshot()) AND (xid, seq) > ((SELECT xid FROM events WHERE seq = ?), ?)
			AND account_id = ? ORDER BY xid, seq LIMIT ?`,
	}
	var n int64
	if err := s.queryRow(ctx, `SELECT COUNT(*) FROM events`).Scan(&n); err != nil {
		b.Fatal(err)
	}
	for _, v := range []string{"seq", "xid"} {
		b.Run(fmt.Sprintf("list100/%s", v), func(b *testing.B) {
			b.ReportAllocs()
			for i := range b.N {
				after := 1 + int64(i)%max(1, n-100)
				args := []any{after, "alice", 100}
				if v == "xid" {
					args = []any{after, after, "alice", 100}
				}
				evs, err := s.scanEvents(ctx, lists[v], args...)
				if err != nil || len(evs) == 0 {
					b.Fatalf("%d events, %v", len(evs), err)
				}
			}
		})
	}
}
