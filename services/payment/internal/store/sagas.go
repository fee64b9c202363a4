package store

import (
	"context"
	"encoding/json"
	"time"

	"github.com/bourse-dev/bourse/services/payment/internal/domain"
)

const refundCols = `id, caller, payment_id, account_id, processor, attempt_id, amount, currency, status, reason, processor_ref,
	decline_code, lookups, next_step_at, created_at, updated_at`

func scanRefund(r scanner) (domain.Refund, error) {
	var x domain.Refund
	var caller string
	var next, created, updated int64
	err := r.Scan(&x.ID, &caller, &x.PaymentID, &x.AccountID, &x.Processor, &x.AttemptID, &x.Amount.Amount, &x.Amount.Currency,
		&x.Status, &x.Reason, &x.ProcessorRef, &x.DeclineCode, &x.Lookups, &next, &created, &updated)
	x.NextStepAt, x.CreatedAt, x.UpdatedAt = fromNanos(next), fromNanos(created), fromNanos(updated)
	return x, err
}

// InsertRefund stores a new refund.
func (t *Tx) InsertRefund(ctx context.Context, caller string, x *domain.Refund) error {
	x.CreatedAt, x.UpdatedAt = t.now, t.now
	_, err := t.exec(ctx, `INSERT INTO refunds (`+refundCols+`) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)`,
		x.ID, caller, x.PaymentID, x.AccountID, x.Processor, x.AttemptID, x.Amount.Amount, x.Amount.Currency, x.Status,
		x.Reason, x.ProcessorRef, x.DeclineCode, x.Lookups, nanos(x.NextStepAt), nanos(x.CreatedAt), nanos(x.UpdatedAt))
	return err
}

// UpdateRefund writes a refund's new state, compare-and-set on its previous status.
func (t *Tx) UpdateRefund(ctx context.Context, x *domain.Refund, from domain.RefundStatus) error {
	if x.Status != from {
		if err := domain.RefundTransition(from, x.Status); err != nil {
			return err
		}
	}
	if err := t.execCAS(ctx, `UPDATE refunds SET status = ?, processor_ref = ?, decline_code = ?, lookups = ?, next_step_at = ?, updated_at = ?
		WHERE id = ? AND status = ? AND updated_at = ?`,
		x.Status, x.ProcessorRef, x.DeclineCode, x.Lookups, nanos(x.NextStepAt), nanos(t.now), x.ID, from, nanos(x.UpdatedAt)); err != nil {
		return err
	}
	x.UpdatedAt = t.now
	return nil
}

// GetRefund reads a refund.
func (s *Store) GetRefund(ctx context.Context, id string) (domain.Refund, error) {
	x, err := scanRefund(s.queryRow(ctx, `SELECT `+refundCols+` FROM refunds WHERE id = ?`, id))
	return x, orNotFound(err, "refund", id)
}

// DueRefunds lists unfinished refunds whose next step is due and that nobody touched since olderThan.
func (s *Store) DueRefunds(ctx context.Context, now, olderThan time.Time, limit int) ([]domain.Refund, error) {
	rows, err := s.query(ctx, `SELECT `+refundCols+` FROM refunds WHERE status IN ('pending', 'processing', 'unknown', 'reversing')
		AND next_step_at <= ? AND updated_at <= ? ORDER BY next_step_at LIMIT ?`, nanos(now), nanos(olderThan), limit)
	return collect(rows, err, scanRefund)
}

const payoutCols = `id, caller, account_id, amount, currency, destination, processor, status, processor_ref, decline_reason,
	decline_code, metadata, lookups, next_step_at, created_at, updated_at`

func scanPayout(r scanner) (domain.Payout, error) {
	var x domain.Payout
	var md string
	var next, created, updated int64
	err := r.Scan(&x.ID, &x.Caller, &x.AccountID, &x.Amount.Amount, &x.Amount.Currency, &x.Destination, &x.Processor, &x.Status,
		&x.ProcessorRef, &x.DeclineReason, &x.DeclineCode, &md, &x.Lookups, &next, &created, &updated)
	if md != "" && md != "{}" {
		_ = json.Unmarshal([]byte(md), &x.Metadata)
	}
	x.NextStepAt, x.CreatedAt, x.UpdatedAt = fromNanos(next), fromNanos(created), fromNanos(updated)
	return x, err
}

// InsertPayout stores a new payout.
func (t *Tx) InsertPayout(ctx context.Context, x *domain.Payout) error {
	x.CreatedAt, x.UpdatedAt = t.now, t.now
	md := "{}"
	if len(x.Metadata) > 0 {
		md = jsonText(x.Metadata)
	}
	_, err := t.exec(ctx, `INSERT INTO payouts (`+payoutCols+`) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)`,
		x.ID, x.Caller, x.AccountID, x.Amount.Amount, x.Amount.Currency, x.Destination, x.Processor, x.Status, x.ProcessorRef,
		x.DeclineReason, x.DeclineCode, md, x.Lookups, nanos(x.NextStepAt), nanos(x.CreatedAt), nanos(x.UpdatedAt))
	return err
}

// UpdatePayout writes a payout's new state, compare-and-set on its previous status and update time (a
// saga step that lost a race to another replica's finds ErrConflict and re-reads).
func (t *Tx) UpdatePayout(ctx context.Context, x *domain.Payout, from domain.PayoutStatus) error {
	if x.Status != from {
		if err := domain.PayoutTransition(from, x.Status); err != nil {
			return err
		}
	}
	if err := t.execCAS(ctx, `UPDATE payouts SET status = ?, processor = ?, processor_ref = ?, decline_reason = ?, decline_code = ?,
		lookups = ?, next_step_at = ?, updated_at = ? WHERE id = ? AND status = ? AND updated_at = ?`,
		x.Status, x.Processor, x.ProcessorRef, x.DeclineReason, x.DeclineCode, x.Lookups, nanos(x.NextStepAt), nanos(t.now),
		x.ID, from, nanos(x.UpdatedAt)); err != nil {
		return err
	}
	x.UpdatedAt = t.now
	return nil
}

// GetPayout reads a payout.
func (s *Store) GetPayout(ctx context.Context, id string) (domain.Payout, error) {
	x, err := scanPayout(s.queryRow(ctx, `SELECT `+payoutCols+` FROM payouts WHERE id = ?`, id))
	return x, orNotFound(err, "payout", id)
}

// DuePayouts lists unfinished payouts whose next step is due and that nobody touched since olderThan.
func (s *Store) DuePayouts(ctx context.Context, now, olderThan time.Time, limit int) ([]domain.Payout, error) {
	rows, err := s.query(ctx, `SELECT `+payoutCols+` FROM payouts WHERE status IN ('pending', 'processing', 'reversing')
		AND next_step_at <= ? AND updated_at <= ? ORDER BY next_step_at LIMIT ?`, nanos(now), nanos(olderThan), limit)
	return collect(rows, err, scanPayout)
}
