package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"strings"
	"time"

	"github.com/bourse-dev/bourse/services/payment/internal/domain"
)

const paymentCols = `id, caller, account_id, amount, currency, method, capture_method, status, captured, refunded,
	refund_reserved, decline_reason, decline_code, fraud_score, metadata, risk_credited, created_at, updated_at`

type scanner interface{ Scan(...any) error }

func scanPayment(r scanner) (domain.Payment, error) {
	var p domain.Payment
	var md string
	var credited int
	var created, updated int64
	err := r.Scan(&p.ID, &p.Caller, &p.AccountID, &p.Amount.Amount, &p.Amount.Currency, &p.Method, &p.CaptureMethod,
		&p.Status, &p.Captured, &p.Refunded, &p.RefundReserved, &p.DeclineReason, &p.DeclineCode, &p.FraudScore,
		&md, &credited, &created, &updated)
	if err != nil {
		return p, err
	}
	if md != "" && md != "{}" {
		_ = json.Unmarshal([]byte(md), &p.Metadata)
	}
	p.RiskCredited = credited != 0
	p.CreatedAt, p.UpdatedAt = fromNanos(created), fromNanos(updated)
	return p, nil
}

func jsonText(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// InsertPayment stores a new payment (its CreatedAt and UpdatedAt are the transaction's time).
func (t *Tx) InsertPayment(ctx context.Context, p *domain.Payment) error {
	p.CreatedAt, p.UpdatedAt = t.now, t.now
	md := "{}"
	if len(p.Metadata) > 0 {
		md = jsonText(p.Metadata)
	}
	_, err := t.exec(ctx, `INSERT INTO payments (`+paymentCols+`) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)`,
		p.ID, p.Caller, p.AccountID, p.Amount.Amount, p.Amount.Currency, p.Method, p.CaptureMethod, p.Status,
		p.Captured, p.Refunded, p.RefundReserved, p.DeclineReason, p.DeclineCode, p.FraudScore, md, 0,
		nanos(p.CreatedAt), nanos(p.UpdatedAt))
	return err
}

// Payment reads a payment inside the transaction, locking its row on PostgreSQL.
func (t *Tx) Payment(ctx context.Context, id string) (domain.Payment, error) {
	p, err := scanPayment(t.queryRow(ctx, `SELECT `+paymentCols+` FROM payments WHERE id = ?`+t.s.forUpdate(), id))
	return p, orNotFound(err, "payment", id)
}

// SetPaymentStatus moves a payment from one status to another (compare-and-set on from) and writes the
// outcome fields that go with it. ErrConflict if the payment was no longer in from.
func (t *Tx) SetPaymentStatus(ctx context.Context, p *domain.Payment, from domain.PaymentStatus) error {
	if err := domain.PaymentTransition(from, p.Status); err != nil {
		return err
	}
	if err := t.execCAS(ctx, `UPDATE payments SET status = ?, captured = ?, decline_reason = ?, decline_code = ?, fraud_score = ?,
		updated_at = ? WHERE id = ? AND status = ?`,
		p.Status, p.Captured, p.DeclineReason, p.DeclineCode, p.FraudScore, nanos(t.now), p.ID, from); err != nil {
		return err
	}
	p.UpdatedAt = t.now
	return nil
}

// MarkRiskCredited records that risk has been credited with the payment's captured amount.
func (t *Tx) MarkRiskCredited(ctx context.Context, paymentID string) error {
	_, err := t.exec(ctx, `UPDATE payments SET risk_credited = 1 WHERE id = ?`, paymentID)
	return err
}

// ReserveRefund sets amount aside for a refund of the payment: atomic, so concurrent refunds (in any
// replica) never reserve more than was captured. ErrConflict if it would exceed it or the payment is
// not refundable.
func (t *Tx) ReserveRefund(ctx context.Context, paymentID string, amount int64) error {
	return t.execCAS(ctx, `UPDATE payments SET refund_reserved = refund_reserved + ?, updated_at = ?
		WHERE id = ? AND status IN ('succeeded', 'partially_refunded') AND refund_reserved + ? <= captured`,
		amount, nanos(t.now), paymentID, amount)
}

// ReleaseRefund gives back the reservation of a refund that failed for good.
func (t *Tx) ReleaseRefund(ctx context.Context, paymentID string, amount int64) error {
	_, err := t.exec(ctx, `UPDATE payments SET refund_reserved = refund_reserved - ?, updated_at = ? WHERE id = ?`,
		amount, nanos(t.now), paymentID)
	return err
}

// ApplyRefund counts a succeeded refund against the payment and moves it to partially_refunded or
// refunded, in one statement so concurrent refunds compose.
func (t *Tx) ApplyRefund(ctx context.Context, paymentID string, amount int64) error {
	p, err := t.Payment(ctx, paymentID)
	if err != nil {
		return err
	}
	to := domain.PaymentPartiallyRefunded
	if p.Refunded+amount >= p.Captured {
		to = domain.PaymentRefunded
	}
	if err := domain.PaymentTransition(p.Status, to); err != nil {
		return err
	}
	return t.execCAS(ctx, `UPDATE payments SET refunded = refunded + ?,
		status = CASE WHEN refunded + ? >= captured THEN 'refunded' ELSE 'partially_refunded' END, updated_at = ?
		WHERE id = ? AND status IN ('succeeded', 'partially_refunded') AND refunded + ? <= refund_reserved`,
		amount, amount, nanos(t.now), paymentID, amount)
}

// GetPayment reads a payment and its attempts.
func (s *Store) GetPayment(ctx context.Context, id string) (domain.Payment, error) {
	p, err := scanPayment(s.queryRow(ctx, `SELECT `+paymentCols+` FROM payments WHERE id = ?`, id))
	if err != nil {
		return p, orNotFound(err, "payment", id)
	}
	p.Attempts, err = s.attempts(ctx, id)
	return p, err
}

// PaymentFilter selects payments for ListPayments.
type PaymentFilter struct {
	AccountID     string // "" for all
	Status        domain.PaymentStatus
	CreatedAfter  time.Time // inclusive
	CreatedBefore time.Time // exclusive
	// Cursor: payments strictly older than (BeforeCreated, BeforeID) in (created_at, id) order.
	BeforeCreated time.Time
	BeforeID      string
	Limit         int
}

// ListPayments returns payments newest first (without attempts).
func (s *Store) ListPayments(ctx context.Context, f PaymentFilter) ([]domain.Payment, error) {
	var where []string
	var args []any
	if f.AccountID != "" {
		where, args = append(where, "account_id = ?"), append(args, f.AccountID)
	}
	if f.Status != "" {
		where, args = append(where, "status = ?"), append(args, f.Status)
	}
	if !f.CreatedAfter.IsZero() {
		where, args = append(where, "created_at >= ?"), append(args, nanos(f.CreatedAfter))
	}
	if !f.CreatedBefore.IsZero() {
		where, args = append(where, "created_at < ?"), append(args, nanos(f.CreatedBefore))
	}
	if f.BeforeID != "" {
		c := nanos(f.BeforeCreated)
		where, args = append(where, "(created_at < ? OR (created_at = ? AND id < ?))"), append(args, c, c, f.BeforeID)
	}
	q := `SELECT ` + paymentCols + ` FROM payments`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY created_at DESC, id DESC LIMIT ?"
	args = append(args, f.Limit)
	rows, err := s.query(ctx, q, args...)
	return collect(rows, err, scanPayment)
}

// CountPaymentsSince counts an account's payments created at or after since and sums their amounts in
// currency (fraud features).
func (s *Store) CountPaymentsSince(ctx context.Context, account, currency string, since time.Time) (n int, sum int64, err error) {
	err = s.queryRow(ctx, `SELECT COUNT(*), COALESCE(SUM(CASE WHEN currency = ? THEN amount ELSE 0 END), 0)
		FROM payments WHERE account_id = ? AND created_at >= ?`, currency, account, nanos(since)).Scan(&n, &sum)
	return n, sum, err
}

// FirstPaymentAt is when the account's first payment was created (zero if none).
func (s *Store) FirstPaymentAt(ctx context.Context, account string) (time.Time, error) {
	var n sql.NullInt64
	err := s.queryRow(ctx, `SELECT MIN(created_at) FROM payments WHERE account_id = ?`, account).Scan(&n)
	if err != nil || !n.Valid {
		return time.Time{}, err
	}
	return fromNanos(n.Int64), nil
}

const attemptCols = `id, payment_id, processor, status, pending_op, processor_ref, decline_code, lookups, next_lookup_at, created_at, updated_at`

const qAttemptsOf = `SELECT ` + attemptCols + ` FROM attempts WHERE payment_id = ? ORDER BY created_at, id`

func scanAttempt(r scanner) (domain.Attempt, error) {
	var a domain.Attempt
	var next, created, updated int64
	err := r.Scan(&a.ID, &a.PaymentID, &a.Processor, &a.Status, &a.PendingOp, &a.ProcessorRef, &a.DeclineCode,
		&a.Lookups, &next, &created, &updated)
	a.NextLookupAt, a.CreatedAt, a.UpdatedAt = fromNanos(next), fromNanos(created), fromNanos(updated)
	return a, err
}

func (s *Store) attempts(ctx context.Context, paymentID string) ([]domain.Attempt, error) {
	rows, err := s.query(ctx, qAttemptsOf, paymentID)
	return collect(rows, err, scanAttempt)
}

// InsertAttempt stores a new attempt.
func (t *Tx) InsertAttempt(ctx context.Context, a *domain.Attempt) error {
	a.CreatedAt, a.UpdatedAt = t.now, t.now
	_, err := t.exec(ctx, `INSERT INTO attempts (`+attemptCols+`) VALUES (?,?,?,?,?,?,?,?,?,?,?)`,
		a.ID, a.PaymentID, a.Processor, a.Status, a.PendingOp, a.ProcessorRef, a.DeclineCode, a.Lookups,
		nanos(a.NextLookupAt), nanos(a.CreatedAt), nanos(a.UpdatedAt))
	return err
}

// Attempt reads an attempt inside the transaction.
func (t *Tx) Attempt(ctx context.Context, id string) (domain.Attempt, error) {
	a, err := scanAttempt(t.queryRow(ctx, `SELECT `+attemptCols+` FROM attempts WHERE id = ?`+t.s.forUpdate(), id))
	return a, orNotFound(err, "attempt", id)
}

// UpdateAttempt writes an attempt's new state, compare-and-set on its previous status and pending
// operation. ErrConflict if someone else changed it first.
func (t *Tx) UpdateAttempt(ctx context.Context, a *domain.Attempt, from domain.AttemptStatus, fromOp domain.Op) error {
	if a.Status != from {
		if err := domain.AttemptTransition(from, a.Status); err != nil {
			return err
		}
	}
	if err := t.execCAS(ctx, `UPDATE attempts SET status = ?, pending_op = ?, processor_ref = ?, decline_code = ?, lookups = ?,
		next_lookup_at = ?, updated_at = ? WHERE id = ? AND status = ? AND pending_op = ?`,
		a.Status, a.PendingOp, a.ProcessorRef, a.DeclineCode, a.Lookups, nanos(a.NextLookupAt), nanos(t.now), a.ID, from, fromOp); err != nil {
		return err
	}
	a.UpdatedAt = t.now
	return nil
}

// dueAttemptsQuery's condition on pending_op is, word for word, the predicate of the partial index
// attempts_open, which it reads in next_lookup_at order.
const dueAttemptsQuery = `SELECT ` + attemptCols + ` FROM attempts WHERE pending_op <> '' AND next_lookup_at <= ? AND updated_at <= ?
	ORDER BY next_lookup_at LIMIT ?`

// DueAttempts lists attempts with an operation in flight whose next lookup is due and that have not
// changed since olderThan (so a request still waiting for the processor is left alone).
func (s *Store) DueAttempts(ctx context.Context, now, olderThan time.Time, limit int) ([]domain.Attempt, error) {
	rows, err := s.query(ctx, dueAttemptsQuery, nanos(now), nanos(olderThan), limit)
	return collect(rows, err, scanAttempt)
}

// StalledPayments lists payments in processing with no attempt at all or whose every attempt is final
// but not_reached — a request that died between creating the payment and its first attempt —
// untouched since olderThan.
func (s *Store) StalledPayments(ctx context.Context, olderThan time.Time, limit int) ([]domain.Payment, error) {
	rows, err := s.query(ctx, `SELECT `+paymentCols+` FROM payments p WHERE status = 'processing' AND updated_at <= ?
		AND NOT EXISTS (SELECT 1 FROM attempts a WHERE a.payment_id = p.id AND a.status NOT IN ('not_reached', 'failed'))
		ORDER BY updated_at LIMIT ?`, nanos(olderThan), limit)
	return collect(rows, err, scanPayment)
}

// Attempts reads a payment's attempts inside the transaction.
func (t *Tx) Attempts(ctx context.Context, paymentID string) ([]domain.Attempt, error) {
	rows, err := t.query(ctx, qAttemptsOf, paymentID)
	return collect(rows, err, scanAttempt)
}

// TouchPayment marks a payment as worked on now (the janitor leaves recently touched payments to
// the request working on them).
func (t *Tx) TouchPayment(ctx context.Context, id string) error {
	_, err := t.exec(ctx, `UPDATE payments SET updated_at = ? WHERE id = ?`, nanos(t.now), id)
	return err
}

// SetFraudScore records the fraud model's score of a payment.
func (t *Tx) SetFraudScore(ctx context.Context, id string, score float64) error {
	_, err := t.exec(ctx, `UPDATE payments SET fraud_score = ? WHERE id = ?`, score, id)
	return err
}
