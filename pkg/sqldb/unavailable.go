package sqldb

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"io"
	"net"
	"strings"
)

// Unavailable reports whether err is the database being out of reach rather than a verdict on the
// request: the connection refused or broken (the server crashed or restarts), or the server not yet
// accepting work (crash recovery). Such a request may be retried as it is: its transaction either
// committed or it did not, and a retry with the same idempotency key reads which. A context that
// ended is not one of these (the caller's own deadline), nor is a refusal by the database, which
// would refuse the retry as well.
func Unavailable(err error) bool {
	if errors.Is(err, ErrTxTimeout) {
		return true // no answer within the transaction's own bound (Options.TxTimeout, TimedOut)
	}
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	if errors.Is(err, driver.ErrBadConn) || errors.Is(err, sql.ErrConnDone) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) {
		return true
	}
	if _, ok := errors.AsType[net.Error](err); ok {
		return true // refused, reset, timed out at the socket
	}
	// pgx's errors, by their methods (by their methods, so that this file depends on no driver).
	if e, ok := errors.AsType[interface {
		error
		SQLState() string
	}](err); ok {
		return unavailableState(e.SQLState())
	}
	if e, ok := errors.AsType[interface {
		error
		SafeToRetry() bool
	}](err); ok && e.SafeToRetry() {
		return true // failed before anything was sent ("conn closed")
	}
	// SQLite's, by its method (primary result code, any extended one): SQLITE_BUSY, the lock held
	// by another connection past the busy timeout (write transactions take the write lock as
	// they begin, _txlock=immediate, so nothing of them was written), and SQLITE_FULL, the disk full (as
	// PostgreSQL's class 53).
	if e, ok := errors.AsType[interface {
		error
		Code() int
	}](err); ok {
		switch e.Code() & 0xff {
		case sqliteBusy, sqliteFull:
			return true
		}
	}
	return false
}

// SQLite's primary result codes: "database is locked", "database or disk is full".
const (
	sqliteBusy = 5
	sqliteFull = 13
)

// unavailableState: SQLSTATE classes 08 (connection exception) and 53 (insufficient resources: too
// many connections, out of memory or disk), 57014 (a statement cancelled: statement_timeout, or an
// operator's pg_cancel_backend; its transaction is aborted whole), 57P01–57P03 (the server
// shutting down, crashed, or not yet accepting connections: "the database system is starting up"
// during crash recovery), and the sessions the server ends on its own timeouts, FATAL and rolled back
// whole as an operator's terminate is: 25P03 (idle_in_transaction_session_timeout) and 57P05
// (idle_session_timeout). 08P01 (protocol violation) is a fault of the request's bytes, which a
// retry repeats, so it is not one of these.
func unavailableState(s string) bool {
	switch s {
	case "08P01":
		return false
	case "57014", "57P01", "57P02", "57P03", "57P05", "25P03":
		return true
	}
	return strings.HasPrefix(s, "08") || strings.HasPrefix(s, "53")
}

// RolledBack reports whether the database rolled err's transaction back whole to end a conflict
// with another transaction: a deadlock (40P01) or a serialization failure (40001). Nothing of it
// was written and the conflict is gone with it, so the same request retried (with the same
// idempotency key) goes through: the conflict is the system's, not a verdict on the request.
func RolledBack(err error) bool {
	e, ok := errors.AsType[interface {
		error
		SQLState() string
	}](err)
	if !ok {
		return false
	}
	switch e.SQLState() {
	case "40001", "40P01":
		return true
	}
	return false
}
