// Package paytest has what the payment service's tests of several packages compare with.
package paytest

import (
	"slices"
	"time"

	"github.com/bourse-dev/bourse/services/payment/internal/domain"
)

// Normalized is p without what differs between two writes of the same deposit: ids, times and the
// processor's reference (named after the attempt).
func Normalized(p domain.Payment) domain.Payment {
	p.ID, p.CreatedAt, p.UpdatedAt = "", time.Time{}, time.Time{}
	p.Attempts = slices.Clone(p.Attempts)
	for i := range p.Attempts {
		a := &p.Attempts[i]
		a.ID, a.PaymentID, a.ProcessorRef, a.CreatedAt, a.UpdatedAt, a.NextLookupAt = "", "", "", time.Time{}, time.Time{}, time.Time{}
	}
	return p
}
