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
	return sqldb.NewSavepointCommitter(s.db, sqldb.Options{MaxBatch: maxBatch, QueueLen: 8 * maxBatch},
		func(_ context.Context, tx *sql.Tx, fn func(*Tx) error) error {
			return fn(&Tx{tx: tx, s: s, now: s.now()})
		})
}

// readDB is the handle reads go through: on SQLite a second connection, so reads in WAL mode do not
// wait behind the writer's batch.
func (s *Store) readDB() *sql.DB {
	if s.rdb != nil {
		return s.rdb.DB
	}
	return s.db.DB
}
