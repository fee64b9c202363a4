package stripeproc

import (
	"sync"

	"github.com/bourse-dev/bourse/services/payment/internal/processor"
)

// memory remembers, for Keys this process sent, the Stripe id they are about: the PaymentIntent of
// an authorization (and of its capture and void), the refund, the payout. It saves a search
// (eventually consistent at Stripe) for a capture right after its authorization. Bounded: past max
// entries the oldest is forgotten, which costs only a search or a listing later.
type memory struct {
	mu    sync.Mutex
	ids   map[memKey]string
	order []memKey // ring of insertion order, for eviction
	next  int
	max   int
}

type memKey struct {
	op  processor.Operation
	key string
}

func newMemory(max int) *memory {
	return &memory{ids: make(map[memKey]string), max: max}
}

func (m *memory) put(op processor.Operation, key, id string) {
	if key == "" || id == "" {
		return
	}
	k := memKey{op, key}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.ids[k]; ok {
		m.ids[k] = id
		return
	}
	m.ids[k] = id
	if len(m.order) < m.max {
		m.order = append(m.order, k)
		return
	}
	delete(m.ids, m.order[m.next])
	m.order[m.next] = k
	m.next = (m.next + 1) % m.max
}

func (m *memory) get(op processor.Operation, key string) (string, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	id, ok := m.ids[memKey{op, key}]
	return id, ok
}

func (m *memory) len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.ids)
}
