package book

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"slices"
)

// Snapshot layout, every integer a varint (unsigned for ids, counts and
// sequence numbers, zig-zag signed otherwise):
//
//	"BOOK" version
//	instrument: tick size, lot size, min qty, max qty, max price
//	last event seq, has-last-price byte, last price
//	four queues - bids, asks, buy stops, sell stops - each as a count
//	followed by its orders in priority order
//	CRC-32 (IEEE) of everything before it, 4 bytes little endian
//
// Only state with meaning is written, never pool indices, free lists or
// hash table layout, so the bytes depend on the book's orders and history
// alone: a replayed book and the live one compare equal.

const (
	snapshotMagic   = "BOOK"
	snapshotVersion = 1
)

// ErrBadSnapshot wraps every Restore failure.
var ErrBadSnapshot = errors.New("book: bad snapshot")

// AppendSnapshot appends a canonical binary image of the book to dst.
func (b *Book) AppendSnapshot(dst []byte) []byte {
	start := len(dst)
	dst = append(dst, snapshotMagic...)
	dst = append(dst, snapshotVersion)
	for _, v := range [...]int64{b.inst.TickSize, b.inst.LotSize, b.inst.MinQty, b.inst.MaxQty, b.inst.MaxPrice} {
		dst = binary.AppendVarint(dst, v)
	}
	dst = binary.AppendUvarint(dst, b.seq)
	dst = append(dst, boolByte(b.hasLast))
	dst = binary.AppendVarint(dst, b.last)
	for _, q := range snapshotQueues {
		dst = binary.AppendUvarint(dst, uint64(b.queueSide(q).orders))
		for r := range b.queue(q.side, q.stops) {
			dst = appendOrder(dst, &b.orders[r])
		}
	}
	return binary.LittleEndian.AppendUint32(dst, crc32.ChecksumIEEE(dst[start:]))
}

type queueID struct {
	side  Side
	stops bool
}

var snapshotQueues = [...]queueID{{Buy, false}, {Sell, false}, {Buy, true}, {Sell, true}}

func (b *Book) queueSide(q queueID) *ladderSide {
	if q.stops {
		return b.stopSide(q.side)
	}
	return b.side(q.side)
}

func appendOrder(dst []byte, o *order) []byte {
	dst = binary.AppendUvarint(dst, o.id)
	dst = binary.AppendUvarint(dst, o.acceptSeq)
	dst = binary.AppendUvarint(dst, uint64(o.account))
	dst = append(dst, byte(o.side), byte(o.typ), byte(o.tif), byte(o.stp), boolByte(o.postOnly))
	for _, v := range [...]int64{o.price, o.trigger, o.qty, o.filled, o.cancelled, o.remaining, o.visible, o.display, o.expireAt} {
		dst = binary.AppendVarint(dst, v)
	}
	return dst
}

func boolByte(v bool) byte {
	if v {
		return 1
	}
	return 0
}

// Restore replaces the book's contents with a snapshot made by
// AppendSnapshot, reusing the book's memory. The snapshot is fully
// checked; on error the book is left empty (as after New with the
// instrument it had) and the error wraps ErrBadSnapshot.
func (b *Book) Restore(data []byte) error {
	inst := b.inst
	if err := b.restore(data); err != nil {
		b.reset(inst)
		return fmt.Errorf("%w: %v", ErrBadSnapshot, err)
	}
	return nil
}

func (b *Book) reset(inst Instrument) {
	b.inst = inst
	b.seq, b.last, b.hasLast = 0, 0, false
	clear(b.orders)
	b.orders = b.orders[:1]
	b.freeOrders = 0
	b.levels = b.levels[:1]
	b.freeLevels = 0
	for i := range b.sides {
		b.sides[i].index.reset()
		b.sides[i].orders = 0
		b.stops[i].index.reset()
		b.stops[i].orders = 0
	}
	b.ids.t.reset()
	b.accounts.reset()
	b.expiry = b.expiry[:0]
	b.trigHead, b.trigTail = 0, 0
}

