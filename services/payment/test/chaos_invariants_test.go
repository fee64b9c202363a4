package payment_test

import (
	"fmt"
	"sort"

	acquirerv1 "github.com/bourse-dev/bourse/pkg/gen/bourse/acquirer/v1"
	paymentv1 "github.com/bourse-dev/bourse/pkg/gen/bourse/payment/v1"
)

// The invariants of services/payment/README.md ("Invariants"), numbered as there. Each function
// returns the violations it finds in a settled state.

// checkChaosInvariants runs every check.
func checkChaosInvariants(s *chaosState, b *chaosBook) []string {
	var v []string
	v = append(v, checkAcquirerCharges(s)...)     // I1, I2
	v = append(v, prefix("I3", s.unsettled())...) // I3
	v = append(v, checkRiskBalances(s)...)        // I4
	v = append(v, checkLedgerBalanced(s)...)      // I5
	v = append(v, checkPaymentsAddUp(s)...)       // I6
	v = append(v, checkAcknowledged(s, b)...)     // I7
	v = append(v, checkOneObjectPerKey(s, b)...)  // I8
	b.mu.Lock()
	v = append(v, prefix("I8", b.violations)...) // answers during the load: replays, refusals
	b.mu.Unlock()
	return v
}

func prefix(p string, vs []string) []string {
	out := make([]string, len(vs))
	for i, s := range vs {
		out[i] = p + ": " + s
	}
	return out
}

