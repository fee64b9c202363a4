package store

import (
	"context"
	"time"

	"github.com/bourse-dev/bourse/services/payment/internal/domain"
)

// ExpiredAuthorizations lists payments still in requires_capture that were created before before,
// oldest first (index payments_status_created).
func (s *Store) ExpiredAuthorizations(ctx context.Context, before time.Time, limit int) ([]domain.Payment, error) {
	rows, err := s.query(ctx, `SELECT `+paymentCols+` FROM payments WHERE status = ? AND created_at < ? ORDER BY created_at LIMIT ?`,
		domain.PaymentRequiresCapture, nanos(before), limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []domain.Payment
	for rows.Next() {
		p, err := scanPayment(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, rows.Err()
}
