package journal

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"github.com/bourse-dev/bourse/services/matching/internal/book"
)

// CommandKind is what a journaled command does.
type CommandKind uint8

const (
	// CommandAddSymbol creates a book for Symbol with Instrument.
	CommandAddSymbol CommandKind = iota + 1
	// CommandSubmit is Book.Submit(Order).
	CommandSubmit
	// CommandCancel is Book.Cancel(OrderID).
	CommandCancel
	// CommandCancelAll is Book.CancelAll(Account).
	CommandCancelAll
	// CommandAmend is Book.Amend(Amend).
	CommandAmend
	// CommandExpire is Book.Expire(Timestamp).
	CommandExpire

	lastCommandKind = CommandExpire
)

func (k CommandKind) valid() bool { return k >= CommandAddSymbol && k <= lastCommandKind }

// Command is a matching command as journaled. The fields above the blank
// line are stored for every kind; of the others, only those of Kind.
type Command struct {
	Kind   CommandKind
	Symbol string
	// Timestamp is the service's time when it accepted the command, in
	// unix nanoseconds. For CommandExpire it is the time passed to
	// Book.Expire: the book never reads a clock, so replay must use the
	// recorded one.
	Timestamp int64
	// ClientOrderID, AccountID and ReservationID tie the command to the
	// client and to the risk service's reservation; the book never reads
	// them.
	ClientOrderID string
	AccountID     string
	ReservationID uint64

	Instrument book.Instrument // CommandAddSymbol
	// Spec is the service's description of the symbol (its decimal rules), stored with
	// CommandAddSymbol so that replay needs nothing but the journal.
	Spec  string
	Order book.NewOrder // CommandSubmit
	// ClientType is the order type the client asked for, when the service maps it onto another
	// book type (a market order enters the book as a limit IOC at its protection price).
	ClientType uint8      // CommandSubmit
	Amend      book.Amend // CommandAmend
	OrderID    uint64     // CommandCancel
	Account    uint32     // CommandCancelAll
}

// Encoding, version 1. Integers are varints: unsigned for ids, counts and
// lengths, zig-zag signed for prices, quantities and times; strings are a
// length and their bytes. Decode accepts only the shortest form of every
// varint and 0 or 1 for booleans, so each Command has exactly one
// encoding and Decode(b) re-encodes to b.
//
//	version kind symbol timestamp client-order-id account-id reservation-id
//	then, by kind:
//	  add symbol:  tick size, lot size, min qty, max qty, max price, spec
//	  submit:      id, account, side, type, tif, stp, post-only (one byte
//	               each), price, trigger price, qty, display qty,
//	               expire at, now - timestamp (one byte in the usual case
//	               where the order's time is the command's), client type
//	  cancel:      order id
//	  cancel all:  account
//	  amend:       id, price, qty, trigger price
//	  expire:      nothing
const commandVersion = 1

// ErrBadCommand wraps every Decode failure.
var ErrBadCommand = errors.New("journal: malformed command")

// AppendEncode appends the encoding of c to dst. It does not allocate
// when dst has room. It panics if c.Kind is not one of the CommandKind
// constants: such a command could not be decoded on replay, and storing it
// would make the journal unreadable.
func AppendEncode(dst []byte, c Command) []byte {
	if !c.Kind.valid() {
		panic(fmt.Sprintf("journal: encode command of unknown kind %d", c.Kind))
	}
	dst = append(dst, commandVersion, byte(c.Kind))
	dst = appendString(dst, c.Symbol)
	dst = binary.AppendVarint(dst, c.Timestamp)
	dst = appendString(dst, c.ClientOrderID)
	dst = appendString(dst, c.AccountID)
	dst = binary.AppendUvarint(dst, c.ReservationID)
	switch c.Kind {
	case CommandAddSymbol:
		in := &c.Instrument
		dst = binary.AppendVarint(dst, in.TickSize)
		dst = binary.AppendVarint(dst, in.LotSize)
		dst = binary.AppendVarint(dst, in.MinQty)
		dst = binary.AppendVarint(dst, in.MaxQty)
		dst = binary.AppendVarint(dst, in.MaxPrice)
		dst = appendString(dst, c.Spec)
	case CommandSubmit:
		o := &c.Order
		dst = binary.AppendUvarint(dst, o.ID)
		dst = binary.AppendUvarint(dst, uint64(o.Account))
		dst = append(dst, byte(o.Side), byte(o.Type), byte(o.TIF), byte(o.STP), boolByte(o.PostOnly))
		dst = binary.AppendVarint(dst, o.Price)
		dst = binary.AppendVarint(dst, o.TriggerPrice)
		dst = binary.AppendVarint(dst, o.Qty)
		dst = binary.AppendVarint(dst, o.DisplayQty)
		dst = binary.AppendVarint(dst, o.ExpireAt)
		dst = binary.AppendVarint(dst, o.Now-c.Timestamp) // wraps; Decode adds it back
		dst = append(dst, c.ClientType)
	case CommandCancel:
		dst = binary.AppendUvarint(dst, c.OrderID)
	case CommandCancelAll:
		dst = binary.AppendUvarint(dst, uint64(c.Account))
	case CommandAmend:
		a := &c.Amend
		dst = binary.AppendUvarint(dst, a.ID)
		dst = binary.AppendVarint(dst, a.Price)
		dst = binary.AppendVarint(dst, a.Qty)
		dst = binary.AppendVarint(dst, a.TriggerPrice)
	case CommandExpire:
	}
	return dst
}