// I1: per payment at most one captured charge at the acquirer, none for a payment that did not
// capture there, and what the acquirer holds for it (captures − refunds) is its captured − refunded.
// I2: every approved operation at the acquirer is one payment knows of with the same amount, and
// every refund and payout payment says succeeded at the acquirer is approved there.
func checkAcquirerCharges(s *chaosState) []string {
	var v []string
	attemptOf := map[string]string{} // attempt id → payment id
	for id, p := range s.payments {
		for _, a := range p.GetAttempts() {
			attemptOf[a.GetAttemptId()] = id
		}
	}
	charges := map[string]int{}
	held := map[string]int64{}
	for _, op := range s.ops[acquirerv1.OperationKind_OPERATION_KIND_AUTHORIZE] {
		if op.GetOutcome() != acquirerv1.Outcome_OUTCOME_APPROVED {
			continue
		}
		pid, ok := attemptOf[op.GetKey()]
		if !ok {
			v = append(v, fmt.Sprintf("I2: approved authorization %s (payment %s) is no attempt of any payment", op.GetKey(), op.GetMetadata()["payment_id"]))
			continue
		}
		if op.GetCapture() {
			charges[pid]++
			held[pid] += op.GetMoney().GetAmount()
		}
	}
	for _, op := range s.ops[acquirerv1.OperationKind_OPERATION_KIND_CAPTURE] {
		if op.GetOutcome() != acquirerv1.Outcome_OUTCOME_APPROVED {
			continue
		}
		pid, ok := attemptOf[op.GetAuthorizeKey()]
		if !ok {
			v = append(v, fmt.Sprintf("I2: approved capture %s of an unknown attempt", op.GetKey()))
			continue
		}
		charges[pid]++
		held[pid] += op.GetMoney().GetAmount()
	}
	for _, op := range s.ops[acquirerv1.OperationKind_OPERATION_KIND_REFUND] {
		if op.GetOutcome() != acquirerv1.Outcome_OUTCOME_APPROVED {
			continue
		}
		r, ok := s.refunds[op.GetKey()]
		switch {
		case !ok:
			v = append(v, fmt.Sprintf("I2: approved refund %s at the acquirer is no refund of payment's", op.GetKey()))
			continue
		case r.GetStatus() != paymentv1.RefundStatus_REFUND_STATUS_SUCCEEDED || r.GetAmount().GetAmount() != op.GetMoney().GetAmount():
			v = append(v, fmt.Sprintf("I2: refund %s approved at the acquirer for %d, payment has it %v for %d",
				op.GetKey(), op.GetMoney().GetAmount(), r.GetStatus(), r.GetAmount().GetAmount()))
		}
		held[attemptOf[op.GetAuthorizeKey()]] -= op.GetMoney().GetAmount()
	}
	approvedRefunds := approvedKeys(s.ops[acquirerv1.OperationKind_OPERATION_KIND_REFUND])
	for id, p := range s.payments {
		atAcquirer := false
		for _, a := range p.GetAttempts() {
			if a.GetStatus() == paymentv1.AttemptStatus_ATTEMPT_STATUS_CAPTURED && a.GetProcessor() == "acquirer" {
				atAcquirer = true
			}
		}
		var want int64
		if atAcquirer {
			want = p.GetAmountCaptured().GetAmount() - p.GetAmountRefunded().GetAmount()
		}
		if charges[id] > 1 || (charges[id] == 1) != atAcquirer {
			v = append(v, fmt.Sprintf("I1: payment %s (%v, captured at the acquirer: %v) has %d captured charges at the acquirer",
				id, p.GetStatus(), atAcquirer, charges[id]))
		}
		if held[id] != want {
			v = append(v, fmt.Sprintf("I1: the acquirer holds %d for payment %s, payment says captured %d − refunded %d (at the acquirer: %v)",
				held[id], id, p.GetAmountCaptured().GetAmount(), p.GetAmountRefunded().GetAmount(), atAcquirer))
		}
	}
	for id, r := range s.refunds {
		if r.GetStatus() == paymentv1.RefundStatus_REFUND_STATUS_SUCCEEDED && refundAtAcquirer(s, r) && !approvedRefunds[id] {
			v = append(v, fmt.Sprintf("I2: refund %s succeeded at the acquirer in payment, not approved there", id))
		}
	}
	payouts := approvedKeys(s.ops[acquirerv1.OperationKind_OPERATION_KIND_PAYOUT])
	for _, op := range s.ops[acquirerv1.OperationKind_OPERATION_KIND_PAYOUT] {
		if op.GetOutcome() != acquirerv1.Outcome_OUTCOME_APPROVED {
			continue
		}
		x, ok := s.payouts[op.GetKey()]
		if !ok || x.GetStatus() != paymentv1.PayoutStatus_PAYOUT_STATUS_SUCCEEDED || x.GetProcessor() != "acquirer" ||
			x.GetAmount().GetAmount() != op.GetMoney().GetAmount() {
			v = append(v, fmt.Sprintf("I2: payout %s paid %d by the acquirer; payment has %v", op.GetKey(), op.GetMoney().GetAmount(), x))
		}
	}
	for id, x := range s.payouts {
		if x.GetStatus() == paymentv1.PayoutStatus_PAYOUT_STATUS_SUCCEEDED && x.GetProcessor() == "acquirer" && !payouts[id] {
			v = append(v, fmt.Sprintf("I2: payout %s succeeded at the acquirer in payment, not approved there", id))
		}
	}
	return v
}

func approvedKeys(ops []*acquirerv1.Operation) map[string]bool {
	out := map[string]bool{}
	for _, op := range ops {
		if op.GetOutcome() == acquirerv1.Outcome_OUTCOME_APPROVED {
			out[op.GetKey()] = true
		}
	}
	return out
}

func refundAtAcquirer(s *chaosState, r *paymentv1.Refund) bool {
	for _, a := range s.payments[r.GetPaymentId()].GetAttempts() {
		if a.GetStatus() == paymentv1.AttemptStatus_ATTEMPT_STATUS_CAPTURED {
			return a.GetProcessor() == "acquirer"
		}
	}
	return false
}

