package payment_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"

	paymentv1 "github.com/bourse-dev/bourse/pkg/gen/bourse/payment/v1"
	"github.com/bourse-dev/bourse/pkg/testenv"
)

// A reader that pages ListEvents by cursor while two payment replicas on one PostgreSQL write
// events concurrently (their transactions commit out of sequence order) gets every event exactly
// once: its pages put together are the whole log as read at the end. BOURSE_EVENTS_DEPOSITS sets
// the number of deposits (default 240).
func TestEventCursorWithConcurrentWriters(t *testing.T) {
	deposits := 240
	if v, err := strconv.Atoi(os.Getenv("BOURSE_EVENTS_DEPOSITS")); err == nil && v > 0 {
		deposits = v
	}
	s := startStack(t, "--database-url="+testenv.StartPostgres(t))
	replicas := []*paymentProc{s.startPayment(t, "--processors=instant"), s.startPayment(t, "--processors=instant")}
	ctx := context.Background()

	var writing atomic.Bool
	writing.Store(true)
	var wg sync.WaitGroup
	next := make(chan int)
	for w := range 8 {
		c := replicas[w%2].alice
		wg.Go(func() {
			for i := range next {
				if _, err := c.CreatePayment(ctx, deposit("alice", 100, fmt.Sprint("ev-", i))); err != nil {
					t.Errorf("deposit %d: %v", i, err)
				}
			}
		})
	}

	// The reader pages from both replicas in turn, small pages, as fast as it can.
	seen := map[string]int{}
	var order []string
	read := func(after int64, from int) (int64, bool) {
		r, err := replicas[from%2].alice.ListEvents(ctx, &paymentv1.ListEventsRequest{AccountId: "alice", AfterSequence: after, PageSize: 7})
		if err != nil {
			t.Fatalf("ListEvents after %d: %v", after, err)
		}
		for _, e := range r.GetEvents() {
			seen[e.GetEventId()]++
			order = append(order, e.GetEventId())
			after = e.GetSequence()
		}
		return after, r.GetHasMore()
	}
	readerDone := make(chan int64)
	go func() {
		var after int64
		for n := 0; writing.Load(); n++ {
			after, _ = read(after, n)
		}
		readerDone <- after
	}()
	for i := range deposits {
		next <- i
	}
	close(next)
	wg.Wait()
	writing.Store(false)
	after := <-readerDone
	// Drain: every writer has committed, so the log is complete and stable.
	for n, more := 0, true; more; n++ {
		after, more = read(after, n)
	}

	var all []string
	var cursor int64
	for {
		r, err := replicas[0].admin.ListEvents(ctx, &paymentv1.ListEventsRequest{AccountId: "alice", AfterSequence: cursor, PageSize: 500})
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range r.GetEvents() {
			all = append(all, e.GetEventId())
			cursor = e.GetSequence()
		}
		if !r.GetHasMore() {
			break
		}
	}
	// A deposit writes payment.created and payment.succeeded.
	if len(all) < 2*deposits {
		t.Fatalf("%d events in the log for %d deposits, want at least %d", len(all), deposits, 2*deposits)
	}
	missed, twice := 0, 0
	for _, id := range all {
		switch seen[id] {
		case 0:
			missed++
		case 1:
		default:
			twice++
		}
	}
	if missed > 0 || twice > 0 || len(order) != len(all) {
		t.Fatalf("the paging reader missed %d of %d events and read %d more than once (%d reads)", missed, len(all), twice, len(order))
	}
	// Paging while the log grew gives the log's own order.
	for i := range all {
		if order[i] != all[i] {
			t.Fatalf("event %d: the reader got %s, the log has %s", i, order[i], all[i])
		}
	}
	t.Logf("%d events read by cursor during %d concurrent deposits on two replicas", len(all), deposits)
}
