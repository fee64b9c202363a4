package store

import (
	"context"
	"testing"

	"github.com/bourse-dev/bourse/pkg/testenv"
)

// On PostgreSQL an event is readable only once every transaction older than its own has ended, and
// that includes a transaction that writes no event at all (an outbox claim, a janitor step): the
// writer of an event having committed does not make the event readable yet. Read meanwhile, the log
// ends before it (no error, nothing after the cursor); once the older transaction ends, the cursor
// gets the event, exactly once. A reader that stops at "nothing more" the moment its writers have
// answered can therefore miss events that later come; a cursor never does.
func TestListEventsHeldBehindAnOlderTransactionWithoutEvents(t *testing.T) {
	s, err := Open(context.Background(), testenv.StartPostgres(t))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	add := func(obj string) {
		t.Helper()
		if err := s.InTx(ctx, func(tx *Tx) error {
			return tx.AddEvent(ctx, "payment.succeeded", "alice", obj, map[string]string{"id": obj})
		}); err != nil {
			t.Fatal(err)
		}
	}
	add("before")
	first, cursor := page(t, s, 0)
	if len(first) != 1 || first[0] != "before" {
		t.Fatalf("first page %v, want [before]", first)
	}

	// An outbox write (the kind the dispatcher and every deposit make) holds a transaction id.
	older := hold(s)
	older.do(t, func(ctx context.Context, tx *Tx) error {
		return tx.Enqueue(ctx, "risk_credit", "held", map[string]string{})
	})
	add("after")
	if ids, c := page(t, s, cursor); len(ids) != 0 || c != cursor {
		t.Fatalf("while an older transaction is open the reader got %v (cursor %d), want nothing yet", ids, c)
	}
	older.commit(t)
	ids, cursor := page(t, s, cursor)
	if len(ids) != 1 || ids[0] != "after" {
		t.Fatalf("after the older transaction ended the reader got %v, want [after]", ids)
	}
	if ids, _ := page(t, s, cursor); len(ids) != 0 {
		t.Fatalf("read again: %v, want nothing", ids)
	}
}
