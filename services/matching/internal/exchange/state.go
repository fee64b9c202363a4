package exchange

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"

	"github.com/bourse-dev/bourse/pkg/wire"
	"github.com/bourse-dev/bourse/services/matching/internal/journal"
)

// shardState is a shard's snapshot: every market's spec, service-side order records and the book's
// own canonical snapshot. Orders are sorted and maps avoided, so equal states encode to equal bytes.
type shardState struct {
	Markets []marketState
}

// marketState is one market in a snapshot. The small header is JSON; the book, the order records
// and the closed-order list, which grow with the book, are binary.
type marketState struct {
	Spec     Spec         `json:"spec"`
	LastID   uint64       `json:"last_id"`
	MDSeq    uint64       `json:"md_seq"`
	Accounts []string     `json:"accounts"`
	Orders   []orderState `json:"-"`
	Closed   []uint64     `json:"-"` // oldest first
	Gone     []goneID     `json:"-"` // client ids still taken by dropped records, oldest first
	Book     []byte       `json:"-"`
}

// snapshotMagic names the format: version 2 adds each order's filled notional and the client ids
// still taken by dropped records. Version 1 snapshots are still read; their orders' notional starts
// at zero (it was never recorded) and they have no dropped ids (version 1 freed them).
const (
	snapshotMagic   = "MSNAP2"
	snapshotMagicV1 = "MSNAP1"
)

// orderState is Order with its unexported fields, for snapshots.
type orderState struct {
	Order
	Reservation  uint64 `json:"reservation"`
	ReservePrice int64  `json:"reserve_price"`
	Acct         uint32 `json:"acct"`
}

func (sh *shard) encodeState() ([]byte, error) { return sh.captureState().encode() }

func (st *shardState) encode() ([]byte, error) { return st.encodeAs(snapshotMagic) }

// encodeAs writes the state in the format magic names (tests write version 1 to prove it is read).
func (st *shardState) encodeAs(magic string) ([]byte, error) {
	size := len(snapshotMagic)
	for i := range st.Markets {
		size += len(st.Markets[i].Book) + 64*len(st.Markets[i].Orders) + 10*len(st.Markets[i].Closed) + 1024
	}
	out := append(make([]byte, 0, size), magic...)
	out = binary.AppendUvarint(out, uint64(len(st.Markets)))
	for i := range st.Markets {
		ms := &st.Markets[i]
		header, err := json.Marshal(ms)
		if err != nil {
			return nil, err
		}
		out = wire.AppendBytes(out, header)
		out = wire.AppendBytes(out, ms.Book)
		out = appendOrders(out, ms.Orders, magic != snapshotMagicV1)
		out = binary.AppendUvarint(out, uint64(len(ms.Closed)))
		for _, id := range ms.Closed {
			out = binary.AppendUvarint(out, id)
		}
		if magic != snapshotMagicV1 {
			out = appendGone(out, ms.Gone)
		}
	}
	return out, nil
}

func decodeShardState(data []byte) (*shardState, error) {
	if len(data) < len(snapshotMagic) {
		return nil, errors.New("snapshot: not a matching snapshot")
	}
	var withNotional bool
	switch string(data[:len(snapshotMagic)]) {
	case snapshotMagic:
		withNotional = true
	case snapshotMagicV1:
	default:
		return nil, errors.New("snapshot: not a matching snapshot")
	}
	r := wire.NewReader(data[len(snapshotMagic):])
	n := r.Count()
	st := &shardState{}
	for range n {
		var ms marketState
		if err := json.Unmarshal(r.Bytes(), &ms); err != nil || r.Err() != nil {
			return nil, fmt.Errorf("snapshot header: %w", errors.Join(err, r.Err()))
		}
		ms.Book = r.Bytes()
		var err error
		if ms.Orders, err = readOrders(r, ms.Spec.Symbol, withNotional); err != nil {
			return nil, err
		}
		ms.Closed = make([]uint64, r.Count())
		for i := range ms.Closed {
			ms.Closed[i] = r.Uvarint()
		}
		if withNotional {
			ms.Gone = readGone(r)
		}
		if r.Err() != nil {
			return nil, fmt.Errorf("snapshot of %s: %w", ms.Spec.Symbol, r.Err())
		}
		st.Markets = append(st.Markets, ms)
	}
	if r.Len() != 0 {
		return nil, fmt.Errorf("snapshot: %d trailing bytes", r.Len())
	}
	return st, nil
}

