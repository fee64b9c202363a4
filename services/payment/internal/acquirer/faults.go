package acquirer

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/bourse-dev/bourse/pkg/errs"
)

// LoseMode is how an injected lost answer looks to the caller.
type LoseMode int

const (
	// LoseUnavailable answers as a connection dropped after the request was sent.
	LoseUnavailable LoseMode = iota
	// LoseHang never answers: the call is held until the caller gives up (at most maxHang).
	LoseHang
)

// Bounds of the injected faults: a typo in a test must not hold a call or the process for hours.
const (
	maxFaultDelay = time.Minute
	maxHang       = 2 * time.Minute
	maxRules      = 100
)

// DeclineRule declines the operations it matches with Code. Empty fields match everything.
type DeclineRule struct {
	Token     string // the payment token (through the authorization for capture, void, refund) or payout destination
	MinAmount int64  // inclusive; 0: no bound
	MaxAmount int64  // inclusive; 0: no bound
	Currency  string
	Kinds     []Kind // empty: Authorize and Payout
	Code      string // default do_not_honor
}

func (r DeclineRule) matches(kind Kind, token string, amount int64, currency string) bool {
	kinds := r.Kinds
	if len(kinds) == 0 {
		kinds = []Kind{Authorize, Payout}
	}
	return slices.Contains(kinds, kind) &&
		(r.Token == "" || r.Token == token) &&
		(r.MinAmount == 0 || amount >= r.MinAmount) &&
		(r.MaxAmount == 0 || amount <= r.MaxAmount) &&
		(r.Currency == "" || r.Currency == currency)
}

// Faults are the injected misbehaviours. The zero value is a well-behaved acquirer.
type Faults struct {
	Latency     time.Duration // before each call is decided
	Jitter      time.Duration // plus a uniform random share of this
	FailBefore  float64       // probability of failing before deciding (nothing stored)
	LoseAnswer  float64       // probability of losing the answer once the outcome is durable
	LoseMode    LoseMode
	AnswerDelay time.Duration // held between the durable outcome and the answer
	Rules       []DeclineRule
	Kinds       []Kind // the kinds latency and failures apply to; empty: all
	Seed        uint64 // of the dice; 0: from the clock
}

// Validate names the first bad field with its API path (faults.<field>).
func (f Faults) Validate() error {
	for name, d := range map[string]time.Duration{"latency": f.Latency, "latency_jitter": f.Jitter, "answer_delay": f.AnswerDelay} {
		if d < 0 || d > maxFaultDelay {
			return errs.Invalid("faults."+name, "%s is outside 0-%s", d, maxFaultDelay)
		}
	}
	for name, p := range map[string]float64{"fail_before_probability": f.FailBefore, "lose_answer_probability": f.LoseAnswer} {
		if !(p >= 0 && p <= 1) { // also refuses NaN
			return errs.Invalid("faults."+name, "%v is outside 0-1", p)
		}
	}
	if f.LoseMode != LoseUnavailable && f.LoseMode != LoseHang {
		return errs.Invalid("faults.lose_mode", "unknown mode %d", f.LoseMode)
	}
	for i, k := range f.Kinds {
		if !k.Valid() {
			return errs.Invalid(fmt.Sprintf("faults.kinds[%d]", i), "unknown kind %q", k)
		}
	}
	if len(f.Rules) > maxRules {
		return errs.Invalid("faults.decline_rules", "%d rules, at most %d", len(f.Rules), maxRules)
	}
	for i, r := range f.Rules {
		field := fmt.Sprintf("faults.decline_rules[%d]", i)
		if r.MinAmount < 0 || r.MaxAmount < 0 || (r.MaxAmount != 0 && r.MaxAmount < r.MinAmount) {
			return errs.Invalid(field+".max_amount", "range %d-%d is empty or negative", r.MinAmount, r.MaxAmount)
		}
		if len(r.Token) > maxFieldLen || len(r.Code) > 64 || len(r.Currency) > 3 {
			return errs.Invalid(field, "token, code or currency too long")
		}
		for j, k := range r.Kinds {
			if !k.Valid() {
				return errs.Invalid(fmt.Sprintf("%s.kinds[%d]", field, j), "unknown kind %q", k)
			}
		}
	}
	return nil
}

func (f Faults) applies(kind Kind) bool { return len(f.Kinds) == 0 || slices.Contains(f.Kinds, kind) }

// decline returns the code of the first rule that matches, or "".
func (f Faults) decline(kind Kind, token string, amount int64, currency string) string {
	for _, r := range f.Rules {
		if r.matches(kind, token, amount, currency) {
			if r.Code == "" {
				return CodeDoNotHonor
			}
			return r.Code
		}
	}
	return ""
}

// ParseDeclineRules reads the --fault-decline syntax: rules separated by ';', each a comma-separated
// list of token=T, min=N, max=N, currency=C, kinds=authorize|payout, code=C, e.g.
// "token=tok_declined,code=card_declined;min=1000000,code=insufficient_funds".
func ParseDeclineRules(s string) ([]DeclineRule, error) {
	var rules []DeclineRule
	for text := range strings.SplitSeq(s, ";") {
		if text = strings.TrimSpace(text); text == "" {
			continue
		}
		var r DeclineRule
		for part := range strings.SplitSeq(text, ",") {
			name, value, ok := strings.Cut(strings.TrimSpace(part), "=")
			if !ok {
				return nil, fmt.Errorf("decline rule %q: %q is not name=value", text, part)
			}
			var err error
			switch name {
			case "token":
				r.Token = value
			case "min":
				r.MinAmount, err = strconv.ParseInt(value, 10, 64)
			case "max":
				r.MaxAmount, err = strconv.ParseInt(value, 10, 64)
			case "currency":
				r.Currency = value
			case "kinds":
				for k := range strings.SplitSeq(value, "|") {
					if !Kind(k).Valid() {
						return nil, fmt.Errorf("decline rule %q: unknown kind %q", text, k)
					}
					r.Kinds = append(r.Kinds, Kind(k))
				}
			case "code":
				r.Code = value
			default:
				return nil, fmt.Errorf("decline rule %q: unknown field %q", text, name)
			}
			if err != nil {
				return nil, fmt.Errorf("decline rule %q: %s: %w", text, name, err)
			}
		}
		rules = append(rules, r)
	}
	return rules, nil
}
