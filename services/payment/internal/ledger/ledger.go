// Package ledger is the payment service's double-entry vocabulary: ledger accounts, the postings each
// money movement makes, and the balance rule (every transaction sums to zero per currency). The
// store writes a transaction in the same database transaction as the state change that caused it.
package ledger

import (
	"fmt"
	"sort"

	"github.com/bourse-dev/bourse/services/payment/internal/domain"
)

// Ledger accounts. Amounts are debits minus credits: an asset (money the processor holds for us) is
// positive, a liability (what we owe a trading account) negative.
const (
	// ProcessorReceivable + ":" + processor: money captured at a processor, not yet paid out.
	ProcessorReceivable = "processor_receivable"
	// CustomerFunds + ":" + account: what the trading account was credited in risk through payment.
	CustomerFunds = "customer_funds"
	// Refunds: refunds debited from the trading account in risk, not yet confirmed by the processor.
	Refunds = "refunds"
	// PayoutsInTransit: payouts debited in risk, not yet paid out by the processor.
	PayoutsInTransit = "payouts_in_transit"
	// Fees: processor fees (none are charged yet; the account exists so reports have it).
	Fees = "fees"
)

// Entry is one leg: positive debits the account, negative credits it.
type Entry struct {
	Account  string `json:"account"`
	Currency string `json:"currency"`
	Amount   int64  `json:"amount"`
}

// Transaction is a set of entries that sum to zero per currency.
type Transaction struct {
	Kind    string  // e.g. "payment.captured"
	Ref     string  // the payment, refund or payout id
	Entries []Entry // at least two
}

// Validate checks the double-entry rule.
func (t Transaction) Validate() error {
	if len(t.Entries) < 2 {
		return fmt.Errorf("ledger: transaction %s/%s has %d entries", t.Kind, t.Ref, len(t.Entries))
	}
	sums := map[string]int64{}
	for _, e := range t.Entries {
		if e.Amount == 0 || e.Account == "" || e.Currency == "" {
			return fmt.Errorf("ledger: transaction %s/%s has an empty entry %+v", t.Kind, t.Ref, e)
		}
		sums[e.Currency] += e.Amount
	}
	for cur, s := range sums {
		if s != 0 {
			return fmt.Errorf("ledger: transaction %s/%s is off by %d %s", t.Kind, t.Ref, s, cur)
		}
	}
	return nil
}

func move(kind, ref string, m domain.Money, debit, credit string) Transaction {
	return Transaction{Kind: kind, Ref: ref, Entries: []Entry{
		{Account: debit, Currency: m.Currency, Amount: m.Amount},
		{Account: credit, Currency: m.Currency, Amount: -m.Amount},
	}}
}

// Customer names a trading account's ledger account.
func Customer(account string) string { return CustomerFunds + ":" + account }

// Receivable names a processor's ledger account.
func Receivable(processor string) string { return ProcessorReceivable + ":" + processor }

// Captured: a deposit was captured at a processor; the trading account is owed it (the outbox credits
// risk).
func Captured(paymentID, processor, account string, m domain.Money) Transaction {
	return move("payment.captured", paymentID, m, Receivable(processor), Customer(account))
}

// RefundDebited: risk debited the trading account for a refund.
func RefundDebited(refundID, account string, m domain.Money) Transaction {
	return move("refund.debited", refundID, m, Customer(account), Refunds)
}

// RefundSucceeded: the processor returned the money to the customer.
func RefundSucceeded(refundID, processor string, m domain.Money) Transaction {
	return move("refund.succeeded", refundID, m, Refunds, Receivable(processor))
}

// RefundReversed: the processor refused the refund; the trading account is credited back.
func RefundReversed(refundID, account string, m domain.Money) Transaction {
	return move("refund.reversed", refundID, m, Refunds, Customer(account))
}

// PayoutDebited: risk debited the trading account for a payout.
func PayoutDebited(payoutID, account string, m domain.Money) Transaction {
	return move("payout.debited", payoutID, m, Customer(account), PayoutsInTransit)
}

// PayoutSucceeded: the processor paid the money out.
func PayoutSucceeded(payoutID, processor string, m domain.Money) Transaction {
	return move("payout.succeeded", payoutID, m, PayoutsInTransit, Receivable(processor))
}

// PayoutReversed: the payout failed for good; the trading account is credited back.
func PayoutReversed(payoutID, account string, m domain.Money) Transaction {
	return move("payout.reversed", payoutID, m, PayoutsInTransit, Customer(account))
}

// Balance is a derived balance of one ledger account in one currency.
type Balance struct {
	Account  string
	Currency string
	Amount   int64
}

// CheckBalances is the invariant over derived balances: per currency they sum to zero. It returns the
// per-currency totals (all zero when it holds), sorted by currency.
func CheckBalances(bs []Balance) ([]domain.Money, error) {
	sums := map[string]int64{}
	for _, b := range bs {
		sums[b.Currency] += b.Amount
	}
	out := make([]domain.Money, 0, len(sums))
	var bad error
	for cur, s := range sums {
		out = append(out, domain.Money{Amount: s, Currency: cur})
		if s != 0 && bad == nil {
			bad = fmt.Errorf("ledger invariant: %s sums to %d, not 0", cur, s)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Currency < out[j].Currency })
	return out, bad
}
