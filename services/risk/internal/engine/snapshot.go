package engine

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"slices"
	"strconv"

	"github.com/bourse-dev/bourse/pkg/errs"
)

// A snapshot is the engine's whole durable state as of one event, so that a restart loads it and
// replays only the events after it: replay time and the log's size are bounded by the state, not by
// the history. What is not an event (reservations, rate buckets, reservation owners) is not in it
// either; it is rebuilt the same way as after a full replay.
//
// Encoding: one header line, then the state as JSON:
//
//	bourse-risk-snapshot <version> <seq> <length of the JSON> <CRC-32C of the JSON, hex>\n{...}
//
// The header lets a truncated or corrupt snapshot fail loudly before anything is decoded; the JSON
// body keeps the format open to new state (see snapshotState) and is decoded strictly, so a
// snapshot written by a newer engine with state this one does not know is refused rather than
// silently loaded without it.

const (
	snapshotMagic   = "bourse-risk-snapshot"
	snapshotVersion = 1
	// maxSnapshotHeader bounds the header line a decoder reads before it knows anything.
	maxSnapshotHeader = 128
)

var crc32c = crc32.MakeTable(crc32.Castagnoli)

// snapshotState is the encoded state. Lists are in the engine's index order (assets, symbols,
// accounts: indexes are positional and must come back identical) or sorted (the rest), so equal
// states encode to equal bytes.
//
// To add durable state: add a field here (with omitempty, so snapshots without it still read as
// "empty"), fill it in (*Engine).captureLocked, and validate and install it in (*Engine).install,
// after the state it refers to. A change that an older engine would misread (rather than refuse as
// an unknown field) bumps snapshotVersion.
type snapshotState struct {
	Seq      uint64         `json:"seq"`
	Global   TradingState   `json:"global"`
	Assets   []Asset        `json:"assets"`
	Symbols  []snapSymbol   `json:"symbols"`
	Accounts []snapAccount  `json:"accounts"` // the fee account first
	Refs     []snapTransfer `json:"refs,omitempty"`
	Execs    []Execution    `json:"execs,omitempty"`
	Streams  []snapStream   `json:"streams,omitempty"`
}

type snapSymbol struct {
	Spec SymbolSpec `json:"spec"`
	Mark int64      `json:"mark,omitempty"`
}

type snapAccount struct {
	ID        string         `json:"id"`
	State     TradingState   `json:"state,omitempty"`
	Limits    Limits         `json:"limits"`
	Balances  []int64        `json:"balances,omitempty"` // totals by asset index
	Positions []snapPosition `json:"positions,omitempty"`
}

// snapPosition is the durable part of a position: openBuy and openSell belong to reservations.
type snapPosition struct {
	Symbol   int32   `json:"symbol"` // index
	Qty      int64   `json:"qty,omitempty"`
	Cost     int64   `json:"cost,omitempty"`
	Realised int64   `json:"realised,omitempty"`
	Fees     int64   `json:"fees,omitempty"`
	Day      int64   `json:"day,omitempty"`
	DayPnL   int64   `json:"day_pnl,omitempty"`
	HWM      int64   `json:"hwm,omitempty"`
	Limits   *Limits `json:"limits,omitempty"` // the symbol override, when there is one
}

type snapTransfer struct {
	Kind     EventKind `json:"kind"`
	Transfer Transfer  `json:"transfer"`
	Seq      uint64    `json:"seq"`
	Total    int64     `json:"total"`
}

type snapStream struct {
	Stream  StreamID `json:"stream"`
	Through uint64   `json:"through"`
}

// Snapshot encodes the engine's durable state and returns it with the Seq of the last event it
// includes. It holds the commit lock while it copies the state (durable calls wait; CheckOrder and
// Release do not) and encodes after releasing it.
func (e *Engine) Snapshot() (seq uint64, data []byte, err error) {
	e.commitMu.Lock()
	s := e.captureLocked()
	e.commitMu.Unlock()
	s.sort()
	data, err = encodeSnapshot(&s)
	return s.Seq, data, err
}