// I4: each account's USD in risk is Σ captured deposits − Σ succeeded refunds − Σ succeeded payouts.
// A refund or payout debits risk before its processor is asked and credits it back when it fails for
// good, so a failed one nets to nothing; one risk refused never moved anything. payment's
// customer_funds:<account> ledger account mirrors the same sum, negated.
func checkRiskBalances(s *chaosState) []string {
	want := map[string]int64{}
	for _, p := range s.payments {
		if capturedStatus(p.GetStatus()) {
			want[p.GetAccountId()] += p.GetAmountCaptured().GetAmount()
		}
	}
	for _, r := range s.refunds {
		if r.GetStatus() == paymentv1.RefundStatus_REFUND_STATUS_SUCCEEDED {
			want[s.payments[r.GetPaymentId()].GetAccountId()] -= r.GetAmount().GetAmount()
		}
	}
	for _, x := range s.payouts {
		if x.GetStatus() == paymentv1.PayoutStatus_PAYOUT_STATUS_SUCCEEDED {
			want[x.GetAccountId()] -= x.GetAmount().GetAmount()
		}
	}
	funds := map[string]int64{}
	for _, b := range s.balance.GetBalances() {
		for _, a := range chaosAccounts {
			if b.GetLedgerAccount() == "customer_funds:"+a && b.GetCurrency() == "USD" {
				funds[a] += b.GetBalance()
			}
		}
	}
	var v []string
	for _, a := range chaosAccounts {
		if s.risk[a] != want[a] {
			v = append(v, fmt.Sprintf("I4: risk holds %d USD cents for %s, the settled payments, refunds and payouts make %d", s.risk[a], a, want[a]))
		}
		if funds[a] != -want[a] {
			v = append(v, fmt.Sprintf("I4: ledger customer_funds:%s is %d, want %d", a, funds[a], -want[a]))
		}
	}
	return v
}

// I5: the ledger sums to zero per currency, in total and in every transaction, and no movement is
// posted twice (one transaction per kind and reference).
func checkLedgerBalanced(s *chaosState) []string {
	var v []string
	for _, m := range s.balance.GetTotals() {
		if m.GetAmount() != 0 {
			v = append(v, fmt.Sprintf("I5: ledger %s sums to %d", m.GetCurrency(), m.GetAmount()))
		}
	}
	seen := map[string]int64{}
	for _, tx := range s.txs {
		sum := map[string]int64{}
		for _, e := range tx.GetEntries() {
			sum[e.GetCurrency()] += e.GetAmount()
		}
		for cur, n := range sum {
			if n != 0 {
				v = append(v, fmt.Sprintf("I5: transaction %d (%s %s) sums to %d %s", tx.GetTransactionId(), tx.GetKind(), tx.GetReference(), n, cur))
			}
		}
		k := tx.GetKind() + " " + tx.GetReference()
		if first, dup := seen[k]; dup {
			v = append(v, fmt.Sprintf("I5: %s posted twice (transactions %d and %d)", k, first, tx.GetTransactionId()))
		}
		seen[k] = tx.GetTransactionId()
	}
	return v
}

// I6: each payment's refunded amount is the sum of its succeeded refunds, never beyond its capture,
// and its status says so.
func checkPaymentsAddUp(s *chaosState) []string {
	refunded := map[string]int64{}
	for _, r := range s.refunds {
		if r.GetStatus() == paymentv1.RefundStatus_REFUND_STATUS_SUCCEEDED {
			refunded[r.GetPaymentId()] += r.GetAmount().GetAmount()
		}
	}
	var v []string
	for id, p := range s.payments {
		captured, ref := p.GetAmountCaptured().GetAmount(), p.GetAmountRefunded().GetAmount()
		want := p.GetStatus()
		switch {
		case !capturedStatus(p.GetStatus()):
			if captured != 0 || ref != 0 {
				v = append(v, fmt.Sprintf("I6: payment %s is %v with captured %d, refunded %d", id, p.GetStatus(), captured, ref))
			}
			continue
		case ref == 0:
			want = paymentv1.PaymentStatus_PAYMENT_STATUS_SUCCEEDED
		case ref < captured:
			want = paymentv1.PaymentStatus_PAYMENT_STATUS_PARTIALLY_REFUNDED
		default:
			want = paymentv1.PaymentStatus_PAYMENT_STATUS_REFUNDED
		}
		if ref != refunded[id] || ref > captured || captured > p.GetAmount().GetAmount() || captured <= 0 || p.GetStatus() != want {
			v = append(v, fmt.Sprintf("I6: payment %s is %v, amount %d, captured %d, refunded %d; its succeeded refunds sum to %d",
				id, p.GetStatus(), p.GetAmount().GetAmount(), captured, ref, refunded[id]))
		}
	}
	return v
}

