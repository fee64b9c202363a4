package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/bourse-dev/bourse/pkg/errs"
	"github.com/bourse-dev/bourse/pkg/sqldb"
	"github.com/bourse-dev/bourse/services/payment/internal/ledger"
)

// Store is the payment database. It is safe for concurrent use; on PostgreSQL several processes may
// share one database.
type Store struct {
	db  *sqldb.DB
	rdb *sqldb.DB // SQLite: a read connection beside the writer's; nil on PostgreSQL
	now func() time.Time
	// batch is group commit (SQLite only: PostgreSQL commits concurrently on its pool, and a batch
	// there could deadlock against another replica's).
	batch *sqldb.GroupCommitter[func(*Tx) error]
	// stmts and rstmts prepare the statements run on db and rdb (see stmts.go).
	stmts, rstmts *sqldb.Stmts
	// lanes write the common path of deposits for many requests at once (lane.go).
	lanes     []*sqldb.GroupCommitter[laneItem]
	laneNext  atomic.Uint64
	laneSQL   *laneStmts
	laneStats laneCounter
	analyzer  *analyzer // PostgreSQL: keeps the lanes' plans in step with the tables (analyze.go)
	txTimeout time.Duration
}

// readConns is the number of SQLite read connections.
const readConns = 4

// Options tune a Store.
type Options struct {
	// NoGroupCommit commits every transaction on its own, without the deposit lanes (for comparison
	// in benchmarks and for tests of the general path).
	NoGroupCommit bool
	// TxTimeout bounds every write transaction, its commit included (default DefaultTxTimeout). A
	// database that hangs rather than fails then costs its callers an error they may retry with
	// the same idempotency key (Unavailable), instead of holding them, the lanes' writers and
	// everyone queued behind those until it answers.
	TxTimeout time.Duration
}

// DefaultTxTimeout is Options.TxTimeout's default: far beyond any batch's time (milliseconds).
const DefaultTxTimeout = 30 * time.Second

// Open connects to url (postgres://... or a SQLite file path), applies the schema and checks the
// ledger invariant as far as a bounded read can (checkOnOpen).
func Open(ctx context.Context, url string) (*Store, error) { return OpenWith(ctx, url, Options{}) }

// OpenWith is Open with options.
func OpenWith(ctx context.Context, url string, o Options) (*Store, error) {
	db, err := sqldb.Open(ctx, url)
	if err != nil {
		return nil, err
	}
	if o.TxTimeout <= 0 {
		o.TxTimeout = DefaultTxTimeout
	}
	s := &Store{db: db, now: time.Now, txTimeout: o.TxTimeout}
	if err := s.migrate(ctx); err != nil {
		db.Close()
		return nil, err
	}
	if db.Dialect == sqldb.SQLite {
		// A savepoint (one per transaction of a batch) copies every page it changes to a
		// sub-journal, a temporary file by default: a write syscall per page. The sub-journal only
		// undoes a savepoint inside its open transaction (crash recovery is the WAL's), so memory
		// loses nothing. The writer is one connection that database/sql keeps open; were it ever
		// replaced, the new one would only be slower.
		if _, err := db.ExecContext(ctx, `PRAGMA temp_store = MEMORY`); err != nil {
			db.Close()
			return nil, err
		}
	}
	if db.Dialect == sqldb.SQLite && !o.NoGroupCommit {
		if s.rdb, err = sqldb.Open(ctx, url); err != nil {
			db.Close()
			return nil, err
		}
		// WAL readers do not block one another: reads (replays among them) run side by side.
		s.rdb.SetMaxOpenConns(readConns)
		s.rdb.SetMaxIdleConns(readConns)
	}
	s.stmts, s.rstmts = newStmts(s.db), newStmts(s.rdb)
	if err := s.checkOnOpen(ctx); err != nil {
		s.closeDBs()
		return nil, err
	}
	if s.rdb != nil {
		s.batch = newBatcher(s)
	}
	s.laneSQL = newLaneStmts(db.Dialect)
	switch {
	case o.NoGroupCommit:
	case db.Dialect == sqldb.Postgres:
		s.startAnalyzer()
		s.startLanes(postgresLanes)
	default:
		s.startLanes(1)
	}
	return s, nil
}

