package store

import (
	"context"
	"errors"
	"testing"

	"github.com/bourse-dev/bourse/pkg/errs"
	"github.com/bourse-dev/bourse/pkg/testenv"
)

// heldTx is a transaction held open by a goroutine: each do runs a step inside it, commit ends it.
type heldTx struct {
	steps chan func(context.Context, *Tx) error
	errs  chan error
	done  chan error
}

func hold(s *Store) *heldTx {
	h := &heldTx{steps: make(chan func(context.Context, *Tx) error), errs: make(chan error), done: make(chan error, 1)}
	go func() {
		ctx := context.Background()
		h.done <- s.InTx(ctx, func(tx *Tx) error {
			for step := range h.steps {
				err := step(ctx, tx)
				h.errs <- err
				if err != nil {
					return err
				}
			}
			return nil
		})
	}()
	return h
}

func (h *heldTx) do(t *testing.T, step func(context.Context, *Tx) error) {
	t.Helper()
	h.steps <- step
	if err := <-h.errs; err != nil {
		t.Fatal(err)
	}
}

func (h *heldTx) commit(t *testing.T) {
	t.Helper()
	close(h.steps)
	if err := <-h.done; err != nil {
		t.Fatal(err)
	}
}

// page reads every event after cursor and returns them with the new cursor (the last one's seq).
func page(t *testing.T, s *Store, cursor int64) ([]string, int64) {
	t.Helper()
	evs, err := s.ListEvents(context.Background(), "alice", "", cursor, 100)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, e := range evs {
		ids = append(ids, e.ObjectID)
		cursor = e.Seq
	}
	return ids, cursor
}

// On PostgreSQL two transactions take event sequence numbers in one order and may commit in the
// other. A reader paging by cursor must still get every event exactly once: the event with the lower
// sequence that commits after the reader has seen the higher one comes on a later page.
func TestListEventsCursorNeverSkipsALateCommit(t *testing.T) {
	s, err := Open(context.Background(), testenv.StartPostgres(t))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	add := func(obj string) func(context.Context, *Tx) error {
		return func(ctx context.Context, tx *Tx) error {
			return tx.AddEvent(ctx, "payment.succeeded", "alice", obj, map[string]string{"id": obj})
		}
	}
	seen := map[string]int{}
	var cursor int64
	read := func() {
		var ids []string
		ids, cursor = page(t, s, cursor)
		for _, id := range ids {
			seen[id]++
		}
	}

	commitNow := func(obj string) {
		if err := s.InTx(context.Background(), func(tx *Tx) error { return add(obj)(context.Background(), tx) }); err != nil {
			t.Fatal(err)
		}
	}

	// 1. The lower sequence (A) is held open while the higher one (B) commits.
	a := hold(s)
	a.do(t, add("A"))
	commitNow("B")
	read()
	a.commit(t)
	read()

	// 2. C takes its transaction id first and its sequence after D's; C commits first, D after the
	// reader has seen C (and an event E committed meanwhile).
	c, d := hold(s), hold(s)
	c.do(t, func(ctx context.Context, tx *Tx) error {
		_, err := tx.exec(ctx, `SELECT pg_current_xact_id()`)
		return err
	})
	d.do(t, add("D"))
	c.do(t, add("C"))
	c.commit(t)
	commitNow("E")
	read()
	d.commit(t)
	read()
	commitNow("F")
	read()

	for _, id := range []string{"A", "B", "C", "D", "E", "F"} {
		if seen[id] != 1 {
			t.Errorf("event %s read %d times, want once (all: %v)", id, seen[id], seen)
		}
	}
}

// A cursor that names no event is refused (it cannot be placed in the log), naming the field.
func TestListEventsUnknownCursor(t *testing.T) {
	onBoth(t, func(t *testing.T, s *Store) {
		_, err := s.ListEvents(context.Background(), "", "", 12345, 10)
		var e *errs.Error
		if !errors.As(err, &e) || e.Kind != errs.KindInvalidArgument || e.Field != "after_sequence" {
			t.Fatalf("err = %v, want InvalidArgument after_sequence", err)
		}
	})
}

// An event written after another one committed comes after it in the log, even when its
// transaction took its id first: a reader sees a payment's events in the order they happened.
func TestListEventsKeepsCausalOrder(t *testing.T) {
	s, err := Open(context.Background(), testenv.StartPostgres(t))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	add := func(obj string) func(context.Context, *Tx) error {
		return func(ctx context.Context, tx *Tx) error {
			return tx.AddEvent(ctx, "payment.succeeded", "alice", obj, map[string]string{"id": obj})
		}
	}
	later := hold(s)
	later.do(t, func(ctx context.Context, tx *Tx) error {
		_, err := tx.exec(ctx, `SELECT pg_current_xact_id()`)
		return err
	})
	if err := s.InTx(ctx, func(tx *Tx) error { return add("first")(ctx, tx) }); err != nil {
		t.Fatal(err)
	}
	later.do(t, add("second"))
	later.commit(t)
	ids, _ := page(t, s, 0)
	if len(ids) != 2 || ids[0] != "first" || ids[1] != "second" {
		t.Fatalf("log %v, want [first second]", ids)
	}
}
