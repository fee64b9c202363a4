// Package errs gives domain code a way to say what went wrong without knowing gRPC: each error has a
// Kind, and the server runtime maps kinds to status codes in one place.
package errs

import (
	"errors"
	"fmt"
)

// Kind classifies an error for the API layer.
type Kind int

const (
	KindInternal           Kind = iota
	KindInvalidArgument         // a request field is wrong; Field names it
	KindNotFound                // the thing named does not exist
	KindAlreadyExists           // a duplicate id
	KindFailedPrecondition      // the current state forbids the operation
	KindPermissionDenied        // the caller may not touch this
	KindUnauthenticated         // no or unknown credentials
	KindResourceExhausted       // a rate or queue limit
	KindUnavailable             // a dependency is down; retrying may help
)

// Error is a domain error with a kind and, for invalid arguments, the offending field.
type Error struct {
	Kind  Kind
	Field string // request field path, e.g. "port" or "check.interval"
	Msg   string
	Err   error // optional cause
}

func (e *Error) Error() string {
	msg := e.Msg
	if e.Field != "" {
		msg = e.Field + ": " + msg
	}
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

func (e *Error) Unwrap() error { return e.Err }

// Invalid reports a bad request field.
func Invalid(field, format string, args ...any) *Error {
	return &Error{Kind: KindInvalidArgument, Field: field, Msg: fmt.Sprintf(format, args...)}
}

// New builds an error of the given kind.
func New(kind Kind, format string, args ...any) *Error {
	return &Error{Kind: kind, Msg: fmt.Sprintf(format, args...)}
}

// Wrap attaches a kind to a cause.
func Wrap(kind Kind, err error, format string, args ...any) *Error {
	return &Error{Kind: kind, Msg: fmt.Sprintf(format, args...), Err: err}
}

// KindOf returns the kind of the first *Error in err's chain, or KindInternal.
func KindOf(err error) Kind {
	if e, ok := errors.AsType[*Error](err); ok {
		return e.Kind
	}
	return KindInternal
}
