package cli

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Exit codes, stable for scripts.
const (
	ExitOK          = 0
	ExitFailed      = 1 // the call was made and failed (a state that forbids it, a server error)
	ExitUsage       = 2 // bad command line or a field the server refused (InvalidArgument)
	ExitUnreachable = 3 // no instance to call, or it did not answer
	ExitAuth        = 4 // missing, unknown or insufficient API key
	ExitNotFound    = 5 // what was asked for does not exist (or is not yours)
)

// exitError carries the exit code and the one line to print.
type exitError struct {
	code int
	msg  string
}

func (e *exitError) Error() string { return e.msg }

func usageError(format string, args ...any) error {
	return &exitError{code: ExitUsage, msg: fmt.Sprintf(format, args...)}
}

// explain turns an error of a call to service (at target) into one readable line and its exit code,
// saying what to do about it where we know.
func explain(err error, service, target string) *exitError {
	var ee *exitError
	if errors.As(err, &ee) {
		return ee
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return &exitError{ExitUnreachable, fmt.Sprintf("%s at %s did not answer in time (--timeout)", service, target)}
	}
	st, ok := status.FromError(err)
	if !ok {
		return &exitError{ExitFailed, err.Error()}
	}
	msg := st.Message()
	switch st.Code() {
	case codes.InvalidArgument, codes.OutOfRange:
		return &exitError{ExitUsage, "invalid: " + msg}
	case codes.Unauthenticated:
		return &exitError{ExitAuth, fmt.Sprintf("%s refused the API key (%s): set BOURSE_API_KEY or --api-key (make run keeps them in .run/keys/)", service, msg)}
	case codes.PermissionDenied:
		return &exitError{ExitAuth, fmt.Sprintf("not allowed: %s (this key's identity may not do that)", msg)}
	case codes.NotFound:
		return &exitError{ExitNotFound, "not found: " + msg}
	case codes.Unavailable:
		if strings.Contains(msg, "no children to pick from") || strings.Contains(msg, "produced zero addresses") ||
			strings.Contains(msg, "connection refused") || strings.Contains(msg, "connection error") {
			return &exitError{ExitUnreachable, fmt.Sprintf("%s is unreachable at %s: is it running (make run)? (%s)", service, target, msg)}
		}
		return &exitError{ExitUnreachable, fmt.Sprintf("%s is unavailable at %s: %s", service, target, msg)}
	case codes.DeadlineExceeded:
		return &exitError{ExitUnreachable, fmt.Sprintf("%s at %s did not answer in time (--timeout): %s", service, target, msg)}
	case codes.ResourceExhausted:
		return &exitError{ExitFailed, "rate limited: " + msg}
	default:
		return &exitError{ExitFailed, fmt.Sprintf("%s: %s", strings.ToLower(st.Code().String()), msg)}
	}
}
