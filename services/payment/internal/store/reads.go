package store

import (
	"context"
	"database/sql"
	"time"

	"github.com/bourse-dev/bourse/pkg/sqldb"
)

// Reads are bounded as write transactions are (Options.TxTimeout): a database that hangs rather
// than fails answers a read with an error wrapping sqldb.ErrTxTimeout within the bound, which the
// API answers Unavailable, instead of holding the request (and a pooled connection) for as long as
// its caller would wait, which with no deadline is for ever.

// unboundedReads marks a context whose reads take as long as they take: the full audit
// (CheckInvariants), which reads the whole ledger and grows with it. Open's own check is bounded
// (checkOnOpen) and runs within the bound.
type unboundedReads struct{}

func withoutReadBound(ctx context.Context) context.Context {
	return context.WithValue(ctx, unboundedReads{}, true)
}

// readBound is one read's bounded context.
type readBound struct {
	caller, ctx context.Context
	cancel      context.CancelFunc
}

func (s *Store) readBound(ctx context.Context) readBound {
	// A caller whose own deadline comes first (most requests carry one) needs no bound of its own:
	// none is made, no timer and no context per read.
	if d, ok := ctx.Deadline(); ok && time.Until(d) <= s.txTimeout || ctx.Value(unboundedReads{}) != nil {
		return readBound{caller: ctx, ctx: ctx, cancel: func() {}}
	}
	bctx, cancel := context.WithTimeout(ctx, s.txTimeout)
	return readBound{caller: ctx, ctx: bctx, cancel: cancel}
}

// timedOut marks err as the bound's, not the caller's deadline, when it is.
func (b readBound) timedOut(err error) error {
	if err != nil && b.caller.Err() == nil {
		return sqldb.TimedOut(b.ctx, err)
	}
	return err
}

// boundedRow is a *sql.Row whose bound ends with its Scan.
type boundedRow struct {
	row   *sql.Row
	bound readBound
}

func (r boundedRow) Scan(dest ...any) error {
	defer r.bound.cancel()
	return r.bound.timedOut(r.row.Scan(dest...))
}

// boundedRows is a *sql.Rows whose bound ends with its Close.
type boundedRows struct {
	*sql.Rows
	bound readBound
}

func (r *boundedRows) Close() error {
	err := r.Rows.Close()
	r.bound.cancel()
	return err
}

func (r *boundedRows) Err() error { return r.bound.timedOut(r.Rows.Err()) }

// Scan is marked as Err is: when the bound ends after Next gave a row, database/sql closes the rows
// and the Scan is the first to fail, with the bound's deadline.
func (r *boundedRows) Scan(dest ...any) error { return r.bound.timedOut(r.Rows.Scan(dest...)) }

func (s *Store) queryRow(ctx context.Context, q string, args ...any) boundedRow {
	b := s.readBound(ctx)
	return boundedRow{row: s.readStmts().QueryRow(b.ctx, q, args...), bound: b}
}

func (s *Store) query(ctx context.Context, q string, args ...any) (*boundedRows, error) {
	b := s.readBound(ctx)
	rows, err := s.readStmts().Query(b.ctx, q, args...)
	if err != nil {
		b.cancel()
		return nil, b.timedOut(err)
	}
	return &boundedRows{Rows: rows, bound: b}, nil
}

// exec runs one statement outside any transaction (an endpoint's deletion, an outbox item's next
// try), bounded as a read is, for the same reason.
func (s *Store) exec(ctx context.Context, q string, args ...any) (sql.Result, error) {
	b := s.readBound(ctx)
	defer b.cancel()
	res, err := s.db.ExecContext(b.ctx, s.db.Rebind(q), args...)
	return res, b.timedOut(err)
}