func (e *Engine) captureLocked() snapshotState {
	cat := e.catalog.Load()
	s := snapshotState{Seq: e.seq, Global: TradingState(e.global.Load()),
		Refs: make([]snapTransfer, 0, len(e.refs)), Execs: make([]Execution, 0, len(e.execs))}
	for _, a := range cat.assetList {
		s.Assets = append(s.Assets, a.Asset)
	}
	for _, sym := range cat.symbolList {
		s.Symbols = append(s.Symbols, snapSymbol{Spec: sym.spec, Mark: sym.mark.Load()})
	}
	for _, acct := range e.accounts.all() {
		acct.mu.Lock()
		sa := snapAccount{ID: acct.id, State: acct.state, Limits: acct.limits}
		last := -1
		for i, b := range acct.balances {
			if b.total != 0 {
				last = i
			}
		}
		for _, b := range acct.balances[:last+1] {
			sa.Balances = append(sa.Balances, b.total)
		}
		for i, p := range acct.positions {
			if p == nil {
				continue
			}
			sp := snapPosition{Symbol: int32(i), Qty: p.qty, Cost: p.cost, Realised: p.realised, Fees: p.fees,
				Day: p.day, DayPnL: p.dayPnL, HWM: p.hwm}
			if p.hasLimits {
				l := p.limits
				sp.Limits = &l
			}
			if sp != (snapPosition{Symbol: int32(i)}) {
				sa.Positions = append(sa.Positions, sp)
			}
		}
		acct.mu.Unlock()
		s.Accounts = append(s.Accounts, sa)
	}
	for _, r := range e.refs {
		s.Refs = append(s.Refs, snapTransfer{Kind: r.kind, Transfer: r.t, Seq: r.result.Seq, Total: r.result.Total})
	}
	for _, x := range e.execs {
		s.Execs = append(s.Execs, x)
	}
	for id, through := range e.settle.streams {
		s.Streams = append(s.Streams, snapStream{Stream: id, Through: through})
	}
	return s
}

// sort orders the lists copied from maps, outside the commit lock, so equal states encode alike.
func (s *snapshotState) sort() {
	slices.SortFunc(s.Refs, func(a, b snapTransfer) int { return cmp.Compare(a.Seq, b.Seq) })
	slices.SortFunc(s.Execs, func(a, b Execution) int { return cmp.Compare(a.ExecID, b.ExecID) })
	slices.SortFunc(s.Streams, func(a, b snapStream) int {
		return cmp.Or(cmp.Compare(a.Stream.Owner, b.Stream.Owner), cmp.Compare(a.Stream.Shard, b.Stream.Shard), cmp.Compare(a.Stream.Epoch, b.Stream.Epoch))
	})
}

func encodeSnapshot(s *snapshotState) ([]byte, error) {
	body, err := json.Marshal(s)
	if err != nil {
		return nil, fmt.Errorf("encode snapshot: %w", err)
	}
	header := fmt.Sprintf("%s %d %d %d %08x\n", snapshotMagic, snapshotVersion, s.Seq, len(body), crc32.Checksum(body, crc32c))
	return append([]byte(header), body...), nil
}