// snapshotReader decodes varints and remembers the first error.
type snapshotReader struct {
	buf []byte
	err error
}

func (r *snapshotReader) fail(format string, args ...any) {
	if r.err == nil {
		r.err = fmt.Errorf(format, args...)
	}
}

func (r *snapshotReader) uvarint() uint64 {
	v, n := binary.Uvarint(r.buf)
	if n <= 0 {
		r.fail("truncated or overlong varint")
		r.buf = nil
		return 0
	}
	r.buf = r.buf[n:]
	return v
}

func (r *snapshotReader) varint() int64 {
	v, n := binary.Varint(r.buf)
	if n <= 0 {
		r.fail("truncated or overlong varint")
		r.buf = nil
		return 0
	}
	r.buf = r.buf[n:]
	return v
}

func (r *snapshotReader) byte() byte {
	if len(r.buf) == 0 {
		r.fail("truncated")
		return 0
	}
	v := r.buf[0]
	r.buf = r.buf[1:]
	return v
}

func (b *Book) restore(data []byte) error {
	const header = len(snapshotMagic) + 1
	if len(data) < header+4 {
		return errors.New("too short")
	}
	body, sum := data[:len(data)-4], binary.LittleEndian.Uint32(data[len(data)-4:])
	if crc32.ChecksumIEEE(body) != sum {
		return errors.New("checksum mismatch")
	}
	if string(body[:len(snapshotMagic)]) != snapshotMagic {
		return errors.New("not a book snapshot")
	}
	if v := body[len(snapshotMagic)]; v != snapshotVersion {
		return fmt.Errorf("unsupported version %d", v)
	}
	rd := &snapshotReader{buf: body[header:]}
	var inst Instrument
	inst.TickSize, inst.LotSize = rd.varint(), rd.varint()
	inst.MinQty, inst.MaxQty, inst.MaxPrice = rd.varint(), rd.varint(), rd.varint()
	if rd.err == nil && inst.normalized() != inst {
		return errors.New("instrument limits out of range")
	}
	b.reset(inst)
	b.seq = rd.uvarint()
	b.hasLast = rd.byte() != 0
	b.last = rd.varint()
	if rd.err != nil {
		return rd.err
	}

	for _, q := range snapshotQueues {
		n := rd.uvarint()
		if rd.err != nil {
			return rd.err
		}
		if n > uint64(len(rd.buf)) { // every order takes well over a byte
			return errors.New("order count exceeds data")
		}
		s := b.queueSide(q)
		var prevKey int64
		for i := range n {
			r := b.allocOrder()
			o := &b.orders[r]
			if err := b.decodeOrder(rd, o, q); err != nil {
				return fmt.Errorf("%s order %d: %w", queueName(q), i, err)
			}
			at := o.price
			if q.stops {
				at = o.trigger
			}
			k := s.key(at)
			if i > 0 && k > prevKey {
				return fmt.Errorf("%s order %d out of priority order", queueName(q), i)
			}
			prevKey = k
			if b.ids.get(o.id) != 0 {
				return fmt.Errorf("duplicate order id %d", o.id)
			}
			o.loc = locBook
			if q.stops {
				o.loc = locStop
			}
			b.pushBack(s, b.levelFor(s, at), r)
			o.registered = true
			b.ids.put(o.id, r)
		}
	}
	if len(rd.buf) != 0 {
		return errors.New("trailing data")
	}
	if bid, _, ok := b.BestBid(); ok {
		if ask, _, ok := b.BestAsk(); ok && bid >= ask {
			return errors.New("crossed book")
		}
	}
	for _, side := range [2]Side{Buy, Sell} {
		if lr := b.stopSide(side).index.best(); lr != 0 && b.stopReached(side, b.levels[lr].price) {
			return errors.New("stop order already reached its trigger")
		}
	}
	if err := b.restoreAccountsAndExpiry(); err != nil {
		return err
	}
	// Insist on the one encoding AppendSnapshot produces (minimal
	// varints, 0/1 flags, no stray last price), so byte equality of
	// snapshots keeps meaning equality of books.
	if !bytes.Equal(b.AppendSnapshot(nil), data) {
		return errors.New("non-canonical encoding")
	}
	return nil
}

