package engine

import "fmt"

// Reject is the answer of CheckOrder when it refuses an order. A reject is an ordinary business
// outcome, not a failure, so it is a value rather than an error. The zero value, Accepted, means the
// order passed and funds are reserved.
type Reject uint8

const (
	Accepted                Reject = iota
	RejectInsufficientFunds        // available balance does not cover the reservation
	RejectMaxPosition              // worst-case position after all open orders fill exceeds MaxPosition
	RejectMaxDailyLoss             // today's realised loss has reached MaxDailyLoss
	RejectMaxDrawdown              // drawdown from the high-water mark has reached MaxDrawdown
	RejectPriceBand                // price too far from the reference price (fat finger)
	RejectNotionalTooLarge         // notional above MaxOrderNotional, or too large to compute
	RejectOrderRate                // the account's order-rate token bucket is empty
	RejectHalted                   // kill switch: the account or the whole engine is halted
	RejectReduceOnly               // the order would not reduce the position, and it must
	RejectUnknownAccount           // no such account
	RejectUnknownSymbol            // no such symbol
	RejectInvalidQuantity          // quantity <= 0
	RejectInvalidPrice             // price <= 0 (market orders must carry a protection price)
	RejectInvalidOrder             // side or order type missing or unknown
)

var rejectNames = [...]string{
	Accepted:                "accepted",
	RejectInsufficientFunds: "insufficient_funds",
	RejectMaxPosition:       "max_position_exceeded",
	RejectMaxDailyLoss:      "max_daily_loss_reached",
	RejectMaxDrawdown:       "max_drawdown_reached",
	RejectPriceBand:         "price_outside_band",
	RejectNotionalTooLarge:  "order_notional_too_large",
	RejectOrderRate:         "order_rate_exceeded",
	RejectHalted:            "account_halted",
	RejectReduceOnly:        "reduce_only_violated",
	RejectUnknownAccount:    "unknown_account",
	RejectUnknownSymbol:     "unknown_symbol",
	RejectInvalidQuantity:   "invalid_quantity",
	RejectInvalidPrice:      "invalid_price",
	RejectInvalidOrder:      "invalid_order",
}

// String returns a stable snake_case name, suitable for metric labels and logs.
func (r Reject) String() string {
	if int(r) < len(rejectNames) {
		return rejectNames[r]
	}
	return fmt.Sprintf("reject(%d)", uint8(r))
}

// Rejects lists every reject reason (without Accepted), for exhaustive mappings and tests.
func Rejects() []Reject {
	out := make([]Reject, 0, len(rejectNames)-1)
	for r := RejectInsufficientFunds; int(r) < len(rejectNames); r++ {
		out = append(out, r)
	}
	return out
}
