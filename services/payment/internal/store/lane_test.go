package store

import (
	"context"
	"encoding/json"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/bourse-dev/bourse/services/payment/internal/domain"
	"github.com/bourse-dev/bourse/services/payment/internal/idempotency"
	"github.com/bourse-dev/bourse/services/payment/internal/ledger"
)

// The deposit lanes' tests build claims and verdicts as flows does (flows/lane.go) and write the same
// deposits through the general path (InTx with the Tx methods flows' claim and settleAuthorize use)
// to compare.

const laneMethod = "CreatePayment"

// laneDeposit is the lane claim of a new automatic-capture deposit of amount by account under key.
func laneDeposit(s *Store, account, key string, amount int64) *NewDeposit {
	at := s.RowTime()
	p := domain.Payment{ID: domain.NewID("pay"), Caller: "account:" + account, AccountID: account,
		Amount: domain.Money{Amount: amount, Currency: "USD"}, Method: domain.MethodCard, CaptureMethod: domain.CaptureAutomatic,
		Status: domain.PaymentProcessing, Metadata: map[string]string{"order": key}, CreatedAt: at, UpdatedAt: at}
	a := &domain.Attempt{ID: domain.NewID("att"), PaymentID: p.ID, Processor: "acquirer", Status: domain.AttemptPending,
		PendingOp: domain.OpAuthorize, NextLookupAt: at.Add(5 * time.Second), CreatedAt: at, UpdatedAt: at}
	data, err := json.Marshal(p)
	if err != nil {
		panic(err)
	}
	return &NewDeposit{At: at,
		Key: idempotency.Record{Caller: p.Caller, Key: key, Method: laneMethod, Fingerprint: "fp:" + key, State: idempotency.InFlight,
			ObjectID: p.ID, CreatedAt: at},
		Payment: p, Attempt: a,
		Event: EventRow{ID: domain.NewID("evt"), Type: "payment.created", AccountID: account, ObjectID: p.ID, Data: data}}
}

// laneVerdict is the verdict on d's attempt: captured when approve, declined otherwise.
func laneVerdict(s *Store, d *NewDeposit, approve bool) *DepositVerdict {
	at := s.RowTime()
	p, a := d.Payment, *d.Attempt
	v := &DepositVerdict{At: at, AttemptFrom: a.Status, AttemptFromOp: a.PendingOp, PaymentFrom: p.Status,
		Caller: p.Caller, Key: d.Key.Key, Method: laneMethod}
	a.PendingOp, a.UpdatedAt, p.UpdatedAt = domain.OpNone, at, at
	if approve {
		a.Status, a.ProcessorRef = domain.AttemptCaptured, "ref_"+a.ID
		p.Status, p.Captured = domain.PaymentSucceeded, p.Amount.Amount
		lt := ledger.Captured(p.ID, a.Processor, p.AccountID, domain.Money{Amount: p.Captured, Currency: p.Amount.Currency})
		v.Ledger = &lt
		v.Outbox = &OutboxRow{Kind: "risk_credit", Ref: p.ID, Payload: []byte(`{"payment_id":"` + p.ID + `"}`)}
	} else {
		a.Status, a.DeclineCode = domain.AttemptFailed, "insufficient_funds"
		p.Status, p.DeclineReason, p.DeclineCode = domain.PaymentFailed, domain.ReasonForCode(a.DeclineCode), a.DeclineCode
	}
	v.Attempt, v.Payment = a, p
	data, err := json.Marshal(p)
	if err != nil {
		panic(err)
	}
	v.Event = EventRow{ID: domain.NewID("evt"), Type: "payment." + string(p.Status), AccountID: p.AccountID, ObjectID: p.ID, Data: data}
	p.Attempts = []domain.Attempt{a}
	if v.Result, err = json.Marshal(p); err != nil {
		panic(err)
	}
	return v
}

// claimGeneral writes d as flows' general path does: the key's claim, then payment, attempt and
// event in the same transaction. claimed false: the key has a record, and nothing was written.
func claimGeneral(t *testing.T, s *Store, d *NewDeposit) bool {
	t.Helper()
	claimed, err := tryClaimGeneral(s, d)
	if err != nil {
		t.Fatal(err)
	}
	return claimed
}

// tryClaimGeneral is claimGeneral for any goroutine.
func tryClaimGeneral(s *Store, d *NewDeposit) (bool, error) {
	ctx := context.Background()
	var claimed bool
	err := s.InTx(ctx, func(tx *Tx) error {
		var err error
		if _, claimed, err = tx.ClaimKey(ctx, d.Key, time.Hour); err != nil || !claimed {
			return err
		}
		p, a := d.Payment, *d.Attempt
		if err := tx.InsertPayment(ctx, &p); err != nil {
			return err
		}
		if err := tx.InsertAttempt(ctx, &a); err != nil {
			return err
		}
		return tx.AddEvent(ctx, "payment.created", p.AccountID, p.ID, p)
	})
	return claimed && err == nil, err
}

