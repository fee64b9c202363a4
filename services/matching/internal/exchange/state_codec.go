package exchange

import (
	"encoding/binary"

	"github.com/bourse-dev/bourse/pkg/wire"
	"github.com/bourse-dev/bourse/services/matching/internal/book"
)

// Order records dominate a snapshot (every open order plus the retained closed ones), so they are
// encoded as varints rather than JSON: several times faster to write and to read back.

func appendOrders(dst []byte, orders []orderState, withNotional bool) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(orders)))
	for i := range orders {
		o := &orders[i]
		dst = binary.AppendUvarint(dst, o.ID)
		dst = wire.AppendString(dst, o.ClientOrderID)
		dst = wire.AppendString(dst, o.Account)
		dst = append(dst, byte(o.Side), byte(o.Type), byte(o.TIF), byte(o.STP), byte(o.Status), byte(o.Reject), byte(o.Cancel), boolByte(o.PostOnly))
		for _, v := range [...]int64{o.Price, o.TriggerPrice, o.Qty, o.Filled, o.Remaining, o.DisplayQty, o.ExpireAt, o.Created, o.Updated, o.ReservePrice} {
			dst = binary.AppendVarint(dst, v)
		}
		dst = wire.AppendString(dst, o.RiskReject)
		dst = binary.AppendUvarint(dst, o.Reservation)
		dst = binary.AppendUvarint(dst, uint64(o.Acct))
		if withNotional {
			dst = binary.AppendUvarint(dst, o.FilledNotional.Hi)
			dst = binary.AppendUvarint(dst, o.FilledNotional.Lo)
		}
	}
	return dst
}

func boolByte(b bool) byte {
	if b {
		return 1
	}
	return 0
}

func readOrders(r *wire.Reader, symbol string, withNotional bool) ([]orderState, error) {
	n := r.Count()
	out := make([]orderState, 0, n)
	for range n {
		var o orderState
		o.ID = r.Uvarint()
		o.ClientOrderID = r.String()
		o.Account = r.String()
		o.Symbol = symbol
		f := r.Next(8)
		if r.Err() != nil {
			return nil, r.Err()
		}
		o.Side, o.Type, o.TIF, o.STP = book.Side(f[0]), OrderType(f[1]), book.TimeInForce(f[2]), book.STPMode(f[3])
		o.Status, o.Reject, o.Cancel, o.PostOnly = Status(f[4]), RejectReason(f[5]), book.Reason(f[6]), f[7] == 1
		for _, p := range [...]*int64{&o.Price, &o.TriggerPrice, &o.Qty, &o.Filled, &o.Remaining, &o.DisplayQty, &o.ExpireAt, &o.Created, &o.Updated, &o.ReservePrice} {
			*p = r.Varint()
		}
		o.RiskReject = r.String()
		o.Reservation = r.Uvarint()
		o.Acct = uint32(r.Uvarint())
		if withNotional {
			o.FilledNotional.Hi, o.FilledNotional.Lo = r.Uvarint(), r.Uvarint()
		}
		if r.Err() != nil {
			return nil, r.Err()
		}
		out = append(out, o)
	}
	return out, nil
}

func appendGone(dst []byte, gone []goneID) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(gone)))
	for i := range gone {
		dst = wire.AppendString(dst, gone[i].key)
		dst = binary.AppendUvarint(dst, gone[i].id)
		dst = binary.AppendVarint(dst, gone[i].closedAt)
	}
	return dst
}

func readGone(r *wire.Reader) []goneID {
	n := r.Count()
	out := make([]goneID, 0, n)
	for range n {
		g := goneID{key: r.String(), id: r.Uvarint(), closedAt: r.Varint()}
		if r.Err() != nil {
			return nil
		}
		out = append(out, g)
	}
	return out
}
