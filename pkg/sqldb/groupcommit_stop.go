package sqldb

import (
	"errors"
	"fmt"
)

// How a committer stops: a failed commit of a FailStop committer, or Fail, records the failure once;
// from then on nothing is written and everyone is told, but never before OnFail has returned.

// ErrStopped is wrapped by the error of a committer that a failure stopped (see Options.FailStop
// and Fail), with the failure that stopped it: errors.Is tells it from an item's own failure.
var ErrStopped = errors.New("sqldb: group commit failed; nothing more is written")

// Err is the failure that stopped the committer (wrapping ErrStopped), or nil.
func (g *GroupCommitter[T]) Err() error {
	if p := g.failed.Load(); p != nil {
		return *p
	}
	return nil
}

// Fail stops the committer as a failed commit stops a FailStop one, for a failure met outside it
// that the items must not be written after (say, another write the log depends on): the items not
// yet written and every later submit fail with the error it returns, and OnFail runs once, from
// the caller, before any of them is answered. A transaction already committing still completes and
// answers its items. When the committer had already stopped, Fail returns that first error.
func (g *GroupCommitter[T]) Fail(cause error) error {
	return g.halt(cause)
}

// halt records cause as the failure that stopped the committer, unless one was, and runs OnFail.
func (g *GroupCommitter[T]) halt(cause error) error {
	g.failMu.Lock()
	defer g.failMu.Unlock()
	if p := g.failed.Load(); p != nil {
		return *p
	}
	err := fmt.Errorf("%w: %w", ErrStopped, cause)
	g.failed.Store(&err)
	if g.o.OnFail != nil {
		g.o.OnFail(err)
	}
	return err
}

// stopped is Err for whoever is about to tell a submitter of the failure: it waits for OnFail to
// have returned, so that nobody hears of a failure before OnFail does.
func (g *GroupCommitter[T]) stopped() error {
	p := g.failed.Load()
	if p == nil {
		return nil
	}
	g.failMu.Lock()
	defer g.failMu.Unlock()
	return *p
}
