package engine

import (
	"testing"
	"time"
)

// TestReservationIDsStayBelowTheReservedLimit: ids are above the floor and below the limit; near
// the limit the engine asks for more, and a check that would pass the limit waits until it is
// raised instead of issuing an id a restart could issue again.
func TestReservationIDsStayBelowTheReservedLimit(t *testing.T) {
	// 1023 counter values above the floor's: three blocks of idBlock fit, the fourth does not.
	const floor, limit = 5 << 20, 6 << 20
	e := newFixture(t, Config{ReservationIDFloor: floor, ReservationIDLimit: limit, Incarnation: 7})
	if e.Incarnation() != 7 {
		t.Fatalf("incarnation %d", e.Incarnation())
	}
	fund(t, e, "alice", 1<<50, 0)
	issued := 0
	for ; issued < 3*idBlock; issued++ {
		id := mustAccept(t, e, order("alice", SideBuy, 1, 1))
		if id <= floor || id >= limit {
			t.Fatalf("id %d outside (%d, %d)", id, floor, limit)
		}
	}
	select {
	case <-e.ReservationIDsLow():
	default:
		t.Fatal("the engine used up its range without asking for more")
	}
	got := make(chan uint64)
	go func() { got <- mustAccept(t, e, order("alice", SideBuy, 1, 1)) }()
	select {
	case id := <-got:
		t.Fatalf("id %d issued beyond the reserved limit %d", id, limit)
	case <-time.After(100 * time.Millisecond):
	}
	must(t, e.ExtendReservationIDs(limit+(1<<20)))
	select {
	case id := <-got:
		// The waiting block straddles the old limit: its ids are issued once all of it is reserved.
		if id <= floor || id >= limit+(1<<20) {
			t.Fatalf("id %d after the extension, want in (%d, %d)", id, floor, limit+(1<<20))
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the check still waits after the limit was raised")
	}
	if e.ReservationIDLimit() != limit+(1<<20) {
		t.Fatalf("limit %d", e.ReservationIDLimit())
	}
	if _, err := New(Config{ReservationIDFloor: limit, ReservationIDLimit: floor}); err == nil {
		t.Fatal("a limit below the floor accepted")
	}
}
