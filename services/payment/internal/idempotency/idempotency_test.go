package idempotency

import (
	"errors"
	"testing"
	"time"

	"github.com/bourse-dev/bourse/pkg/errs"
)

func TestCheck(t *testing.T) {
	done := Record{Method: "CreatePayment", Fingerprint: Fingerprint(map[string]int{"a": 1}), State: Done}
	if err := done.Check("CreatePayment", Fingerprint(map[string]int{"a": 1})); err != nil {
		t.Fatalf("same parameters: %v", err)
	}
	for name, err := range map[string]error{
		"other parameters": done.Check("CreatePayment", Fingerprint(map[string]int{"a": 2})),
		"other method":     done.Check("CreatePayout", done.Fingerprint),
	} {
		if e, ok := errors.AsType[*errs.Error](err); !ok || e.Field != "idempotency_key" || e.Kind != errs.KindInvalidArgument {
			t.Errorf("%s: %v, want InvalidArgument on idempotency_key", name, err)
		}
	}
	inflight := done
	inflight.State = InFlight
	if err := inflight.Check(done.Method, done.Fingerprint); !errors.Is(err, ErrInUse) {
		t.Errorf("in flight: %v, want ErrInUse", err)
	}
	failed := done
	failed.ErrKind, failed.ErrMsg = errs.KindFailedPrecondition, "payment: not capturable"
	if err := failed.Check(done.Method, done.Fingerprint); errs.KindOf(err) != errs.KindFailedPrecondition || err.Error() != failed.ErrMsg {
		t.Errorf("saved error: %v, want it replayed", err)
	}
}

func TestExpired(t *testing.T) {
	now := time.Now()
	r := Record{State: Done, CreatedAt: now.Add(-25 * time.Hour)}
	if !r.Expired(now, DefaultRetention) {
		t.Error("25h old record not expired")
	}
	r.CreatedAt = now.Add(-time.Hour)
	if r.Expired(now, DefaultRetention) {
		t.Error("1h old record expired")
	}
	r.State, r.CreatedAt = InFlight, now.Add(-48*time.Hour)
	if r.Expired(now, DefaultRetention) {
		t.Error("an in-flight record expired: its request could still complete and then be executed again")
	}
}
