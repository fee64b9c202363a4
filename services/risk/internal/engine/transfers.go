package engine

import (
	"strconv"

	"github.com/bourse-dev/bourse/pkg/errs"
)

// maxRefLen bounds idempotency references.
const maxRefLen = 256

// Transfer moves money into (Credit) or out of (Debit) an account from outside the engine: deposits,
// withdrawals, adjustments. Ref is the caller's idempotency key, unique among the credits and debits
// of one account: repeating a transfer with the same Ref and content is a no-op that returns the
// first result, while reusing a Ref for different content is refused. Refs are scoped per account so
// that one account cannot take a ref another account's transfer will need (a debit of 0.01 with
// ref "deposit-bob-2" would otherwise block the operator's later credit to bob), and no answer
// reveals whether another account used a ref.
type Transfer struct {
	Account string `json:"account"`
	Asset   string `json:"asset"`
	Amount  int64  `json:"amount"` // > 0, in asset units
	Ref     string `json:"ref"`
}

// TransferResult reports a completed transfer.
type TransferResult struct {
	Seq   uint64 // the event that applied it
	Total int64  // the account's total balance in the asset right after it
	// Duplicate is true when Ref had already been applied; the other fields are then the first
	// result.
	Duplicate bool
}

// transferRecord remembers an applied transfer for idempotency; it is rebuilt by replay.
type transferRecord struct {
	kind   EventKind
	t      Transfer
	result TransferResult
}

// Credit adds Amount to the account's balance.
func (e *Engine) Credit(t Transfer, persist PersistFunc) (TransferResult, error) {
	e.commitMu.Lock()
	defer e.commitMu.Unlock()
	return e.transfer(EventCredit, t, persist, false)
}

// Debit removes Amount from the account's balance. It never takes more than is available: funds
// reserved by open orders are untouchable.
func (e *Engine) Debit(t Transfer, persist PersistFunc) (TransferResult, error) {
	e.commitMu.Lock()
	defer e.commitMu.Unlock()
	return e.transfer(EventDebit, t, persist, false)
}

// transfer applies a credit or debit. When replaying, a debit is checked against the total only:
// reservations are not part of the log, and the debit was checked against availability when it was
// first made.
func (e *Engine) transfer(kind EventKind, t Transfer, persist PersistFunc, replay bool) (TransferResult, error) {
	switch {
	case t.Ref == "" || len(t.Ref) > maxRefLen:
		return TransferResult{}, errs.Invalid("transfer.ref", "must be 1 to %d bytes", maxRefLen)
	case t.Amount <= 0:
		return TransferResult{}, errs.Invalid("transfer.amount", "must be positive")
	}
	if rec, ok := e.refs[refKey(t.Account, t.Ref)]; ok {
		if rec.kind != kind || rec.t != t {
			return TransferResult{}, errs.New(errs.KindAlreadyExists, "transfer ref %q was already used for a different %s", t.Ref, rec.kind)
		}
		res := rec.result
		res.Duplicate = true
		return res, nil
	}
	acct, err := e.lookupAccount("transfer.account", t.Account)
	if err != nil {
		return TransferResult{}, err
	}
	a := e.catalog.Load().assets[t.Asset]
	if a == nil {
		return TransferResult{}, errs.New(errs.KindNotFound, "transfer.asset: unknown asset %q", t.Asset)
	}

	acct.mu.Lock()
	defer acct.mu.Unlock()
	bal := acct.balanceOf(a.index)
	var total int64
	if kind == EventCredit {
		var ok bool
		if total, ok = addChecked(bal.total, t.Amount); !ok {
			return TransferResult{}, errs.Invalid("transfer.amount", "balance would overflow")
		}
	} else {
		free := bal.available()
		if replay {
			free = bal.total
		}
		if t.Amount > free {
			return TransferResult{}, errs.New(errs.KindFailedPrecondition, "insufficient available balance: %d %s available, %d requested", free, t.Asset, t.Amount)
		}
		total = bal.total - t.Amount
	}
	ev := Event{Kind: kind, Transfer: &t}
	err = e.commit(&ev, persist, func() {
		acct.balanceRef(a.index).total = total
		e.refs[refKey(t.Account, t.Ref)] = transferRecord{kind: kind, t: t, result: TransferResult{Seq: ev.Seq, Total: total}}
	})
	if err != nil {
		return TransferResult{}, err
	}
	return TransferResult{Seq: ev.Seq, Total: total}, nil
}

// refKey scopes a transfer ref to its account. The length prefix keeps keys of different accounts
// apart whatever bytes an account id holds.
func refKey(account, ref string) string { return strconv.Itoa(len(account)) + ":" + account + ref }
