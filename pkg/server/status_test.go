package server

import (
	"errors"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/bourse-dev/bourse/pkg/errs"
)

func TestFromStatusKeepsTheKind(t *testing.T) {
	cases := map[codes.Code]errs.Kind{
		codes.InvalidArgument:    errs.KindInvalidArgument,
		codes.NotFound:           errs.KindNotFound,
		codes.FailedPrecondition: errs.KindFailedPrecondition,
		codes.Unavailable:        errs.KindUnavailable,
		codes.Internal:           errs.KindUnavailable,
		codes.DeadlineExceeded:   errs.KindUnavailable,
	}
	for code, want := range cases {
		err := FromStatus(status.Error(code, "boom"), "risk.CheckOrders")
		if got := errs.KindOf(err); got != want {
			t.Errorf("%s: kind %v, want %v (%v)", code, got, want, err)
		}
	}
	if FromStatus(nil, "x") != nil {
		t.Fatal("nil must stay nil")
	}
	if got := errs.KindOf(FromStatus(errors.New("dial failed"), "x")); got != errs.KindUnavailable {
		t.Fatalf("a plain error: %v", got)
	}
}
