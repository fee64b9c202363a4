package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/bourse-dev/bourse/pkg/sqldb"
	"github.com/bourse-dev/bourse/services/payment/internal/domain"
	"github.com/bourse-dev/bourse/services/payment/internal/idempotency"
	"github.com/bourse-dev/bourse/services/payment/internal/ledger"
)

// The deposit lanes: a deposit's common path is two transactions, the claim of a new key (with its
// payment, first attempt and event) and the verdict on that attempt (with the ledger transaction,
// outbox row, event and saved result it causes). A lane writes those of many requests in one
// database transaction with a few set-oriented statements (setsql.go), where the general path
// (InTx) runs a dozen statements per request. Everything a lane writes is what the general path
// would have written for the same request; whatever a lane cannot decide from what it was given (a
// key that has a record, an attempt someone else settled) it leaves to the caller's general path,
// which reads and decides.
//
// SQLite has one lane, which takes turns with the general path's writer on the one write
// connection. PostgreSQL has two, each a transaction at a time on the pool, so that one fills its
// batch while the other's commits (more lanes made smaller batches and slower deposits in
// BenchmarkCreatePayment).
//
// Ownership: Open starts the lanes' committers and Close stops them, after writing what was queued.

const (
	laneMaxBatch  = 128
	postgresLanes = 2
)

// EventRow is an event as the lane writes it (its data already encoded).
type EventRow struct {
	ID, Type, AccountID, ObjectID string
	Data                          []byte
}

// NewDeposit is the claim of a new CreatePayment key with what its first transaction writes. Every
// row carries At as its time.
type NewDeposit struct {
	At      time.Time
	Key     idempotency.Record // in flight; the key's record
	Payment domain.Payment
	Attempt *domain.Attempt // the first attempt, when it is known before the processor is chosen
	Event   EventRow
}

// DepositVerdict is a processor's verdict on a payment's attempt with everything it causes:
// compare-and-set of the attempt and the payment, the ledger transaction and outbox row (for a
// capture), the event, and the result saved in the record of the request's key (Caller, Key), if
// it is still in flight for Method and the payment.
type DepositVerdict struct {
	At            time.Time
	Attempt       domain.Attempt // the new state; its Lookups and NextLookupAt must be the row's
	AttemptFrom   domain.AttemptStatus
	AttemptFromOp domain.Op
	Payment       domain.Payment // the new state
	PaymentFrom   domain.PaymentStatus
	Ledger        *ledger.Transaction
	Outbox        *OutboxRow
	Event         EventRow
	Caller, Key   string
	Method        string
	Result        []byte
}

// OutboxRow is an outbox item as the lane writes it.
type OutboxRow struct {
	Kind, Ref string
	Payload   []byte
}

type laneItem struct {
	claim   *NewDeposit
	verdict *DepositVerdict
	done    *bool // set by the write: claimed or applied (read only after a commit)
}

// errLaneMismatch: an attempt's compare-and-set held but its payment's did not, which the general
// path explains (it re-reads both); the whole batch goes there.
var errLaneMismatch = errors.New("store: lane verdict: payment not in the expected state")

// HasLanes reports whether deposits can take the lanes (not with group commit off).
func (s *Store) HasLanes() bool { return len(s.lanes) > 0 }

// RowTime is the time for rows written now, as they read back (what Tx.Now is in a transaction).
func (s *Store) RowTime() time.Time { return s.txNow() }

func (s *Store) startLanes(n int) {
	for range n {
		s.lanes = append(s.lanes, sqldb.NewGroupCommitterWith(s.db, sqldb.Options{MaxBatch: laneMaxBatch, QueueLen: 4 * laneMaxBatch, TxTimeout: s.txTimeout},
			func(ctx context.Context, tx *sql.Tx, items []laneItem) error { return s.writeLane(ctx, tx, items) }))
	}
}

func (s *Store) closeLanes() {
	for _, l := range s.lanes {
		l.Close()
	}
}

func (s *Store) lane() *sqldb.GroupCommitter[laneItem] {
	return s.lanes[s.laneNext.Add(1)%uint64(len(s.lanes))]
}

// ClaimDeposit writes d if its key has no record. claimed false: the key has one (or another
// request of the same batch holds it), and nothing was written; err: the batch failed as a whole
// and nothing was written either. In both cases the general path is the way on.
func (s *Store) ClaimDeposit(ctx context.Context, d *NewDeposit) (claimed bool, err error) {
	if !s.HasLanes() {
		return false, errNoLanes
	}
	// The writer tells a claimed key by the object it names: a key naming another payment would be
	// written and left behind.
	if d.Key.ObjectID != d.Payment.ID || d.Attempt != nil && d.Attempt.PaymentID != d.Payment.ID {
		return false, fmt.Errorf("store: lane claim of payment %s names key object %q and attempt payment %q", d.Payment.ID, d.Key.ObjectID, attemptPayment(d.Attempt))
	}
	if !freshDeposit(d) {
		return false, nil
	}
	err = s.lane().Submit(ctx, laneItem{claim: d, done: &claimed})
	if claimed = claimed && err == nil; claimed {
		s.analyzer.claimed(s.laneStats.claims.Add(1))
	}
	return claimed, err
}

// ApplyVerdict writes v if its attempt and payment are still in the states it names. applied
// false: someone else settled it first and nothing was written; err: the batch failed as a whole.
// In both cases the general path decides.
func (s *Store) ApplyVerdict(ctx context.Context, v *DepositVerdict) (applied bool, err error) {
	if !s.HasLanes() {
		return false, errNoLanes
	}
	if err := domain.AttemptTransition(v.AttemptFrom, v.Attempt.Status); err != nil && v.AttemptFrom != v.Attempt.Status {
		return false, err
	}
	if err := domain.PaymentTransition(v.PaymentFrom, v.Payment.Status); err != nil {
		return false, err
	}
	if v.Ledger != nil {
		if err := v.Ledger.Validate(); err != nil {
			return false, err
		}
	}
	err = s.lane().Submit(ctx, laneItem{verdict: v, done: &applied})
	if applied = applied && err == nil; applied {
		s.laneStats.verdicts.Add(1)
	}
	return applied, err
}

var errNoLanes = errors.New("store: no deposit lanes")

// freshDeposit reports whether d is what the lane's claim statements write: a payment just begun
// (processing, nothing captured, refunded, declined or scored), its key in flight, and an attempt,
// if any, pending its authorization and never looked up. Anything else takes the general path.
func freshDeposit(d *NewDeposit) bool {
	p := d.Payment
	fresh := p.Status == domain.PaymentProcessing && p.Captured == 0 && p.Refunded == 0 && p.RefundReserved == 0 &&
		p.DeclineReason == "" && p.DeclineCode == "" && p.FraudScore == 0 && !p.RiskCredited &&
		d.Key.State == idempotency.InFlight
	if a := d.Attempt; a != nil {
		fresh = fresh && a.Status == domain.AttemptPending && a.PendingOp == domain.OpAuthorize && a.ProcessorRef == "" &&
			a.DeclineCode == "" && a.Lookups == 0
	}
	return fresh
}

// laneCounter is how many claims and verdicts the lanes wrote (the analyzer's schedule; tests).
type laneCounter struct{ claims, verdicts atomic.Int64 }

// LaneWrites is how many claims and verdicts the lanes have written.
func (s *Store) LaneWrites() (claims, verdicts int64) {
	return s.laneStats.claims.Load(), s.laneStats.verdicts.Load()
}

func attemptPayment(a *domain.Attempt) string {
	if a == nil {
		return ""
	}
	return a.PaymentID
}
