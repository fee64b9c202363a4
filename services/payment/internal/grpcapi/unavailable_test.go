package grpcapi

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/bourse-dev/bourse/pkg/auth"
	"github.com/bourse-dev/bourse/pkg/errs"
	paymentv1 "github.com/bourse-dev/bourse/pkg/gen/bourse/payment/v1"
	"github.com/bourse-dev/bourse/pkg/testenv"
	"github.com/bourse-dev/bourse/services/payment/internal/flows"
	"github.com/bourse-dev/bourse/services/payment/internal/processor/instant"
	"github.com/bourse-dev/bourse/services/payment/internal/store"
)

// TestDatabaseDownIsUnavailable: while PostgreSQL is down (SIGKILLed, then in crash recovery) every
// request fails with Unavailable, which the client retries, never Internal; once the server is back
// the same process serves again on its pool, and the request retried with the same key is answered.
func TestDatabaseDownIsUnavailable(t *testing.T) {
	pg := testenv.StartPostgresServer(t)
	ctx := t.Context()
	st, err := store.Open(ctx, pg.URL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	svc := flows.New(flows.Config{Store: st, Router: flows.Static{instant.New("instant")}, ProcessorTimeout: time.Second})
	srv := New(svc)
	ctx = auth.WithIdentity(ctx, auth.Identity{Role: auth.RoleAccount, Subject: "alice"})
	pay := func(ctx context.Context, key string) (*paymentv1.CreatePaymentResponse, error) {
		return srv.CreatePayment(ctx, &paymentv1.CreatePaymentRequest{AccountId: "alice", Amount: &paymentv1.Money{Amount: 1000, Currency: "USD"},
			Method: paymentv1.PaymentMethod_PAYMENT_METHOD_CARD, PaymentToken: "tok_visa", IdempotencyKey: key})
	}
	first, err := pay(ctx, "k1")
	if err != nil {
		t.Fatal(err)
	}

	pg.Kill(t)
	calls := map[string]func(context.Context) error{
		"CreatePayment": func(ctx context.Context) error { _, err := pay(ctx, "k2"); return err },
		"GetPayment": func(ctx context.Context) error {
			_, err := srv.GetPayment(ctx, &paymentv1.GetPaymentRequest{PaymentId: first.GetPayment().GetPaymentId()})
			return err
		},
		"ListPayments": func(ctx context.Context) error {
			_, err := srv.ListPayments(ctx, &paymentv1.ListPaymentsRequest{AccountId: "alice"})
			return err
		},
	}
	// Twice each: the first call meets the pool's broken connections, the next dials anew.
	for range 2 {
		for name, call := range calls {
			cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			err := call(cctx)
			cancel()
			if status.Code(err) != codes.Unavailable {
				t.Errorf("%s with the database down: %v, want Unavailable", name, err)
			}
		}
	}

	pg.Restart(t)
	for name, call := range calls {
		if err := call(ctx); err != nil {
			t.Errorf("%s once the database is back: %v", name, err)
		}
	}
	again, err := pay(ctx, "k2")
	if err != nil || !again.GetReplayed() || again.GetPayment().GetStatus() != paymentv1.PaymentStatus_PAYMENT_STATUS_SUCCEEDED {
		t.Fatalf("k2 retried once the database is back: %v, %v; want its payment replayed as succeeded", again, err)
	}
}

// The codes of PostgreSQL's answers that are not verdicts on the request (pkg/sqldb proves a real
// server gives these SQLSTATEs): a transaction rolled back to end a conflict is Aborted, a
// cancelled statement Unavailable, both retryable with the same key; a refusal stays Internal.
func TestDatabaseConflictsAreRetryable(t *testing.T) {
	for state, want := range map[string]codes.Code{
		"40P01": codes.Aborted,     // deadlock_detected
		"40001": codes.Aborted,     // serialization_failure
		"57014": codes.Unavailable, // query_canceled (statement_timeout)
		"08006": codes.Unavailable, // connection_failure
		"25P03": codes.Unavailable, // idle_in_transaction_session_timeout: the session ended, rolled back
		"57P05": codes.Unavailable, // idle_session_timeout
		"23505": codes.Internal,    // unique_violation: a refusal a retry repeats
		"08P01": codes.Internal,    // protocol_violation: so is this
	} {
		err := errs.Wrap(errs.KindInternal, fmt.Errorf("store: %w", &pgconn.PgError{Code: state}), "create payment")
		if got := status.Code(toStatus(err)); got != want {
			t.Errorf("SQLSTATE %s: %v, want %v", state, got, want)
		}
	}
}