// migrate applies the schema. On PostgreSQL replicas may start together: an advisory lock makes
// them take turns, so each migration runs once.
func (s *Store) migrate(ctx context.Context) error {
	if s.db.Dialect != sqldb.Postgres {
		return s.db.Migrate(ctx, migrations(s.db.Dialect))
	}
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	const lockID = 0x7061796d656e74 // "payment"
	if _, err := conn.ExecContext(ctx, `SELECT pg_advisory_lock($1)`, lockID); err != nil {
		return fmt.Errorf("store: migration lock: %w", err)
	}
	defer conn.ExecContext(context.Background(), `SELECT pg_advisory_unlock($1)`, lockID) //nolint:errcheck // released with the session anyway
	return s.db.Migrate(ctx, migrations(s.db.Dialect))
}

// Close writes what is queued and closes the database.
func (s *Store) Close() error {
	s.closeLanes()
	s.stopAnalyzer()
	if s.batch != nil {
		s.batch.Close()
	}
	return s.closeDBs()
}

func (s *Store) closeDBs() error {
	s.stmts.Close()
	if s.rdb != nil {
		s.rstmts.Close()
		s.rdb.Close()
	}
	return s.db.Close()
}

// Dialect is the SQL engine behind the store.
func (s *Store) Dialect() sqldb.Dialect { return s.db.Dialect }

// SetClock replaces the clock (tests).
func (s *Store) SetClock(now func() time.Time) { s.now = now }

// Now is the store's clock.
func (s *Store) Now() time.Time { return s.now() }

// txNow is a transaction's time as its rows will read back: UTC, without a monotonic reading.
func (s *Store) txNow() time.Time { return s.now().Round(0).UTC() }

// Tx is one database transaction of the payment service.
type Tx struct {
	tx  *sql.Tx
	q   *sqldb.TxStmts // tx's prepared statements
	s   *Store
	now time.Time
	// shared: tx is a group commit's, shared with other callers' items. Its statements then run
	// on a context that cannot be cancelled: a statement interrupted by one caller's deadline makes
	// SQLite roll back the whole transaction, and every other item with it. The committer already
	// skips an item whose context ended before its turn; one that started runs its few statements
	// to the end.
	shared bool
}

// stmtCtx is the context tx's statements run on.
func (t *Tx) stmtCtx(ctx context.Context) context.Context {
	if t.shared {
		return context.WithoutCancel(ctx)
	}
	return ctx
}

// ErrConflict is returned by a compare-and-set update whose row was no longer in the expected state:
// another request, replica or the janitor got there first. Callers re-read and carry on from there.
var ErrConflict = errors.New("store: concurrent change")

// InTx runs fn in a transaction and commits it if fn returns nil.
func (s *Store) InTx(ctx context.Context, fn func(*Tx) error) error {
	if s.batch != nil {
		return s.batch.Submit(ctx, fn)
	}
	txCtx, cancel := context.WithTimeout(ctx, s.txTimeout)
	defer cancel()
	err := s.db.InTx(txCtx, func(tx *sql.Tx) error { return fn(&Tx{tx: tx, q: s.stmts.In(tx), s: s, now: s.txNow()}) })
	if ctx.Err() == nil { // the bound's own, not the caller's deadline
		err = sqldb.TimedOut(txCtx, err)
	}
	return err
}

// Now is the transaction's time: every row it writes carries it.
func (t *Tx) Now() time.Time { return t.now }