func appendString(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

func boolByte(v bool) byte {
	if v {
		return 1
	}
	return 0
}

// Decode parses a command encoded by AppendEncode. It rejects, with an
// error wrapping ErrBadCommand, anything AppendEncode would not have
// produced: unknown versions or kinds, truncation, trailing bytes,
// non-minimal varints, out-of-range values.
func Decode(b []byte) (Command, error) {
	d := decoder{buf: b}
	var c Command
	if v := d.byte(); d.err == nil && v != commandVersion {
		return Command{}, fmt.Errorf("%w: unknown version %d", ErrBadCommand, v)
	}
	c.Kind = CommandKind(d.byte())
	if d.err == nil && !c.Kind.valid() {
		return Command{}, fmt.Errorf("%w: unknown kind %d", ErrBadCommand, c.Kind)
	}
	c.Symbol = d.string()
	c.Timestamp = d.varint()
	c.ClientOrderID = d.string()
	c.AccountID = d.string()
	c.ReservationID = d.uvarint()
	switch c.Kind {
	case CommandAddSymbol:
		c.Instrument = book.Instrument{
			TickSize: d.varint(),
			LotSize:  d.varint(),
			MinQty:   d.varint(),
			MaxQty:   d.varint(),
			MaxPrice: d.varint(),
		}
		c.Spec = d.string()
	case CommandSubmit:
		o := &c.Order
		o.ID = d.uvarint()
		o.Account = d.uint32()
		o.Side = book.Side(d.byte())
		o.Type = book.OrderType(d.byte())
		o.TIF = book.TimeInForce(d.byte())
		o.STP = book.STPMode(d.byte())
		o.PostOnly = d.bool()
		o.Price = d.varint()
		o.TriggerPrice = d.varint()
		o.Qty = d.varint()
		o.DisplayQty = d.varint()
		o.ExpireAt = d.varint()
		o.Now = c.Timestamp + d.varint()
		c.ClientType = d.byte()
	case CommandCancel:
		c.OrderID = d.uvarint()
	case CommandCancelAll:
		c.Account = d.uint32()
	case CommandAmend:
		c.Amend = book.Amend{ID: d.uvarint(), Price: d.varint(), Qty: d.varint(), TriggerPrice: d.varint()}
	case CommandExpire:
	}
	if d.err == nil && d.off != len(b) {
		d.fail("%d trailing bytes", len(b)-d.off)
	}
	if d.err != nil {
		return Command{}, d.err
	}
	return c, nil
}

// decoder reads fields in order and remembers the first error, so Decode
// can read a whole command and check once.
type decoder struct {
	buf []byte
	off int
	err error
}

func (d *decoder) fail(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: at byte %d: %s", ErrBadCommand, d.off, fmt.Sprintf(format, args...))
	}
}

func (d *decoder) byte() byte {
	if d.err != nil {
		return 0
	}
	if d.off >= len(d.buf) {
		d.fail("truncated")
		return 0
	}
	v := d.buf[d.off]
	d.off++
	return v
}

func (d *decoder) bool() bool {
	switch d.byte() {
	case 0:
		return false
	case 1:
		return true
	}
	d.fail("boolean is not 0 or 1")
	return false
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.buf[d.off:])
	switch {
	case n == 0:
		d.fail("truncated")
		return 0
	case n < 0:
		d.fail("varint overflows 64 bits")
		return 0
	case n != uvarintLen(v):
		d.fail("varint is not in its shortest form")
		return 0
	}
	d.off += n
	return v
}

// varint reads a zig-zag signed varint, the form binary.AppendVarint
// writes.
func (d *decoder) varint() int64 {
	u := d.uvarint()
	return int64(u>>1) ^ -int64(u&1)
}

func (d *decoder) uint32() uint32 {
	v := d.uvarint()
	if v > math.MaxUint32 {
		d.fail("value %d does not fit in 32 bits", v)
		return 0
	}
	return uint32(v)
}

func (d *decoder) string() string {
	n := d.uvarint()
	if d.err != nil {
		return ""
	}
	if n > uint64(len(d.buf)-d.off) {
		d.fail("string of %d bytes is truncated", n)
		return ""
	}
	s := string(d.buf[d.off : d.off+int(n)])
	d.off += int(n)
	return s
}

// uvarintLen is the length of the shortest encoding of v.
func uvarintLen(v uint64) int {
	n := 1
	for v >= 0x80 {
		v >>= 7
		n++
	}
	return n
}
