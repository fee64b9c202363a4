package store

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bourse-dev/bourse/pkg/testenv"
	"github.com/bourse-dev/bourse/services/payment/internal/domain"
	"github.com/bourse-dev/bourse/services/payment/internal/idempotency"
	"github.com/bourse-dev/bourse/services/payment/internal/ledger"
)

// onBoth runs fn against SQLite and PostgreSQL; the invariants are checked after each.
func onBoth(t *testing.T, fn func(t *testing.T, s *Store)) {
	t.Run("sqlite", func(t *testing.T) { run(t, filepath.Join(t.TempDir(), "payment.db"), fn) })
	t.Run("postgres", func(t *testing.T) { run(t, testenv.StartPostgres(t), fn) })
}

func run(t *testing.T, url string, fn func(t *testing.T, s *Store)) {
	s, err := Open(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	fn(t, s)
	if err := s.CheckInvariants(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func newPayment(t *testing.T, s *Store, amount int64) domain.Payment {
	t.Helper()
	p := domain.Payment{ID: domain.NewID("pay"), Caller: "account:alice", AccountID: "alice",
		Amount: domain.Money{Amount: amount, Currency: "USD"}, Method: domain.MethodCard,
		CaptureMethod: domain.CaptureAutomatic, Status: domain.PaymentProcessing}
	if err := s.InTx(context.Background(), func(tx *Tx) error { return tx.InsertPayment(context.Background(), &p) }); err != nil {
		t.Fatal(err)
	}
	return p
}

func capture(t *testing.T, s *Store, p *domain.Payment) {
	t.Helper()
	ctx := context.Background()
	err := s.InTx(ctx, func(tx *Tx) error {
		p.Status, p.Captured = domain.PaymentSucceeded, p.Amount.Amount
		if err := tx.SetPaymentStatus(ctx, p, domain.PaymentProcessing); err != nil {
			return err
		}
		return tx.Post(ctx, ledger.Captured(p.ID, "acquirer", p.AccountID, p.Amount))
	})
	if err != nil {
		t.Fatal(err)
	}
}

// Concurrent claims of one key (from many connections on PostgreSQL) leave exactly one owner.
func TestClaimKeyOneOwner(t *testing.T) {
	onBoth(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		var owners, others atomic.Int32
		var wg sync.WaitGroup
		for i := range 20 {
			wg.Go(func() {
				rec := idempotency.Record{Caller: "account:alice", Key: "k1", Method: "CreatePayment", Fingerprint: "f",
					State: idempotency.InFlight, ObjectID: fmt.Sprint(i)}
				err := s.InTx(ctx, func(tx *Tx) error {
					existing, claimed, err := tx.ClaimKey(ctx, rec, time.Hour)
					if err != nil {
						return err
					}
					if claimed {
						owners.Add(1)
					} else if existing.State == idempotency.InFlight && existing.Fingerprint == "f" {
						others.Add(1)
					}
					return nil
				})
				if err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		if owners.Load() != 1 || others.Load() != 19 {
			t.Fatalf("owners %d, others %d; want 1 and 19", owners.Load(), others.Load())
		}
		// Scoped to the caller: the same key from bob is his own.
		err := s.InTx(ctx, func(tx *Tx) error {
			_, claimed, err := tx.ClaimKey(ctx, idempotency.Record{Caller: "account:bob", Key: "k1", Method: "m", State: idempotency.InFlight}, time.Hour)
			if err == nil && !claimed {
				err = errors.New("bob's key was taken by alice's")
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	})
}

// A record past retention is replaced by a new request; an in-flight one never is.
func TestClaimKeyRetention(t *testing.T) {
	onBoth(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		now := time.Now()
		s.SetClock(func() time.Time { return now })
		claim := func(key, fp string) (idempotency.Record, bool) {
			var existing idempotency.Record
			var claimed bool
			err := s.InTx(ctx, func(tx *Tx) error {
				var err error
				existing, claimed, err = tx.ClaimKey(ctx, idempotency.Record{Caller: "c", Key: key, Method: "m", Fingerprint: fp, State: idempotency.InFlight}, 24*time.Hour)
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
			return existing, claimed
		}
		start := now
		if _, ok := claim("done", "a"); !ok {
			t.Fatal("first claim failed")
		}
		if _, ok := claim("inflight", "a"); !ok {
			t.Fatal("first claim failed")
		}
		if err := s.InTx(ctx, func(tx *Tx) error { return tx.CompleteKey(ctx, "c", "done", []byte(`{}`), nil) }); err != nil {
			t.Fatal(err)
		}
		now = start.Add(23 * time.Hour)
		if ex, ok := claim("done", "b"); ok || ex.State != idempotency.Done || ex.Fingerprint != "a" {
			t.Fatalf("done record within its retention: claimed %v, %+v", ok, ex)
		}
		now = start.Add(25 * time.Hour)
		if _, ok := claim("inflight", "b"); ok {
			t.Fatal("an in-flight record was replaced after retention")
		}
		if _, ok := claim("done", "b"); !ok {
			t.Fatal("expired record not replaced")
		}
	})
}

// Concurrent refund reservations never exceed the captured amount.
func TestReserveRefundNeverExceedsCaptured(t *testing.T) {
	onBoth(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		p := newPayment(t, s, 1000)
		capture(t, s, &p)
		var ok, refused atomic.Int32
		var wg sync.WaitGroup
		for range 30 {
			wg.Go(func() {
				err := s.InTx(ctx, func(tx *Tx) error { return tx.ReserveRefund(ctx, p.ID, 70) })
				switch {
				case err == nil:
					ok.Add(1)
				case errors.Is(err, ErrConflict):
					refused.Add(1)
				default:
					t.Error(err)
				}
			})
		}
		wg.Wait()
		if ok.Load() != 14 || refused.Load() != 16 {
			t.Fatalf("reserved %d, refused %d; want 14 (980 of 1000) and 16", ok.Load(), refused.Load())
		}
		got, err := s.GetPayment(ctx, p.ID)
		if err != nil || got.RefundReserved != 980 {
			t.Fatalf("refund_reserved %d, %v", got.RefundReserved, err)
		}
	})
}

// A payment's status changes by compare-and-set: the second of two settlements of the same payment
// loses, and the ledger posts once.
func TestSetPaymentStatusCompareAndSet(t *testing.T) {
	onBoth(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		p := newPayment(t, s, 500)
		capture(t, s, &p)
		q := p
		q.Status = domain.PaymentFailed
		err := s.InTx(ctx, func(tx *Tx) error { return tx.SetPaymentStatus(ctx, &q, domain.PaymentProcessing) })
		if !errors.Is(err, ErrConflict) {
			t.Fatalf("second settlement: %v, want ErrConflict", err)
		}
		err = s.InTx(ctx, func(tx *Tx) error { return tx.Post(ctx, ledger.Captured(p.ID, "acquirer", p.AccountID, p.Amount)) })
		if err == nil {
			t.Fatal("the same ledger transaction posted twice")
		}
		bs, err := s.Balances(ctx, ledger.Customer("alice"), "USD")
		if err != nil || len(bs) != 1 || bs[0].Amount != -500 {
			t.Fatalf("customer balance %+v, %v", bs, err)
		}
	})
}

// Outbox items are leased: claimed items are not handed out again until the lease passes, and a
// finished one is gone.
func TestOutboxLease(t *testing.T) {
	onBoth(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		now := time.Now()
		s.SetClock(func() time.Time { return now })
		for i := range 3 {
			if err := s.InTx(ctx, func(tx *Tx) error {
				return tx.Enqueue(ctx, "risk_credit", fmt.Sprint("pay_", i), map[string]int{"i": i})
			}); err != nil {
				t.Fatal(err)
			}
		}
		a, err := s.ClaimOutbox(ctx, 2, time.Minute)
		if err != nil || len(a) != 2 {
			t.Fatalf("claim: %d, %v", len(a), err)
		}
		b, err := s.ClaimOutbox(ctx, 10, time.Minute)
		if err != nil || len(b) != 1 || b[0].ID == a[0].ID || b[0].ID == a[1].ID {
			t.Fatalf("second claim: %+v, %v; want only the third item", b, err)
		}
		if err := s.FinishOutbox(ctx, a[0].ID, nil); err != nil {
			t.Fatal(err)
		}
		now = now.Add(2 * time.Minute)
		c, err := s.ClaimOutbox(ctx, 10, time.Minute)
		if err != nil || len(c) != 2 || c[0].Tries != 2 {
			t.Fatalf("after the lease: %+v, %v; want the two unfinished items, tried twice", c, err)
		}
	})
}