func (t *Tx) exec(ctx context.Context, q string, args ...any) (int64, error) {
	res, err := t.q.Exec(t.stmtCtx(ctx), q, args...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

func (t *Tx) queryRow(ctx context.Context, q string, args ...any) *sql.Row {
	return t.q.QueryRow(t.stmtCtx(ctx), q, args...)
}

func (t *Tx) query(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	return t.q.Query(t.stmtCtx(ctx), q, args...)
}

// rowSet is what collect reads: *sql.Rows, or a read's boundedRows.
type rowSet interface {
	scanner
	Next() bool
	Close() error
	Err() error
}

// collect scans every row of a query (rows and err as the query returned them) with scan.
func collect[T any, R rowSet](rows R, err error, scan func(scanner) (T, error)) ([]T, error) {
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// execCAS runs a compare-and-set update: ErrConflict unless it changed exactly one row.
func (t *Tx) execCAS(ctx context.Context, q string, args ...any) error {
	n, err := t.exec(ctx, q, args...)
	if err != nil {
		return err
	}
	if n != 1 {
		return ErrConflict
	}
	return nil
}

// forUpdate locks the row read on PostgreSQL; SQLite transactions already hold the database's only
// write lock (BEGIN IMMEDIATE).
func (s *Store) forUpdate() string {
	if s.db.Dialect == sqldb.Postgres {
		return " FOR UPDATE"
	}
	return ""
}

func nanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromNanos(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

// orNotFound is err with no row made a NotFound error about what id.
func orNotFound(err error, what, id string) error {
	if errors.Is(err, sql.ErrNoRows) {
		return notFound(what, id)
	}
	return err
}

func notFound(what, id string) error {
	return errs.New(errs.KindNotFound, "%s %q not found", what, id)
}

// CheckInvariants is the full audit of what must hold after every committed transaction: each
// ledger transaction and the whole ledger sum to zero per currency, the maintained balances are
// the sums of the entries per account and currency, no payment has refunded more than it captured
// or captured more than its amount, and no capture is posted for a payment that did not succeed.
// It reads the whole ledger and every payment (Open checks a bounded part: checkOnOpen).
func (s *Store) CheckInvariants(ctx context.Context) error {
	ctx = withoutReadBound(ctx) // it reads the whole ledger
	rows, err := s.query(ctx, `SELECT tx_id, currency, SUM(amount) FROM ledger_entries GROUP BY tx_id, currency HAVING SUM(amount) <> 0`)
	if err != nil {
		return err
	}
	defer rows.Close()
	if rows.Next() {
		var id, sum int64
		var cur string
		if err := rows.Scan(&id, &cur, &sum); err != nil {
			return err
		}
		return fmt.Errorf("ledger invariant: transaction %d is off by %d %s", id, sum, cur)
	}
	if err := rows.Err(); err != nil {
		return err
	}
	bs, err := s.derivedBalances(ctx)
	if err != nil {
		return err
	}
	if _, err := ledger.CheckBalances(bs); err != nil {
		return err
	}
	if err := s.checkMaintainedBalances(ctx, bs); err != nil {
		return err
	}
	var bad int
	if err := s.queryRow(ctx, `SELECT COUNT(*) FROM payments WHERE refunded > captured OR captured > amount`).Scan(&bad); err != nil {
		return err
	}
	if bad > 0 {
		return fmt.Errorf("payment invariant: %d payments refunded more than captured or captured more than authorized", bad)
	}
	// Money captured is money the payment kept: a capture posted for a payment that did not
	// succeed would credit the customer for nothing.
	if err := s.queryRow(ctx, `SELECT COUNT(*) FROM ledger_transactions t JOIN payments p ON p.id = t.ref
		WHERE t.kind = 'payment.captured' AND p.status NOT IN ('succeeded', 'partially_refunded', 'refunded')`).Scan(&bad); err != nil {
		return err
	}
	if bad > 0 {
		return fmt.Errorf("payment invariant: %d payments have a capture posted but did not succeed", bad)
	}
	return nil
}
