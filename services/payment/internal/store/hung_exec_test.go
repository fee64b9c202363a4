package store

import (
	"context"
	"testing"
	"time"

	"github.com/bourse-dev/bourse/pkg/errs"
)

// The statements the store runs outside any transaction (an endpoint's deletion, an outbox item's
// next try) are bounded as transactions and reads are: on a PostgreSQL server that hangs they fail
// within the store's TxTimeout with an error Unavailable reports, however long their callers would
// wait (here for ever).
func TestHungPostgresFailsStatementsWithinTheTimeout(t *testing.T) {
	const timeout = time.Second
	s, pg := storeOnPostgresServer(t, timeout)
	ctx := context.Background()

	pg.Freeze(t)
	out := make(chan outcome, 2)
	go func() { out <- outcome{"DeleteEndpoint", s.DeleteEndpoint(ctx, "we_missing")} }()
	go func() { out <- outcome{"RetryOutbox", s.RetryOutbox(ctx, 1, time.Now(), "test")} }()
	deadline := time.After(4*timeout + 5*time.Second)
	answered := 0
	for answered < 2 {
		select {
		case o := <-out:
			answered++
			wantHungTimeout(t, o)
		case <-deadline:
			t.Errorf("%d of 2 statements still waiting on the hung database past the bound", 2-answered)
			pg.Thaw(t)
			for ; answered < 2; answered++ {
				<-out
			}
			return
		}
	}
	pg.Thaw(t)
	if err := s.DeleteEndpoint(ctx, "we_missing"); errs.KindOf(err) != errs.KindNotFound {
		t.Fatalf("DeleteEndpoint once the database answers: %v, want not found", err)
	}
}
