package store

import (
	"context"
	"database/sql"

	"github.com/bourse-dev/bourse/pkg/sqldb"
)

// Group commit for SQLite, where one connection writes at a time and every commit fsyncs: while one
// batch commits, the transactions submitted meanwhile queue up and run in the next batch, each in its
// own savepoint, so a transaction that fails is undone alone and the others commit together with one
// fsync. Each caller is answered only after its batch committed; one whose context ended before its
// turn is not run.
//
// The committer's writer goroutine is started by newBatcher and stopped by Close, after it has
// written what was queued.

// maxBatch bounds the transactions committed together (and the queue, at 8 batches).
const maxBatch = 128

func newBatcher(s *Store) *sqldb.GroupCommitter[func(*Tx) error] {
	// The items of a batch share its transaction and so its bound statements. cur belongs to the
	// committer's writer goroutine, the only one that runs items.
	var cur *sqldb.TxStmts
	return sqldb.NewSavepointCommitter(s.db, sqldb.Options{MaxBatch: maxBatch, QueueLen: 8 * maxBatch, TxTimeout: s.txTimeout},
		func(_ context.Context, tx *sql.Tx, fn func(*Tx) error) error {
			if cur == nil || cur.Tx() != tx {
				cur = s.stmts.In(tx)
			}
			return fn(&Tx{tx: tx, q: cur, s: s, now: s.txNow(), shared: true})
		})
}

// readStmts is what reads go through: on SQLite connections of their own beside the writer's, so
// reads in WAL mode do not wait behind the writer's batch.
func (s *Store) readStmts() *sqldb.Stmts {
	if s.rdb != nil {
		return s.rstmts
	}
	return s.stmts
}
