package server

import (
	"context"
	"errors"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/bourse-dev/bourse/pkg/errs"
)

var kindCodes = map[errs.Kind]codes.Code{
	errs.KindInternal:           codes.Internal,
	errs.KindInvalidArgument:    codes.InvalidArgument,
	errs.KindNotFound:           codes.NotFound,
	errs.KindAlreadyExists:      codes.AlreadyExists,
	errs.KindFailedPrecondition: codes.FailedPrecondition,
	errs.KindPermissionDenied:   codes.PermissionDenied,
	errs.KindUnauthenticated:    codes.Unauthenticated,
	errs.KindResourceExhausted:  codes.ResourceExhausted,
	errs.KindUnavailable:        codes.Unavailable,
}

// ToStatus maps a handler's error to a gRPC status error: this is the one place domain errors become
// codes. Status errors pass through; context errors become Canceled / DeadlineExceeded; anything else
// is Internal without leaking its text.
func ToStatus(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	if e, ok := errors.AsType[*errs.Error](err); ok {
		code := kindCodes[e.Kind]
		if code == codes.Internal {
			return status.Error(codes.Internal, "internal error")
		}
		return status.Error(code, e.Error())
	}
	switch {
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, err.Error())
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, err.Error())
	}
	return status.Error(codes.Internal, "internal error")
}

// FromStatus turns an error from a call to another service into a domain error of the matching
// kind, prefixed with what was called, so a handler that returns it answers with the same code
// (Unavailable stays retryable, NotFound stays NotFound). Unknown codes become Unavailable.
//
// The dependency's verdict on this service's own credentials is not the client's: Unauthenticated,
// PermissionDenied and ResourceExhausted from risk mean risk refused or throttled matching, and
// matching's caller must not read "unknown API key" as a verdict on their key. They become
// Unavailable (the service cannot serve until an operator fixes its credentials or the load passes)
// with a message that says whose credentials were refused.
func FromStatus(err error, what string) error {
	if err == nil {
		return nil
	}
	st, ok := status.FromError(err)
	if !ok {
		return errs.Wrap(errs.KindUnavailable, err, "%s", what)
	}
	switch st.Code() {
	case codes.Unauthenticated, codes.PermissionDenied:
		return errs.New(errs.KindUnavailable, "%s: this service's credentials were refused by the dependency (%s); operators: check its key", what, st.Code())
	case codes.ResourceExhausted:
		return errs.New(errs.KindUnavailable, "%s: the dependency is throttling this service; retry later", what)
	}
	for kind, code := range kindCodes {
		if code == st.Code() && code != codes.Internal {
			return errs.New(kind, "%s: %s", what, st.Message())
		}
	}
	return errs.New(errs.KindUnavailable, "%s: %s: %s", what, st.Code(), st.Message())
}
