package webhook

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"
)

// memStore is the unit-test Store. It keeps the contract the dispatcher relies on, as the payment
// database does: Due returns only due, non-final deliveries of endpoints not skipped, nor of an
// account skipped (compared as the store's SQL does, empty ids included), oldest due first, and
// claims them until now+lease; Record applies each outcome as documented and logs every attempt.
type memStore struct {
	mu   sync.Mutex
	rows map[string]*memRow
	log  []Result
}

type memRow struct {
	d     Delivery
	next  time.Time
	final Outcome // 0 while not final
}

func newMemStore() *memStore { return &memStore{rows: make(map[string]*memRow)} }

func (m *memStore) add(d Delivery) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.rows[d.ID] = &memRow{d: d, next: d.Created}
}

func (m *memStore) Due(_ context.Context, q DueQuery) ([]Delivery, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var due []*memRow
	for _, r := range m.rows {
		if r.final == 0 && !r.next.After(q.Now) && !slices.Contains(q.SkipEndpoints, r.d.Endpoint.ID) &&
			!slices.Contains(q.SkipAccounts, r.d.Endpoint.Account) {
			due = append(due, r)
		}
	}
	slices.SortFunc(due, func(a, b *memRow) int { return a.next.Compare(b.next) })
	var out []Delivery
	for _, r := range due[:min(q.Limit, len(due))] {
		r.next = q.Now.Add(q.Lease)
		out = append(out, r.d)
	}
	return out, nil
}

func (m *memStore) Record(_ context.Context, res Result) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.rows[res.DeliveryID]
	if !ok || r.final != 0 {
		return nil
	}
	switch res.Outcome {
	case Delivered, GaveUp:
		r.final = res.Outcome
	case Failed:
		r.d.Attempts = res.Attempt
		r.next = res.NextAttempt
	case Deferred:
		r.next = res.NextAttempt
		return nil
	}
	m.log = append(m.log, res)
	return nil
}

// snapshot returns the final outcome of every delivery and a copy of the attempt log.
func (m *memStore) snapshot() (map[string]Outcome, []Result) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make(map[string]Outcome, len(m.rows))
	for id, r := range m.rows {
		out[id] = r.final
	}
	return out, slices.Clone(m.log)
}

func (m *memStore) allFinal() bool {
	fin, _ := m.snapshot()
	for _, o := range fin {
		if o == 0 {
			return false
		}
	}
	return true
}

func eventually(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %s", within, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
