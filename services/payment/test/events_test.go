package payment_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	paymentv1 "github.com/bourse-dev/bourse/pkg/gen/bourse/payment/v1"
	"github.com/bourse-dev/bourse/pkg/testenv"
)

// A reader that pages ListEvents by cursor while two payment replicas on one PostgreSQL write
// events concurrently (their transactions commit out of sequence order) gets every event exactly
// once: its pages put together are the whole log as read at the end. BOURSE_EVENTS_DEPOSITS sets
// the number of deposits (default 240).
//
// The log on PostgreSQL returns an event only once every transaction older than its own has ended
// (store.ListEvents), and the replicas' background passes (outbox, janitor) keep running
// transactions after the last deposit has answered. So "every deposit answered" does not mean
// "every event readable yet": the reader pages on until it has both events of every deposit (of one
// answered still processing, once it has settled), within a bound, and only then is the whole log
// read and compared.
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
	var mu sync.Mutex
	want := map[string]bool{} // "<payment id> <event type>" of every event the deposits wrote
	var processing []string   // deposits answered before they settled
	next := make(chan int)
	for w := range 8 {
		c := replicas[w%2].alice
		wg.Go(func() {
			for i := range next {
				r, err := c.CreatePayment(ctx, deposit("alice", 100, fmt.Sprint("ev-", i)))
				if err != nil {
					t.Errorf("deposit %d: %v", i, err)
					continue
				}
				id := r.GetPayment().GetPaymentId()
				mu.Lock()
				want[id+" payment.created"] = true
				switch st := r.GetPayment().GetStatus(); st {
				case paymentv1.PaymentStatus_PAYMENT_STATUS_SUCCEEDED:
					want[id+" payment.succeeded"] = true
				case paymentv1.PaymentStatus_PAYMENT_STATUS_PROCESSING:
					processing = append(processing, id) // stalled past --settle-after: the janitor settles it
				default:
					t.Errorf("deposit %d: %s, want succeeded", i, st)
				}
				mu.Unlock()
			}
		})
	}

	// The reader pages from both replicas in turn, small pages, as fast as it can.
	seen := map[string]int{}
	got := map[string]bool{} // "<object id> <event type>" read
	var order []string
	read := func(after int64, from int) (int64, bool) {
		r, err := replicas[from%2].alice.ListEvents(ctx, &paymentv1.ListEventsRequest{AccountId: "alice", AfterSequence: after, PageSize: 7})
		if err != nil {
			t.Fatalf("ListEvents after %d: %v", after, err)
		}
		for _, e := range r.GetEvents() {
			seen[e.GetEventId()]++
			got[e.GetObjectId()+" "+e.GetType()] = true
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
	for _, id := range processing {
		var st paymentv1.PaymentStatus
		testenv.WaitFor(t, 30*time.Second, "payment "+id+" to settle", func() bool {
			g, err := replicas[0].alice.GetPayment(ctx, &paymentv1.GetPaymentRequest{PaymentId: id})
			if err != nil {
				t.Fatalf("GetPayment %s: %v", id, err)
			}
			st = g.GetPayment().GetStatus()
			return st != paymentv1.PaymentStatus_PAYMENT_STATUS_PROCESSING
		})
		if st != paymentv1.PaymentStatus_PAYMENT_STATUS_SUCCEEDED {
			t.Errorf("deposit %s answered processing settled as %s, want succeeded", id, st)
		}
		want[id+" payment.succeeded"] = true
	}
	// Drain: every deposit has committed its events; each becomes readable once the transactions
	// older than its own (on either replica) have ended.
	complete := func() bool {
		for k := range want {
			if !got[k] {
				return false
			}
		}
		return true
	}
	var waits int
	start := time.Now()
	for n := 0; ; n++ {
		var more bool
		if after, more = read(after, n); more {
			continue
		}
		if complete() {
			break
		}
		if time.Since(start) > 30*time.Second {
			missing := 0
			for k := range want {
				if !got[k] {
					missing++
				}
			}
			t.Fatalf("after 30s of paging, %d of the deposits' %d events never came (cursor %d)", missing, len(want), after)
		}
		waits++
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("after the last deposit answered, the reader waited %d times (%v) for events held behind older transactions", waits, time.Since(start).Round(time.Millisecond))

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