// settleGeneral writes v as settleAuthorize does: compare-and-set of attempt and payment, ledger
// and outbox for a capture, the event, and the key's result as completeWith renders it (the payment
// with its attempts as the transaction reads them). ErrConflict: the attempt was settled already.
func settleGeneral(s *Store, v *DepositVerdict) error {
	ctx := context.Background()
	return s.InTx(ctx, func(tx *Tx) error {
		// As settleAuthorize: the verdict applied to the attempt and payment as the transaction
		// reads them.
		a, err := tx.Attempt(ctx, v.Attempt.ID)
		if err != nil {
			return err
		}
		p, err := tx.Payment(ctx, v.Payment.ID)
		if err != nil {
			return err
		}
		a.Status, a.PendingOp, a.ProcessorRef, a.DeclineCode = v.Attempt.Status, v.Attempt.PendingOp, v.Attempt.ProcessorRef, v.Attempt.DeclineCode
		p.Status, p.Captured, p.DeclineReason, p.DeclineCode = v.Payment.Status, v.Payment.Captured, v.Payment.DeclineReason, v.Payment.DeclineCode
		if err := tx.UpdateAttempt(ctx, &a, v.AttemptFrom, v.AttemptFromOp); err != nil {
			return err
		}
		if err := tx.SetPaymentStatus(ctx, &p, v.PaymentFrom); err != nil {
			return err
		}
		if v.Ledger != nil {
			if err := tx.Post(ctx, *v.Ledger); err != nil {
				return err
			}
			if err := tx.Enqueue(ctx, v.Outbox.Kind, v.Outbox.Ref, json.RawMessage(v.Outbox.Payload)); err != nil {
				return err
			}
		}
		if err := tx.AddEvent(ctx, v.Event.Type, p.AccountID, p.ID, p); err != nil {
			return err
		}
		atts, err := tx.Attempts(ctx, p.ID)
		if err != nil {
			return err
		}
		p.Attempts = atts
		b, err := json.Marshal(p)
		if err != nil {
			return err
		}
		return tx.CompleteKeysOf(ctx, v.Method, p.ID, b)
	})
}

// keyRecord reads (caller, key)'s record through the store's own read (zero Method: none).
func keyRecord(t *testing.T, s *Store, caller, key string) idempotency.Record {
	t.Helper()
	rec, _, err := s.FinishedKey(context.Background(), caller, key, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return rec
}

// count runs a COUNT(*) query.
func count(t *testing.T, s *Store, q string, args ...any) int {
	t.Helper()
	var n int
	if err := s.queryRow(context.Background(), q, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

// events reads the account's events (the whole log must fit one page) by id.
func events(t *testing.T, s *Store, account string) map[string]domain.Event {
	t.Helper()
	out := map[string]domain.Event{}
	// On PostgreSQL an event is listed once every transaction begun before its own has ended: a
	// lane's idle connection holds none open, but the server may take a moment to show it.
	var evs []domain.Event
	for range 50 {
		var err error
		if evs, err = s.ListEvents(context.Background(), account, "", 0, 10000); err != nil {
			t.Fatal(err)
		}
		if n := count(t, s, `SELECT COUNT(*) FROM events WHERE account_id = ?`, account); len(evs) == n {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, e := range evs {
		out[e.ID] = e
	}
	return out
}

// claimAll submits the claims concurrently (so that they share lane batches) and returns which were
// claimed.
func claimAll(t *testing.T, s *Store, ds []*NewDeposit) []bool {
	t.Helper()
	return submitAll(t, "claim", ds, s.ClaimDeposit)
}

// applyAll submits the verdicts concurrently and returns which were applied.
func applyAll(t *testing.T, s *Store, vs []*DepositVerdict) []bool {
	t.Helper()
	return submitAll(t, "verdict", vs, s.ApplyVerdict)
}

func submitAll[T any](t *testing.T, what string, items []T, submit func(context.Context, T) (bool, error)) []bool {
	t.Helper()
	done := make([]bool, len(items))
	var wg sync.WaitGroup
	for i, it := range items {
		wg.Go(func() {
			ok, err := submit(context.Background(), it)
			if err != nil {
				t.Errorf("%s %d: %v", what, i, err)
			}
			done[i] = ok
		})
	}
	wg.Wait()
	return done
}

// wantStored checks that d (and v, if set) read back through GetPayment, the key's record and the
// event log as they were given.
func wantStored(t *testing.T, s *Store, d *NewDeposit, v *DepositVerdict, evs map[string]domain.Event) {
	t.Helper()
	want := d.Payment
	want.Attempts = []domain.Attempt{*d.Attempt}
	wantKey := d.Key
	wantEvents := []EventRow{d.Event}
	if v != nil {
		want = v.Payment
		want.Attempts = []domain.Attempt{v.Attempt}
		wantKey.State, wantKey.Response = idempotency.Done, v.Result
		wantEvents = append(wantEvents, v.Event)
	}
	got, err := s.GetPayment(context.Background(), d.Payment.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("payment read back\n%+v\nwant\n%+v", got, want)
	}
	rec := keyRecord(t, s, d.Key.Caller, d.Key.Key)
	if len(rec.Response) == 0 {
		rec.Response = nil
	}
	if !reflect.DeepEqual(rec, wantKey) {
		t.Fatalf("key record\n%+v\nwant\n%+v", rec, wantKey)
	}
	for _, e := range wantEvents {
		got, ok := evs[e.ID]
		if !ok || got.Type != e.Type || got.AccountID != e.AccountID || got.ObjectID != e.ObjectID || string(got.Data) != string(e.Data) ||
			!got.CreatedAt.Equal(want.UpdatedAt) && !got.CreatedAt.Equal(want.CreatedAt) {
			t.Fatalf("event %s read back %+v (found %v), want %+v", e.ID, got, ok, e)
		}
	}
	if n := count(t, s, `SELECT COUNT(*) FROM events WHERE object_id = ?`, d.Payment.ID); n != len(wantEvents) {
		t.Fatalf("payment %s has %d events, want %d", d.Payment.ID, n, len(wantEvents))
	}
}
