package store

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/bourse-dev/bourse/services/payment/internal/domain"
)

// Endpoints pages by (created_at, id): endpoints created in the same nanosecond are told apart by
// id, and an endpoint deleted between two pages (the one the cursor stands on among them) neither
// stops the listing nor makes it skip or repeat one. Every live endpoint is listed exactly once.
func TestEndpointsPagesAcrossEqualTimesAndDeletions(t *testing.T) {
	s, err := Open(context.Background(), filepath.Join(t.TempDir(), "payment.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	at := time.Unix(1_800_000_000, 0)
	s.SetClock(func() time.Time { return at })
	var ids []string
	for i := range 7 {
		if i == 4 {
			at = at.Add(time.Nanosecond) // the rest a nanosecond later
		}
		e := domain.WebhookEndpoint{ID: fmt.Sprintf("we_%02d", 9-i), AccountID: fmt.Sprint("acct-", i%2), URL: "https://example.com/h",
			EventTypes: []string{"payment.succeeded"}, Secret: "whsec_x"}
		if err := s.InTx(ctx, func(tx *Tx) error { return tx.InsertEndpoint(ctx, "admin", &e) }); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, e.ID)
	}
	seen := map[string]int{}
	pg := EndpointsPage{Limit: 2}
	for pages := 0; ; pages++ {
		if pages > 10 {
			t.Fatal("the listing does not end")
		}
		es, err := s.Endpoints(ctx, pg)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range es {
			seen[e.ID]++
		}
		if len(es) < pg.Limit {
			break
		}
		last := es[len(es)-1]
		pg.AfterNanos, pg.AfterID = last.CreatedAt.UnixNano(), last.ID
		if pages == 0 {
			// The cursor's own endpoint and one not listed yet go between the pages.
			for _, id := range []string{last.ID, ids[5]} {
				if err := s.DeleteEndpoint(ctx, id); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	for _, id := range ids {
		want := 1
		if id == ids[5] {
			want = 0
		}
		if seen[id] != want {
			t.Errorf("endpoint %s listed %d times, want %d", id, seen[id], want)
		}
	}
}
