package server

import (
	"errors"
	"strings"
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

// A dependency refusing this service's credentials is not the client's auth error: matching's users
// must never read risk's "unknown API key" as a verdict on their own key.
func TestFromStatusHidesTheDependencysAuthVerdict(t *testing.T) {
	for _, code := range []codes.Code{codes.Unauthenticated, codes.PermissionDenied, codes.ResourceExhausted} {
		err := FromStatus(status.Error(code, "unknown API key"), "risk.CheckOrders")
		st := status.Convert(ToStatus(err))
		if st.Code() != codes.Unavailable {
			t.Errorf("%s from risk reaches the client as %s", code, st.Code())
		}
		if strings.Contains(st.Message(), "unknown API key") || !strings.HasPrefix(st.Message(), "risk.CheckOrders: ") {
			t.Errorf("%s from risk: client reads %q", code, st.Message())
		}
	}
	st := status.Convert(ToStatus(FromStatus(status.Error(codes.Unauthenticated, "unknown API key"), "risk.CheckOrders")))
	if !strings.Contains(st.Message(), "this service's credentials were refused") {
		t.Errorf("message %q does not say whose credentials were refused", st.Message())
	}
}