// I7: every creation the client got an OK for exists, belongs to the account, and has not gone back
// on the outcome it was acknowledged with.
func checkAcknowledged(s *chaosState, b *chaosBook) []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var v []string
	for _, rec := range b.keys {
		if rec.id == "" {
			continue
		}
		var account, now string
		var ok bool
		switch rec.kind {
		case kindDeposit, kindCapture, kindCancel:
			var p *paymentv1.Payment
			if p, ok = s.payments[rec.id]; ok {
				account, now = p.GetAccountId(), p.GetStatus().String()
				if final(rec.status) && !sameOutcome(rec.status, now) {
					v = append(v, fmt.Sprintf("I7: %s %s acknowledged payment %s %s, it is now %s", rec.kind, rec.key, rec.id, rec.status, now))
				}
			}
		case kindRefund:
			var r *paymentv1.Refund
			if r, ok = s.refunds[rec.id]; ok {
				account, now = s.payments[r.GetPaymentId()].GetAccountId(), r.GetStatus().String()
			}
		case kindPayout:
			var x *paymentv1.Payout
			if x, ok = s.payouts[rec.id]; ok {
				account, now = x.GetAccountId(), x.GetStatus().String()
			}
		}
		switch {
		case !ok:
			v = append(v, fmt.Sprintf("I7: %s %s was acknowledged with %s (%s), which does not exist", rec.kind, rec.key, rec.id, rec.status))
		case account != rec.account:
			v = append(v, fmt.Sprintf("I7: %s %s: %s belongs to %s, not %s", rec.kind, rec.key, rec.id, account, rec.account))
		case (rec.kind == kindRefund || rec.kind == kindPayout) && final(rec.status) && rec.status != now:
			v = append(v, fmt.Sprintf("I7: %s %s acknowledged %s %s, it is now %s", rec.kind, rec.key, rec.id, rec.status, now))
		}
	}
	return v
}

func final(st string) bool {
	switch st {
	case "PAYMENT_STATUS_SUCCEEDED", "PAYMENT_STATUS_FAILED", "PAYMENT_STATUS_CANCELED",
		"REFUND_STATUS_SUCCEEDED", "REFUND_STATUS_FAILED", "PAYOUT_STATUS_SUCCEEDED", "PAYOUT_STATUS_FAILED":
		return true
	}
	return false
}

// sameOutcome: a succeeded payment may since have been refunded; nothing else changes a final one.
func sameOutcome(acked, now string) bool {
	if acked == "PAYMENT_STATUS_SUCCEEDED" {
		return now == acked || now == "PAYMENT_STATUS_PARTIALLY_REFUNDED" || now == "PAYMENT_STATUS_REFUNDED"
	}
	return acked == now
}

// I8: no idempotency key made two objects, and every object was made by a key the clients sent:
// each deposit and payout carries its key in metadata.chaos_key, each refund in its reason.
func checkOneObjectPerKey(s *chaosState, b *chaosBook) []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	byKey := map[string][]string{}
	var v []string
	own := func(kind keyKind, id, key string) {
		rec, ok := b.keys[key]
		switch {
		case !ok || rec.kind != kind:
			v = append(v, fmt.Sprintf("I8: %s %s carries key %q, which no client sent for a %s", kind, id, key, kind))
		case rec.id != "" && rec.id != id:
			v = append(v, fmt.Sprintf("I8: key %s was answered %s, yet made %s too", key, rec.id, id))
		}
		byKey[key] = append(byKey[key], id)
	}
	for id, p := range s.payments {
		own(kindDeposit, id, p.GetMetadata()["chaos_key"])
	}
	for id, r := range s.refunds {
		own(kindRefund, id, r.GetReason())
	}
	for id, x := range s.payouts {
		own(kindPayout, id, x.GetMetadata()["chaos_key"])
	}
	for key, ids := range byKey {
		if len(ids) > 1 {
			sort.Strings(ids)
			v = append(v, fmt.Sprintf("I8: key %s made %d objects: %v", key, len(ids), ids))
		}
	}
	return v
}
