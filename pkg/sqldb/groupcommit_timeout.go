package sqldb

import (
	"context"
	"errors"
	"fmt"
)

// ErrTxTimeout is wrapped by the error of a transaction that ran past its time (Options.TxTimeout).
var ErrTxTimeout = errors.New("sqldb: transaction timed out")

// txContext is a batch's context: Background bounded by TxTimeout. done turns an error of the
// batch that its timeout caused into one wrapping ErrTxTimeout, and releases the context.
func (g *GroupCommitter[T]) txContext() (ctx context.Context, done func(error) error) {
	if g.o.TxTimeout <= 0 {
		return context.Background(), func(err error) error { return err }
	}
	ctx, cancel := context.WithTimeout(context.Background(), g.o.TxTimeout)
	return ctx, func(err error) error {
		defer cancel()
		return TimedOut(ctx, err)
	}
}

// TimedOut wraps err with ErrTxTimeout when it failed because ctx, a transaction's own bound, ran
// out (the driver's error may not say so: a broken connection, an interrupted statement).
func TimedOut(ctx context.Context, err error) error {
	if err != nil && errors.Is(ctx.Err(), context.DeadlineExceeded) && !errors.Is(err, ErrTxTimeout) {
		return fmt.Errorf("%w: %w", ErrTxTimeout, err)
	}
	return err
}
