package store_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/bourse-dev/bourse/services/risk/internal/store"
)

// TestCancelledReserveIDsKeepsTheStore: a reservation whose caller stops waiting (Close cancels
// KeepReservationIDs' context on shutdown) answers ctx's error and leaves the store working, so a
// normal shutdown is not taken for a store failure and still takes its snapshot.
func TestCancelledReserveIDsKeepsTheStore(t *testing.T) {
	url := filepath.Join(t.TempDir(), "risk.db")
	n := start(t, url, store.Options{})
	defer n.st.Close()
	n.setup(t, "alice")

	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	expired, cancel2 := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel2()
	for _, c := range []struct {
		ctx  context.Context
		want error
	}{{cancelled, context.Canceled}, {expired, context.DeadlineExceeded}} {
		if _, err := n.st.ReserveIDs(c.ctx, n.inc.IDLimit); !errors.Is(err, c.want) {
			t.Fatalf("ReserveIDs with an ended context: %v, want %v", err, c.want)
		}
	}
	if err := n.st.Err(); err != nil {
		t.Fatalf("store failed after a cancelled reservation: %v", err)
	}
	if _, err := n.credit("alice", "after", 1); err != nil {
		t.Fatalf("a credit after a cancelled reservation: %v", err)
	}
	limit, err := n.st.ReserveIDs(context.Background(), n.inc.IDLimit)
	if err != nil || limit <= n.inc.IDLimit {
		t.Fatalf("a reservation after a cancelled one: limit %d (was %d), %v", limit, n.inc.IDLimit, err)
	}
	select {
	case err := <-n.failed:
		t.Fatalf("OnFail called: %v", err)
	default:
	}
}
