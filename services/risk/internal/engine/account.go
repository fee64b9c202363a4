package engine

import (
	"cmp"
	"slices"
	"sync"
	"sync/atomic"
	"unicode/utf8"
	"unsafe"

	"github.com/bourse-dev/bourse/pkg/errs"
)

// maxAccountIDLen bounds account ids so a hostile id cannot bloat the maps or the event log.
const maxAccountIDLen = 128

// AccountSpec opens an account. Limits become its account-wide defaults; the zero Limits means no
// limits at all, so a service that wants house defaults passes them here.
type AccountSpec struct {
	ID     string `json:"id"`
	Limits Limits `json:"limits"`
}

// balance is one asset of one account. available = total − reserved is never negative.
type balance struct {
	total    int64
	reserved int64
}

func (b balance) available() int64 { return b.total - b.reserved }

// account is everything the engine knows about one account. mu guards every field except id and
// index, which never change; the per-account lock is what keeps CheckOrder from over-reserving while
// letting different accounts proceed in parallel.
type account struct {
	mu     sync.Mutex
	id     string
	index  uint32
	state  TradingState
	limits Limits // account-wide defaults

	balances  []balance   // by asset index; grown on first use
	positions []*position // by symbol index; nil until the account touches the symbol

	// Reservation records live in a per-account slab reused through a free list, so a check in
	// steady state allocates nothing.
	reservations []reservation
	free         []int32

	// Reservation ids come from the engine's counter in blocks, [idNext, idEnd), so that cores
	// checking different accounts do not fight over the counter's cache line on every order.
	idNext, idEnd uint64

	bucket tokenBucket

	// Accounts opened together sit next to each other on the heap; the padding keeps this one's
	// hot fields off the next one's cache lines (and their adjacent-line prefetch pair), so cores
	// serving different accounts do not contend.
	_ [128]byte
}

// hotAlloc is the smallest size, in bytes, of the per-account arrays written on every order
// (balances, reservation slab, free list, positions): rounding them up keeps two accounts' arrays
// off each other's cache lines, for the same reason as the account padding.
const hotAlloc = 128

// growTo returns s extended to length n, allocating at least hotAlloc bytes when it must allocate.
func growTo[T any](s []T, n int) []T {
	if n <= cap(s) {
		return s[:n]
	}
	var zero T
	size := max(int(unsafe.Sizeof(zero)), 1)
	next := make([]T, n, max(2*cap(s), n, (hotAlloc+size-1)/size))
	copy(next, s)
	return next
}

func (a *account) balanceOf(assetIndex int32) balance {
	if int(assetIndex) < len(a.balances) {
		return a.balances[assetIndex]
	}
	return balance{}
}

// balanceRef returns the balance for writing, growing the slice if the asset is new to the account.
func (a *account) balanceRef(assetIndex int32) *balance {
	if int(assetIndex) >= len(a.balances) {
		a.balances = growTo(a.balances, int(assetIndex)+1)
	}
	return &a.balances[assetIndex]
}

func (a *account) positionOf(symbolIndex int32) *position {
	if int(symbolIndex) < len(a.positions) {
		return a.positions[symbolIndex]
	}
	return nil
}

// positionRef returns the position for writing, creating it if needed.
func (a *account) positionRef(symbolIndex int32) *position {
	if int(symbolIndex) >= len(a.positions) {
		a.positions = append(a.positions, make([]*position, int(symbolIndex)+1-len(a.positions))...)
	}
	p := a.positions[symbolIndex]
	if p == nil {
		p = new(position)
		a.positions[symbolIndex] = p
	}
	return p
}

// accountRegistry finds accounts by id (CheckOrder, commands) and by index (reservation ids). Both
// are read without locks: the id map is a sync.Map, whose loads are lock-free and never write to
// shared memory (a reader-writer lock would make every CheckOrder bump a shared reader count), and the
// index list is published atomically.
type accountRegistry struct {
	byID sync.Map // string → *account
	// byIndex is append-only and published atomically: readers see a prefix that never changes.
	byIndex atomic.Pointer[[]*account]
}

func (r *accountRegistry) init() { r.byIndex.Store(new([]*account)) }

func (r *accountRegistry) lookup(id string) *account {
	if a, ok := r.byID.Load(id); ok {
		return a.(*account)
	}
	return nil
}

func (r *accountRegistry) at(index uint32) *account {
	list := *r.byIndex.Load()
	if int(index) < len(list) {
		return list[index]
	}
	return nil
}

func (r *accountRegistry) count() int { return len(*r.byIndex.Load()) }

// add registers a new account. Callers serialise adds (under the commit lock).
func (r *accountRegistry) add(id string, limits Limits) *account {
	list := *r.byIndex.Load()
	a := &account{id: id, index: uint32(len(list)), limits: limits}
	// Appending may write into spare capacity beyond what readers were given; they only ever index
	// below the length they loaded, so that write is not visible to them until the Store below.
	next := append(list, a)
	r.byIndex.Store(&next)
	r.byID.Store(id, a)
	return a
}

// all returns the accounts in index (creation) order.
func (r *accountRegistry) all() []*account { return *r.byIndex.Load() }

// OpenAccount creates an account with no balances. Opening an existing id is refused with
// KindAlreadyExists.
func (e *Engine) OpenAccount(spec AccountSpec, persist PersistFunc) error {
	e.commitMu.Lock()
	defer e.commitMu.Unlock()
	return e.openAccount(spec, persist)
}

func (e *Engine) openAccount(spec AccountSpec, persist PersistFunc) error {
	if err := validateAccountID("account.id", spec.ID); err != nil {
		return err
	}
	if err := spec.Limits.validate("account.limits", true); err != nil {
		return err
	}
	if e.accounts.lookup(spec.ID) != nil {
		return errs.New(errs.KindAlreadyExists, "account %q already exists", spec.ID)
	}
	if int64(e.accounts.count()) >= maxAccounts {
		return errs.New(errs.KindResourceExhausted, "the engine holds the maximum of %d accounts", maxAccounts)
	}
	ev := Event{Kind: EventOpenAccount, Account: &spec}
	return e.commit(&ev, persist, func() { e.accounts.add(spec.ID, spec.Limits) })
}

// maxAccounts keeps account indexes within 32 bits (they are packed into reservation locations).
const maxAccounts = 1<<32 - 1

func validateAccountID(field, id string) error {
	if id == "" || len(id) > maxAccountIDLen {
		return errs.Invalid(field, "must be 1 to %d bytes", maxAccountIDLen)
	}
	if !utf8.ValidString(id) {
		return errs.Invalid(field, "must be valid UTF-8")
	}
	for _, r := range id {
		if r < 0x20 || r == 0x7f {
			return errs.Invalid(field, "must not contain control characters")
		}
	}
	return nil
}

// lookupAccount returns the account or a NotFound error naming field.
func (e *Engine) lookupAccount(field, id string) (*account, error) {
	if a := e.accounts.lookup(id); a != nil {
		return a, nil
	}
	return nil, errs.New(errs.KindNotFound, "%s: unknown account %q", field, id)
}

// lockAccounts locks each distinct account once, in index order so that two callers locking
// overlapping sets cannot deadlock, and returns the function that unlocks them.
func lockAccounts(accts []*account) func() {
	slices.SortFunc(accts, func(a, b *account) int { return cmp.Compare(a.index, b.index) })
	accts = slices.Compact(accts)
	for _, a := range accts {
		a.mu.Lock()
	}
	return func() {
		for _, a := range accts {
			a.mu.Unlock()
		}
	}
}