func queueName(q queueID) string {
	if q.stops {
		return q.side.String() + " stop"
	}
	return q.side.String()
}

// decodeOrder reads one order and checks that it is an order the book
// could have produced in queue q.
func (b *Book) decodeOrder(rd *snapshotReader, o *order, q queueID) error {
	o.id = rd.uvarint()
	o.acceptSeq = rd.uvarint()
	account := rd.uvarint()
	o.account = uint32(account)
	o.side, o.typ, o.tif, o.stp = Side(rd.byte()), OrderType(rd.byte()), TimeInForce(rd.byte()), STPMode(rd.byte())
	postOnly := rd.byte()
	o.postOnly = postOnly == 1
	o.price, o.trigger = rd.varint(), rd.varint()
	o.qty, o.filled, o.cancelled, o.remaining = rd.varint(), rd.varint(), rd.varint(), rd.varint()
	o.visible, o.display, o.expireAt = rd.varint(), rd.varint(), rd.varint()
	switch {
	case rd.err != nil:
		return rd.err
	case o.id == 0, account > 1<<32-1, postOnly > 1:
		return errors.New("bad id, account or flag")
	case o.side != q.side, o.typ > StopLimit, o.tif > DAY, o.stp > STPAllow:
		return errors.New("bad side, type, time in force or stp mode")
	case o.acceptSeq == 0 || o.acceptSeq > b.seq:
		return errors.New("bad acceptance sequence")
	case !b.validQty(o.qty) || o.filled < 0 || o.cancelled < 0 || o.remaining <= 0 ||
		o.filled > o.qty || o.cancelled > o.qty || o.filled+o.cancelled+o.remaining != o.qty:
		return errors.New("inconsistent quantities")
	case o.display < 0 || (o.display > 0 && !o.typ.hasLimitPrice()):
		return errors.New("bad display quantity")
	case o.typ.hasLimitPrice() && !b.validPrice(o.price), o.typ == Stop && o.price != 0 && !b.validPrice(o.price),
		!o.typ.hasPrice() && o.price != 0:
		return errors.New("bad price")
	case o.typ.isStop() && !b.validPrice(o.trigger), !o.typ.isStop() && o.trigger != 0:
		return errors.New("bad trigger price")
	case !o.tif.expires() && o.expireAt != 0:
		return errors.New("expiry on an order that does not expire")
	}
	if q.stops {
		if !o.typ.isStop() || o.visible != o.remaining {
			return errors.New("bad stop order")
		}
	} else if !o.typ.hasLimitPrice() || o.tif.immediate() || o.visible <= 0 || o.visible > o.slice() || (o.display == 0 && o.visible != o.remaining) {
		return errors.New("bad resting order")
	}
	return nil
}

// restoreAccountsAndExpiry rebuilds the account lists in acceptance
// order, which is the order a live book keeps them in, and the expiry
// queue, whose pop order depends only on its (expireAt, acceptSeq) keys.
func (b *Book) restoreAccountsAndExpiry() error {
	refs := b.scratch[:0]
	for r := 1; r < len(b.orders); r++ {
		refs = append(refs, orderRef(r))
	}
	slices.SortFunc(refs, func(x, y orderRef) int {
		return cmp.Compare(b.orders[x].acceptSeq, b.orders[y].acceptSeq)
	})
	b.scratch = refs
	for i, r := range refs {
		if i > 0 && b.orders[refs[i-1]].acceptSeq == b.orders[r].acceptSeq {
			return errors.New("duplicate acceptance sequence")
		}
		b.linkAccount(r)
		if b.orders[r].tif.expires() {
			b.expiryPush(r)
		}
	}
	return nil
}