// decodeSnapshot checks the frame and decodes the state; it never panics on any input.
func decodeSnapshot(data []byte) (*snapshotState, error) {
	bad := func(format string, args ...any) error {
		return errs.New(errs.KindFailedPrecondition, "snapshot: "+format, args...)
	}
	nl := bytes.IndexByte(data[:min(len(data), maxSnapshotHeader)], '\n')
	if nl < 0 {
		return nil, bad("no header line (truncated or not a snapshot)")
	}
	fields := bytes.Fields(data[:nl])
	if len(fields) != 5 || string(fields[0]) != snapshotMagic {
		return nil, bad("malformed header %q", data[:nl])
	}
	num := func(b []byte, base int) (uint64, bool) {
		n, err := strconv.ParseUint(string(b), base, 64)
		return n, err == nil
	}
	version, ok1 := num(fields[1], 10)
	seq, ok2 := num(fields[2], 10)
	length, ok3 := num(fields[3], 10)
	sum, ok4 := num(fields[4], 16)
	switch {
	case !ok1 || !ok2 || !ok3 || !ok4:
		return nil, bad("malformed header %q", data[:nl])
	case version != snapshotVersion:
		return nil, bad("format version %d, this engine reads %d", version, snapshotVersion)
	}
	body := data[nl+1:]
	switch {
	case uint64(len(body)) < length:
		return nil, bad("truncated: %d of %d bytes", len(body), length)
	case uint64(len(body)) > length:
		return nil, bad("%d bytes after the state", uint64(len(body))-length)
	case uint64(crc32.Checksum(body, crc32c)) != sum:
		return nil, bad("checksum mismatch: the snapshot is corrupt")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	var s snapshotState
	if err := dec.Decode(&s); err != nil {
		return nil, bad("decode: %v", err)
	}
	if dec.More() {
		return nil, bad("data after the state")
	}
	if s.Seq != seq {
		return nil, bad("header says event %d, state says %d", seq, s.Seq)
	}
	return &s, nil
}

// LoadSnapshot installs a snapshot (from Snapshot) into a new engine, before any event is applied
// or reservation made; replay then continues with the event after the snapshot's Seq. The snapshot
// goes through the same validation as the events that built it; a snapshot that is truncated,
// corrupt, or does not fit this engine's Config is an error naming why, after which the engine
// must be discarded.
func (e *Engine) LoadSnapshot(data []byte) error {
	s, err := decodeSnapshot(data)
	if err != nil {
		return err
	}
	e.commitMu.Lock()
	defer e.commitMu.Unlock()
	if e.seq != 0 || e.reservationsUsed.Load() || e.accounts.count() != 1 || len(e.catalog.Load().assetList) != 0 {
		return errs.New(errs.KindFailedPrecondition, "a snapshot can only be loaded into a new engine")
	}
	if err := e.install(s); err != nil {
		return fmt.Errorf("snapshot at event %d: %w", s.Seq, err)
	}
	return nil
}

// install rebuilds the state through the engine's own validating paths (persisting nothing) and
// checks what they do not.
func (e *Engine) install(s *snapshotState) error {
	// Sized up front: growing maps of millions of records costs more than decoding them.
	e.refs = make(map[string]transferRecord, len(s.Refs))
	e.execs = make(map[string]Execution, len(s.Execs))
	for i, a := range s.Assets {
		if err := e.defineAsset(a, nil); err != nil {
			return err
		}
		if len(e.catalog.Load().assetList) != i+1 {
			return errs.New(errs.KindFailedPrecondition, "asset %s listed twice", a.ID)
		}
	}
	for i, sym := range s.Symbols {
		if err := e.defineSymbol(sym.Spec, nil); err != nil {
			return err
		}
		cat := e.catalog.Load()
		if len(cat.symbolList) != i+1 {
			return errs.New(errs.KindFailedPrecondition, "symbol %s listed twice", sym.Spec.ID)
		}
		if sym.Mark < 0 {
			return errs.Invalid("symbol.mark", "symbol %s: negative mark price", sym.Spec.ID)
		}
		cat.symbolList[i].mark.Store(sym.Mark)
	}
	if !s.Global.valid() {
		return errs.Invalid("global", "unknown trading state %d", uint8(s.Global))
	}
	e.global.Store(uint32(s.Global))
	if len(s.Accounts) == 0 || s.Accounts[0].ID != e.feeAccount.id {
		return errs.New(errs.KindFailedPrecondition, "the first account must be the fee account %q of this engine's Config", e.feeAccount.id)
	}
	for i, sa := range s.Accounts {
		if i > 0 {
			if err := e.openAccount(AccountSpec{ID: sa.ID, Limits: sa.Limits}, nil); err != nil {
				return err
			}
		} else if err := sa.Limits.validate("account.limits", true); err != nil {
			return err
		}
		if err := e.installAccount(e.accounts.at(uint32(i)), &sa); err != nil {
			return fmt.Errorf("account %q: %w", sa.ID, err)
		}
	}
	for _, r := range s.Refs {
		t := r.Transfer
		switch {
		case r.Kind != EventCredit && r.Kind != EventDebit:
			return errs.Invalid("refs.kind", "unknown transfer kind %q", r.Kind)
		case t.Ref == "" || len(t.Ref) > maxRefLen || t.Amount <= 0 || r.Seq == 0 || r.Seq > s.Seq:
			return errs.Invalid("refs", "malformed transfer record %q", t.Ref)
		case e.accounts.lookup(t.Account) == nil || e.catalog.Load().assets[t.Asset] == nil:
			return errs.New(errs.KindNotFound, "transfer %q names an unknown account or asset", t.Ref)
		}
		if _, dup := e.refs[refKey(t.Account, t.Ref)]; dup {
			return errs.New(errs.KindFailedPrecondition, "transfer ref %q listed twice", t.Ref)
		}
		e.refs[refKey(t.Account, t.Ref)] = transferRecord{kind: r.Kind, t: t, result: TransferResult{Seq: r.Seq, Total: r.Total}}
	}
	for _, x := range s.Execs {
		if x.ExecID == "" || len(x.ExecID) > maxRefLen {
			return errs.Invalid("execs", "malformed execution id")
		}
		if _, dup := e.execs[x.ExecID]; dup {
			return errs.New(errs.KindFailedPrecondition, "execution %q listed twice", x.ExecID)
		}
		e.execs[x.ExecID] = x
	}
	for _, st := range s.Streams {
		if err := st.Stream.validate("streams.stream"); err != nil {
			return err
		}
		if _, dup := e.settle.streams[st.Stream]; dup || st.Through == 0 {
			return errs.New(errs.KindFailedPrecondition, "stream %s listed twice or at position 0", st.Stream)
		}
		if e.settle.streams == nil {
			e.settle.streams = map[StreamID]uint64{}
		}
		e.settle.streams[st.Stream] = st.Through
	}
	e.seq = s.Seq // openAccount numbered phantom events; the state is as of the snapshot's
	return nil
}

func (e *Engine) installAccount(acct *account, sa *snapAccount) error {
	cat := e.catalog.Load()
	if !sa.State.valid() {
		return errs.Invalid("state", "unknown trading state %d", uint8(sa.State))
	}
	if len(sa.Balances) > len(cat.assetList) {
		return errs.Invalid("balances", "%d balances for %d assets", len(sa.Balances), len(cat.assetList))
	}
	acct.mu.Lock()
	defer acct.mu.Unlock()
	acct.state = sa.State
	acct.limits = sa.Limits
	for i, total := range sa.Balances {
		if total < 0 {
			return errs.Invalid("balances", "negative total %d of %s", total, cat.assetList[i].ID)
		}
		if total != 0 {
			acct.balanceRef(int32(i)).total = total
		}
	}
	prev := int32(-1)
	for _, sp := range sa.Positions {
		switch {
		case sp.Symbol <= prev || int(sp.Symbol) >= len(cat.symbolList):
			return errs.Invalid("positions.symbol", "symbol index %d out of order or unknown", sp.Symbol)
		case (sp.Qty == 0) != (sp.Cost == 0) || sp.Cost < 0 || sp.HWM < 0:
			return errs.Invalid("positions", "inconsistent position in %s", cat.symbolList[sp.Symbol].spec.ID)
		}
		prev = sp.Symbol
		p := acct.positionRef(sp.Symbol)
		p.qty, p.cost, p.realised, p.fees, p.day, p.dayPnL, p.hwm = sp.Qty, sp.Cost, sp.Realised, sp.Fees, sp.Day, sp.DayPnL, sp.HWM
		if sp.Limits != nil {
			if err := sp.Limits.validate("positions.limits", false); err != nil {
				return err
			}
			p.limits, p.hasLimits = *sp.Limits, true
		}
	}
	return nil
}
