package payment_test

import (
	"context"
	"fmt"
	"sort"
	"strings"

	paymentv1 "github.com/bourse-dev/bourse/pkg/gen/bourse/payment/v1"
	riskv1 "github.com/bourse-dev/bourse/pkg/gen/bourse/risk/v1"
)

// riskRefEvidence finds, after I4 failed, which of payment's transfers risk is missing or holds
// wrongly. Risk answers a Credit or Debit repeated with the same ref and content as a duplicate, so
// repeating each one payment should have made tells whether risk has it. A repeat risk did not have
// is applied by the probe: this runs only on a failed run, and says so in what it reports.
func riskRefEvidence(ctx context.Context, c *chaosStack, s *chaosState, account string) string {
	r := c.riskClient()
	dec := func(cents int64) string { return fmt.Sprintf("%d.%02d", cents/100, cents%100) }
	var out []string
	credit := func(ref string, cents int64) (bool, error) {
		res, err := r.Credit(ctx, &riskv1.CreditRequest{AccountId: account, AssetId: "USD", Amount: dec(cents), Ref: ref})
		return res.GetDuplicate(), err
	}
	debit := func(ref string, cents int64) (bool, error) {
		res, err := r.Debit(ctx, &riskv1.DebitRequest{AccountId: account, AssetId: "USD", Amount: dec(cents), Ref: ref})
		return res.GetDuplicate(), err
	}
	// Gross sums of what risk has with payment's refs, to compare with risk's Audit (all accounts).
	var grossCredits, grossDebits int64
	for id, p := range s.payments {
		if p.GetAccountId() != account || !capturedStatus(p.GetStatus()) {
			continue
		}
		grossCredits += p.GetAmountCaptured().GetAmount()
		if dup, err := credit(id, p.GetAmountCaptured().GetAmount()); err != nil || !dup {
			out = append(out, fmt.Sprintf("payment %s captured %d: risk had no credit with its ref (probe: %v)", id, p.GetAmountCaptured().GetAmount(), err))
		}
	}
	saga := func(kind, id string, cents int64, succeeded bool, code string) {
		dup, err := debit(id, cents)
		switch {
		case succeeded && (err != nil || !dup):
			out = append(out, fmt.Sprintf("%s %s succeeded (%d): risk had no debit with its ref (probe: %v)", kind, id, cents, err))
		case succeeded:
			grossDebits += cents
		case err == nil && dup:
			// Debited once: it must have been credited back.
			grossDebits += cents
			if dup, err := credit(id+":reversal", cents); err != nil || !dup {
				out = append(out, fmt.Sprintf("%s %s failed (%s, %d): risk has its debit but no reversal (probe: %v)", kind, id, code, cents, err))
			} else {
				grossCredits += cents
			}
		case err == nil:
			// Never debited (risk refused it, or the saga failed before): the probe just did; undo it.
			if _, err := credit(id+":probe-undo", cents); err != nil {
				out = append(out, fmt.Sprintf("%s %s: undoing the probe's debit: %v", kind, id, err))
			}
		}
	}
	for id, x := range s.refunds {
		if s.payments[x.GetPaymentId()].GetAccountId() == account {
			saga("refund", id, x.GetAmount().GetAmount(), x.GetStatus() == paymentv1.RefundStatus_REFUND_STATUS_SUCCEEDED, x.GetDeclineCode())
		}
	}
	for id, x := range s.payouts {
		if x.GetAccountId() == account {
			saga("payout", id, x.GetAmount().GetAmount(), x.GetStatus() == paymentv1.PayoutStatus_PAYOUT_STATUS_SUCCEEDED,
				x.GetDeclineReason().String()+"/"+x.GetDeclineCode())
		}
	}
	sort.Strings(out)
	out = append(out, knownTransfers(s, account), fmt.Sprintf("risk has with payment's refs for %s: credits %d, debits %d (gross, cents)",
		account, grossCredits, grossDebits))
	if len(out) == 2 {
		return "risk has every transfer payment made for " + account + " exactly as payment has it; " + strings.Join(out, "; ")
	}
	return "risk's transfers for " + account + " compared with payment's:\n" + strings.Join(out, "\n")
}

// knownTransfers sums what payment made risk credit and debit for account (before any probe).
func knownTransfers(s *chaosState, account string) string {
	var credits, debits int64
	for _, p := range s.payments {
		if p.GetAccountId() == account && capturedStatus(p.GetStatus()) {
			credits += p.GetAmountCaptured().GetAmount()
		}
	}
	for _, r := range s.refunds {
		if s.payments[r.GetPaymentId()].GetAccountId() == account && r.GetStatus() == paymentv1.RefundStatus_REFUND_STATUS_SUCCEEDED {
			debits += r.GetAmount().GetAmount()
		}
	}
	for _, x := range s.payouts {
		if x.GetAccountId() == account && x.GetStatus() == paymentv1.PayoutStatus_PAYOUT_STATUS_SUCCEEDED {
			debits += x.GetAmount().GetAmount()
		}
	}
	var payments, refunds, payouts int
	for _, p := range s.payments {
		if p.GetAccountId() == account {
			payments++
		}
	}
	for _, r := range s.refunds {
		if s.payments[r.GetPaymentId()].GetAccountId() == account {
			refunds++
		}
	}
	for _, x := range s.payouts {
		if x.GetAccountId() == account {
			payouts++
		}
	}
	return fmt.Sprintf("payment: %s credited %d, debited %d net of reversals; %d payments, %d refunds, %d payouts of the account seen",
		account, credits, debits, payments, refunds, payouts)
}

// riskAudit is risk's own per-asset sums (every account), before any probe.
func riskAudit(ctx context.Context, c *chaosStack) string {
	a, err := c.riskClient().Audit(ctx, &riskv1.AuditRequest{})
	if err != nil {
		return "risk Audit: " + err.Error()
	}
	var b strings.Builder
	fmt.Fprintf(&b, "risk Audit: consistent %v %s", a.GetConsistent(), a.GetProblem())
	for _, x := range a.GetAssets() {
		fmt.Fprintf(&b, "; %s total %s credits %s debits %s", x.GetAssetId(), x.GetTotal(), x.GetCredits(), x.GetDebits())
	}
	return b.String()
}
