package sqldb

import (
	"context"
	"database/sql"
	"errors"
	"sync"
	"sync/atomic"
)

// Stmts prepares the statements a DB runs, once, so they are not parsed again on every execution
// (the pure-Go SQLite spends about a third of a write transaction parsing). It learns them as they
// run: the first executions of a query run unprepared and ask for it to be prepared; a goroutine
// prepares it outside any transaction, and later executions use the prepared statement.
//
// Preparing happens on the side because preparing on a DB needs a free connection, and SQLite's
// writer has exactly one, which the transaction asking holds: preparing there would wait for
// itself. Inside a transaction Tx.StmtContext reuses the statement prepared on the transaction's
// connection; on a pool it prepares the statement once more on each other connection, the first
// time it runs there. (pgx already caches prepared statements per connection on its own, so on
// PostgreSQL this adds nothing but is safe.)
//
// The set is bounded by the limit given to NewStmts (0: nothing is prepared); queries beyond it
// always run unprepared.
//
// Ownership: NewStmts starts the preparing goroutine and Close stops it; it blocks only on the
// database, until Close cancels it. Stmts is safe for concurrent use.
type Stmts struct {
	db *DB
	m  atomic.Pointer[map[string]*sql.Stmt] // keyed by the query as given, before Rebind; copied on write

	mu    sync.Mutex
	asked map[string]struct{} // queries queued, prepared or failed: never asked twice
	max   int

	want   chan string
	ctx    context.Context // the preparer's; Close cancels it
	cancel context.CancelFunc
	done   chan struct{}
}

// NewStmts starts preparing, on db, up to max statements.
func NewStmts(db *DB, max int) *Stmts {
	ctx, cancel := context.WithCancel(context.Background())
	s := &Stmts{db: db, asked: map[string]struct{}{}, max: max, want: make(chan string, 64),
		ctx: ctx, cancel: cancel, done: make(chan struct{})}
	s.m.Store(&map[string]*sql.Stmt{})
	go s.prepare()
	return s
}

// Prepared reports whether query has been prepared.
func (s *Stmts) Prepared(query string) bool {
	return (*s.m.Load())[query] != nil
}

// Len is the number of prepared statements.
func (s *Stmts) Len() int {
	return len(*s.m.Load())
}

// lookup is query's prepared statement, or nil after asking for it to be prepared.
func (s *Stmts) lookup(query string) *sql.Stmt {
	if st := (*s.m.Load())[query]; st != nil {
		return st
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.asked[query]; ok || len(s.asked) >= s.max {
		return nil
	}
	select {
	case s.want <- query:
		s.asked[query] = struct{}{}
	default: // the preparer is behind: ask again next time
	}
	return nil
}

func (s *Stmts) prepare() {
	defer close(s.done)
	for {
		var q string
		select {
		case q = <-s.want:
		case <-s.ctx.Done():
			return
		}
		st, err := s.db.PrepareContext(s.ctx, s.db.Rebind(q))
		if err != nil {
			continue // stays asked: runs unprepared, as it did
		}
		s.mu.Lock()
		old := *s.m.Load()
		m := make(map[string]*sql.Stmt, len(old)+1)
		for k, v := range old {
			m[k] = v
		}
		m[q] = st
		s.m.Store(&m)
		s.mu.Unlock()
	}
}

// Exec runs query on the DB.
func (s *Stmts) Exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if st := s.lookup(query); st != nil {
		return st.ExecContext(ctx, args...)
	}
	return s.db.ExecContext(ctx, s.db.Rebind(query), args...)
}

// QueryRow runs query on the DB for at most one row.
func (s *Stmts) QueryRow(ctx context.Context, query string, args ...any) *sql.Row {
	if st := s.lookup(query); st != nil {
		return st.QueryRowContext(ctx, args...)
	}
	return s.db.QueryRowContext(ctx, s.db.Rebind(query), args...)
}

// Query runs query on the DB.
func (s *Stmts) Query(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if st := s.lookup(query); st != nil {
		return st.QueryContext(ctx, args...)
	}
	return s.db.QueryContext(ctx, s.db.Rebind(query), args...)
}

// Close stops preparing and releases the prepared statements. Nothing may use s from then on.
func (s *Stmts) Close() error {
	s.cancel()
	<-s.done
	var err error
	for _, st := range *s.m.Load() {
		err = errors.Join(err, st.Close())
	}
	s.m.Store(&map[string]*sql.Stmt{})
	return err
}

// In binds s to tx, a transaction on the DB. The result is for one goroutine at
// a time (a transaction's statements run one after the other) and lives as long as tx.
func (s *Stmts) In(tx *sql.Tx) *TxStmts { return &TxStmts{s: s, tx: tx} }

// TxStmts is a Stmts bound to one transaction. It binds each statement to the transaction once:
// Tx.StmtContext costs a lock and allocations, and a group commit's transaction runs the same few
// statements for every item of its batch.
type TxStmts struct {
	s  *Stmts
	tx *sql.Tx
	m  map[string]*sql.Stmt
}

// Tx is the transaction.
func (t *TxStmts) Tx() *sql.Tx { return t.tx }

// Exec runs query in the transaction.
func (t *TxStmts) Exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if st := t.stmt(ctx, query); st != nil {
		return st.ExecContext(ctx, args...)
	}
	return t.tx.ExecContext(ctx, t.s.db.Rebind(query), args...)
}

// QueryRow runs query in the transaction for at most one row.
func (t *TxStmts) QueryRow(ctx context.Context, query string, args ...any) *sql.Row {
	if st := t.stmt(ctx, query); st != nil {
		return st.QueryRowContext(ctx, args...)
	}
	return t.tx.QueryRowContext(ctx, t.s.db.Rebind(query), args...)
}

// Query runs query in the transaction.
func (t *TxStmts) Query(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if st := t.stmt(ctx, query); st != nil {
		return st.QueryContext(ctx, args...)
	}
	return t.tx.QueryContext(ctx, t.s.db.Rebind(query), args...)
}

// stmt is query's prepared statement bound to the transaction, or nil if it is not prepared yet.
func (t *TxStmts) stmt(ctx context.Context, query string) *sql.Stmt {
	if st := t.m[query]; st != nil {
		return st
	}
	parent := t.s.lookup(query)
	if parent == nil {
		return nil
	}
	if t.m == nil {
		t.m = make(map[string]*sql.Stmt, 16)
	}
	// Closed with the transaction; the statement prepared on the connection stays.
	st := t.tx.StmtContext(ctx, parent)
	t.m[query] = st
	return st
}
