package store

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// A reader paging the event log while the lanes (several at once on PostgreSQL, each its own
// transaction) and the general path write gets every event exactly once, and a payment's verdict
// event after its created event.
func TestLaneEventsPagedOnceInOrder(t *testing.T) {
	onBoth(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		const n = 120
		var writers sync.WaitGroup
		var wrote atomic.Int64
		for i := range n {
			writers.Go(func() {
				d := laneDeposit(s, "paging", fmt.Sprint("p-", i), 10)
				if i%4 == 3 { // a quarter through the general path
					ok, err := tryClaimGeneral(s, d)
					if err == nil && ok {
						err = settleGeneral(s, laneVerdict(s, d, i%8 == 3))
					}
					if err != nil || !ok {
						t.Errorf("general deposit %d: %v %v", i, ok, err)
					}
					wrote.Add(2)
					return
				}
				if ok, err := s.ClaimDeposit(ctx, d); !ok || err != nil {
					t.Errorf("lane claim %d: %v %v", i, ok, err)
					return
				}
				if ok, err := s.ApplyVerdict(ctx, laneVerdict(s, d, i%2 == 0)); !ok || err != nil {
					t.Errorf("lane verdict %d: %v %v", i, ok, err)
				}
				wrote.Add(2)
			})
		}
		done := make(chan struct{})
		go func() { writers.Wait(); close(done) }()

		seen := map[string]int{}
		created := map[string]bool{} // payments whose created event has been read
		var cursor int64
		read := func() int {
			evs, err := s.ListEvents(ctx, "paging", "", cursor, 25)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range evs {
				seen[e.ID]++
				if e.Type == "payment.created" {
					created[e.ObjectID] = true
				} else if !created[e.ObjectID] {
					t.Fatalf("%s of %s read before its payment.created", e.Type, e.ObjectID)
				}
				cursor = e.Seq
			}
			return len(evs)
		}
		for finished := false; !finished; {
			select {
			case <-done:
				finished = true
			default:
			}
			if read() == 0 {
				time.Sleep(time.Millisecond)
			}
		}
		// What the writers committed last shows once no transaction before it is open.
		deadline := time.Now().Add(10 * time.Second)
		for len(seen) < int(wrote.Load()) && time.Now().Before(deadline) {
			if read() == 0 {
				time.Sleep(10 * time.Millisecond)
			}
		}
		if len(seen) != 2*n {
			t.Fatalf("read %d distinct events, want %d", len(seen), 2*n)
		}
		for id, k := range seen {
			if k != 1 {
				t.Fatalf("event %s read %d times", id, k)
			}
		}
	})
}
