package exchange

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/bourse-dev/bourse/services/matching/internal/book"
)

// Order records dominate a snapshot (every open order plus the retained closed ones), so they are
// encoded as varints rather than JSON: several times faster to write and to read back.

func appendOrders(dst []byte, orders []orderState) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(orders)))
	for i := range orders {
		o := &orders[i]
		dst = binary.AppendUvarint(dst, o.ID)
		dst = appendStr(dst, o.ClientOrderID)
		dst = appendStr(dst, o.Account)
		dst = append(dst, byte(o.Side), byte(o.Type), byte(o.TIF), byte(o.STP), byte(o.Status), byte(o.Reject), byte(o.Cancel), boolByte(o.PostOnly))
		for _, v := range [...]int64{o.Price, o.TriggerPrice, o.Qty, o.Filled, o.Remaining, o.DisplayQty, o.ExpireAt, o.Created, o.Updated, o.ReservePrice} {
			dst = binary.AppendVarint(dst, v)
		}
		dst = appendStr(dst, o.RiskReject)
		dst = binary.AppendUvarint(dst, o.Reservation)
		dst = binary.AppendUvarint(dst, uint64(o.Acct))
	}
	return dst
}

func appendStr(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

func boolByte(b bool) byte {
	if b {
		return 1
	}
	return 0
}

type reader struct {
	b   []byte
	err error
}

var errShort = errors.New("snapshot: orders truncated")

func (r *reader) uvarint() uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.err = errShort
		r.b = nil
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) varint() int64 {
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.err = errShort
		r.b = nil
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) bytes(n uint64) []byte {
	if uint64(len(r.b)) < n {
		r.err = errShort
		r.b = nil
		return nil
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}

func (r *reader) str() string { return string(r.bytes(r.uvarint())) }

func readOrders(r *reader, symbol string) ([]orderState, error) {
	n := r.uvarint()
	if n > uint64(len(r.b)) {
		return nil, fmt.Errorf("snapshot: %d orders in %d bytes", n, len(r.b))
	}
	out := make([]orderState, 0, n)
	for range n {
		var o orderState
		o.ID = r.uvarint()
		o.ClientOrderID = r.str()
		o.Account = r.str()
		o.Symbol = symbol
		f := r.bytes(8)
		if r.err != nil {
			return nil, r.err
		}
		o.Side, o.Type, o.TIF, o.STP = book.Side(f[0]), OrderType(f[1]), book.TimeInForce(f[2]), book.STPMode(f[3])
		o.Status, o.Reject, o.Cancel, o.PostOnly = Status(f[4]), RejectReason(f[5]), book.Reason(f[6]), f[7] == 1
		for _, p := range [...]*int64{&o.Price, &o.TriggerPrice, &o.Qty, &o.Filled, &o.Remaining, &o.DisplayQty, &o.ExpireAt, &o.Created, &o.Updated, &o.ReservePrice} {
			*p = r.varint()
		}
		o.RiskReject = r.str()
		o.Reservation = r.uvarint()
		o.Acct = uint32(r.uvarint())
		if r.err != nil {
			return nil, r.err
		}
		out = append(out, o)
	}
	return out, nil
}
