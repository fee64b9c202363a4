package store

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/bourse-dev/bourse/pkg/errs"
	"github.com/bourse-dev/bourse/pkg/sqldb"
	"github.com/bourse-dev/bourse/pkg/testenv"
)

// The statements the store runs outside any transaction (an endpoint's deletion, an outbox item's
// next try) are bounded as transactions and reads are: on a PostgreSQL server that hangs they fail
// within the store's TxTimeout with an error Unavailable reports, however long their callers would
// wait (here for ever).
func TestHungPostgresFailsStatementsWithinTheTimeout(t *testing.T) {
	pg := testenv.StartPostgresServer(t)
	const timeout = time.Second
	s, err := OpenWith(context.Background(), pg.URL, Options{TxTimeout: timeout})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()

	pg.Freeze(t)
	type outcome struct {
		what string
		err  error
	}
	out := make(chan outcome, 2)
	go func() { out <- outcome{"DeleteEndpoint", s.DeleteEndpoint(ctx, "we_missing")} }()
	go func() { out <- outcome{"RetryOutbox", s.RetryOutbox(ctx, 1, time.Now(), "test")} }()
	deadline := time.After(4*timeout + 5*time.Second)
	answered := 0
	for answered < 2 {
		select {
		case o := <-out:
			answered++
			if !errors.Is(o.err, sqldb.ErrTxTimeout) || !sqldb.Unavailable(o.err) {
				t.Errorf("%s while the database hangs: %v, want a timeout that Unavailable reports", o.what, o.err)
			}
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
