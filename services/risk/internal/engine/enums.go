package engine

import "fmt"

// Side is the direction of an order or fill. The zero value is invalid so that a forgotten field is
// caught instead of silently meaning "buy".
type Side uint8

const (
	SideBuy Side = iota + 1
	SideSell
)

func (s Side) valid() bool { return s == SideBuy || s == SideSell }

func (s Side) String() string {
	switch s {
	case SideBuy:
		return "buy"
	case SideSell:
		return "sell"
	}
	return fmt.Sprintf("side(%d)", uint8(s))
}

// MarshalText writes the side as "buy" or "sell" so stored events stay readable.
func (s Side) MarshalText() ([]byte, error) {
	if !s.valid() {
		return nil, fmt.Errorf("invalid side %d", uint8(s))
	}
	return []byte(s.String()), nil
}

// UnmarshalText accepts "buy" or "sell".
func (s *Side) UnmarshalText(b []byte) error {
	switch string(b) {
	case "buy":
		*s = SideBuy
	case "sell":
		*s = SideSell
	default:
		return fmt.Errorf("invalid side %q", b)
	}
	return nil
}

// OrderType says how the price of an order is meant. A market order still carries a price: the
// protection price chosen by the caller, which bounds what it may pay (buy) or accept (sell).
type OrderType uint8

const (
	OrderLimit OrderType = iota + 1
	OrderMarket
)

func (t OrderType) valid() bool { return t == OrderLimit || t == OrderMarket }

func (t OrderType) String() string {
	switch t {
	case OrderLimit:
		return "limit"
	case OrderMarket:
		return "market"
	}
	return fmt.Sprintf("order_type(%d)", uint8(t))
}

// TradingState is a kill switch setting, for one account or for the whole engine. States are ordered
// by how much they forbid, so the effective state is the larger of the account's and the global one.
type TradingState uint8

const (
	TradingActive     TradingState = iota // everything allowed
	TradingReduceOnly                     // only orders that shrink an existing position
	TradingHalted                         // no new orders at all
)

func (s TradingState) valid() bool { return s <= TradingHalted }

func (s TradingState) String() string {
	switch s {
	case TradingActive:
		return "active"
	case TradingReduceOnly:
		return "reduce_only"
	case TradingHalted:
		return "halted"
	}
	return fmt.Sprintf("trading_state(%d)", uint8(s))
}

// MarshalText writes "active", "reduce_only" or "halted".
func (s TradingState) MarshalText() ([]byte, error) {
	if !s.valid() {
		return nil, fmt.Errorf("invalid trading state %d", uint8(s))
	}
	return []byte(s.String()), nil
}

// UnmarshalText accepts "active", "reduce_only" or "halted".
func (s *TradingState) UnmarshalText(b []byte) error {
	for _, v := range []TradingState{TradingActive, TradingReduceOnly, TradingHalted} {
		if string(b) == v.String() {
			*s = v
			return nil
		}
	}
	return fmt.Errorf("invalid trading state %q", b)
}
