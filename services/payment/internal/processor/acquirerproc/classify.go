package acquirerproc

import (
	"context"
	"errors"
	"sync/atomic"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/stats"
	"google.golang.org/grpc/status"

	"github.com/bourse-dev/bourse/services/payment/internal/processor"
)

// The rule that decides NotReached, the only status that lets payment try another processor. A call
// failed without reaching the acquirer only when one of these is proven:
//
//  1. No attempt of the call put its request headers on a connection. gRPC reports the stream's
//     creation to stats handlers (stats.OutHeader) right after the headers are queued on a live
//     transport; a call that ends without that event never left this process (connection refused,
//     no address resolved, the deadline passed while connecting). This is checked per call, not
//     inferred from the error: gRPC answers Unavailable both for "could not connect" and for "the
//     connection dropped after the request was written", and only the first is NotReached.
//  2. The acquirer answered with the ErrorInfo detail NOT_ACTED (domain acquirer.bourse): it
//     refused before deciding anything (an injected technical failure, a deadline already passed,
//     its log full).
//  3. The acquirer's runtime refused the caller (Unauthenticated, PermissionDenied): authorization
//     runs before any handler, so nothing was acted on.
//  4. InvalidArgument: the acquirer validates every field before acting. It is also returned as an
//     error, since it means this connector built a bad request.
//
// Everything else is Unknown: DeadlineExceeded, Canceled, Unavailable after the request was sent
// (a reset, an injected lost answer), Internal, Unknown, a response too large to read, AlreadyExists
// (the key was used with other parameters: the first use may have been approved). Only Lookup
// settles those.

// sentKey carries a call's tracker from the call's context to the stats handler.
type sentKey struct{}

// tracker records whether any attempt of one call reached a transport.
type tracker struct{ sent atomic.Bool }

func track(ctx context.Context) (context.Context, *tracker) {
	t := &tracker{}
	return context.WithValue(ctx, sentKey{}, t), t
}

// sentHandler is the client stats handler that feeds the trackers.
type sentHandler struct{}

func (sentHandler) TagRPC(ctx context.Context, _ *stats.RPCTagInfo) context.Context { return ctx }

func (sentHandler) HandleRPC(ctx context.Context, s stats.RPCStats) {
	if _, ok := s.(*stats.OutHeader); !ok {
		return
	}
	if t, ok := ctx.Value(sentKey{}).(*tracker); ok {
		t.sent.Store(true)
	}
}

func (sentHandler) TagConn(ctx context.Context, _ *stats.ConnTagInfo) context.Context { return ctx }
func (sentHandler) HandleConn(context.Context, stats.ConnStats)                       {}

// NotActedDomain and NotActedReason are the acquirer's ErrorInfo for "refused before deciding".
const (
	NotActedDomain = "acquirer.bourse"
	NotActedReason = "NOT_ACTED"
)

// classify turns a failed acting call into a Result and, for a malformed request, an error.
func classify(err error, sent bool) (processor.Result, error) {
	st := status.Convert(err)
	if !sent {
		return processor.Result{Status: processor.NotReached, Message: "request never sent: " + st.Message()}, nil
	}
	if notActed(st) {
		return processor.Result{Status: processor.NotReached, Message: "acquirer did not act: " + st.Message()}, nil
	}
	switch st.Code() {
	case codes.Unauthenticated, codes.PermissionDenied:
		return processor.Result{Status: processor.NotReached, Message: "acquirer refused this service's credentials: " + st.Message()}, nil
	case codes.InvalidArgument:
		return processor.Result{Status: processor.NotReached, Message: "acquirer refused the request: " + st.Message()},
			errors.New("acquirer: invalid request: " + st.Message())
	case codes.AlreadyExists:
		return processor.Result{Status: processor.Unknown, Message: st.Message()},
			errors.New("acquirer: idempotency key reused with different parameters: " + st.Message())
	}
	return processor.Result{Status: processor.Unknown, Message: st.Code().String() + ": " + st.Message()}, nil
}

func notActed(st *status.Status) bool {
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok && info.GetDomain() == NotActedDomain && info.GetReason() == NotActedReason {
			return true
		}
	}
	return false
}