// captureState copies the shard's state; encoding it can then happen off the shard goroutine.
func (sh *shard) captureState() *shardState {
	st := &shardState{}
	for _, m := range sh.markets {
		ms := marketState{Spec: m.spec, LastID: m.lastID, MDSeq: m.mdSeq, Accounts: slices.Clone(m.acctNames),
			Closed: slices.Clone(m.closed[m.closedHd:]), Gone: slices.Clone(m.gone[m.goneHd:]), Book: m.book.AppendSnapshot(nil), Orders: make([]orderState, 0, len(m.orders))}
		for _, o := range m.orders {
			ms.Orders = append(ms.Orders, orderState{Order: *o, Reservation: o.reservation, ReservePrice: o.reservePrice, Acct: o.acct})
		}
		sort.Slice(ms.Orders, func(i, j int) bool { return ms.Orders[i].ID < ms.Orders[j].ID })
		st.Markets = append(st.Markets, ms)
	}
	return st
}

func (sh *shard) decodeState(data []byte) error {
	st, err := decodeShardState(data)
	if err != nil {
		return err
	}
	for _, ms := range st.Markets {
		m := sh.addMarket(ms.Spec)
		if err := m.book.Restore(ms.Book); err != nil {
			return fmt.Errorf("snapshot of %s: %w", ms.Spec.Symbol, err)
		}
		m.lastID, m.mdSeq = ms.LastID, ms.MDSeq
		for _, a := range ms.Accounts {
			m.acctNum(a)
		}
		// Dropped records first: a retained order that took one of their ids after the window wins.
		for _, g := range ms.Gone {
			m.clientIDs[g.key], m.closedAt[g.id] = g.id, g.closedAt
		}
		for _, os := range ms.Orders {
			o := os.Order
			o.reservation, o.reservePrice, o.acct = os.Reservation, os.ReservePrice, os.Acct
			m.orders[o.ID] = &o
			m.clientIDs[clientKey(o.Account, o.ClientOrderID)] = o.ID
			if o.Status.closed() {
				m.closedAt[o.ID] = o.Updated
			}
		}
		m.closed, m.gone = ms.Closed, ms.Gone
		m.publishTop()
	}
	return nil
}

// recover loads the newest snapshot and replays the journal after it. The settlements of replayed
// commands are queued for the reporter: the risk service skips the positions it already has.
func (sh *shard) recover() (records int, snapshot bool, err error) {
	seq, data, snapshot, err := sh.journal.LatestSnapshot()
	if err != nil {
		return 0, false, err
	}
	if snapshot {
		if err := sh.decodeState(data); err != nil {
			return 0, true, err
		}
	}
	out := output{replay: true}
	bySymbol := map[string]*market{}
	for _, m := range sh.markets {
		bySymbol[m.spec.Symbol] = m
	}
	var last uint64
	for rec, err := range sh.journal.Replay(seq + 1) {
		if err != nil {
			return records, snapshot, err
		}
		c, err := journal.Decode(rec.Payload)
		if err != nil {
			return records, snapshot, fmt.Errorf("record %d: %w", rec.Seq, err)
		}
		records++
		last = rec.Seq
		out.seq = rec.Seq
		if c.Kind == journal.CommandAddSymbol {
			spec, err := decodeSpec(c.Spec)
			if err != nil {
				return records, snapshot, fmt.Errorf("record %d: %w", rec.Seq, err)
			}
			if spec.Instrument() != c.Instrument {
				return records, snapshot, fmt.Errorf("record %d: instrument does not match the spec of %s", rec.Seq, spec.Symbol)
			}
			bySymbol[spec.Symbol] = sh.addMarket(spec)
			continue
		}
		m := bySymbol[c.Symbol]
		if m == nil {
			return records, snapshot, fmt.Errorf("record %d: command for unknown symbol %q", rec.Seq, c.Symbol)
		}
		if c.Kind == journal.CommandSubmit && c.Order.ID != m.lastID+1 {
			return records, snapshot, errors.New("order ids in the journal are not consecutive")
		}
		m.apply(&c, &out)
	}
	out.md = nil
	for _, m := range sh.markets {
		m.publishTop()
	}
	// The reporter starts at the snapshot: everything it covers was settled before it was written.
	sh.rep.start(seq)
	if len(out.settle) > 0 {
		sh.rep.push(reportBatch{seq: last, items: out.settle})
	}
	return records, snapshot, nil
}
