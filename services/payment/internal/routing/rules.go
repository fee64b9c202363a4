// Package routing chooses the processors of a payment and runs a call across them with fallback.
//
// Rules map a payment's method, currency and amount to an ordered list of processor names; the first
// rule that matches wins. The router then tries the processors in order, moving to the next only when
// the previous one provably never received the request (processor.NotReached, or its circuit breaker
// open). A decline is final and an Unknown outcome stops the route: the first processor may have
// charged, so trying a second could charge twice.
package routing

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/bourse-dev/bourse/pkg/errs"
)

// Any matches every method or currency in a rule.
const Any = "*"

// MaxRules bounds a rule set, so a configuration cannot make every payment scan an unbounded list.
const MaxRules = 256

// MaxRoute bounds the processors of one rule.
const MaxRoute = 8

// Rule routes the payments it matches to Processors, in order.
type Rule struct {
	Method   string // "card", "bank_transfer", ... or Any
	Currency string // ISO-4217 upper case, or Any
	// Amount range in the payment currency's minor units, both inclusive. With currency Any the same
	// numbers apply to every currency's minor units.
	MinAmount, MaxAmount int64
	Processors           []string
}

// Matches reports whether a payment falls under the rule.
func (r Rule) Matches(method, currency string, amount int64) bool {
	return (r.Method == Any || r.Method == method) &&
		(r.Currency == Any || r.Currency == currency) &&
		amount >= r.MinAmount && amount <= r.MaxAmount
}

// Rules are tried in order; the first match decides.
type Rules []Rule

// Route returns the processors for a payment, or false when no rule matches.
func (rs Rules) Route(method, currency string, amount int64) ([]string, bool) {
	for _, r := range rs {
		if r.Matches(method, currency, amount) {
			return r.Processors, true
		}
	}
	return nil, false
}

// Processors returns every processor name the rules mention, once each, in first-mention order.
func (rs Rules) Processors() []string {
	var out []string
	for _, r := range rs {
		for _, p := range r.Processors {
			if !slices.Contains(out, p) {
				out = append(out, p)
			}
		}
	}
	return out
}

// ParseRules reads the text form of a rule set (a flag or a file): one rule per line or per ';',
// '#' starts a comment to the end of the line, blank rules are ignored. A rule is four fields
// separated by spaces or tabs:
//
//	<method> <currency> <amount> <processor>[,<processor>...]
//
// method and currency are a name or '*'; amount is '*' (any), 'N..M' (N to M inclusive), 'N..'
// (N or more) or '..M' (at most M), in minor units. For example:
//
//	card USD ..100000 acquirer,stripe   # cards up to 1,000.00 USD: acquirer first, stripe as fallback
//	card * * stripe,acquirer
//	* * * acquirer
//
// Errors are errs.Invalid with field "routing" and the rule's number (from 1).
func ParseRules(text string) (Rules, error) {
	var rules Rules
	n := 0
	for line := range strings.SplitSeq(text, "\n") {
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		for part := range strings.SplitSeq(line, ";") {
			if strings.TrimSpace(part) == "" {
				continue
			}
			n++
			if n > MaxRules {
				return nil, errs.Invalid("routing", "more than %d rules", MaxRules)
			}
			r, err := parseRule(part)
			if err != nil {
				return nil, errs.Invalid("routing", "rule %d: %v", n, err)
			}
			rules = append(rules, r)
		}
	}
	if len(rules) == 0 {
		return nil, errs.Invalid("routing", "no rules")
	}
	return rules, nil
}

func parseRule(s string) (Rule, error) {
	f := strings.Fields(s)
	if len(f) != 4 {
		return Rule{}, fmt.Errorf("want 4 fields (method currency amount processors), got %d", len(f))
	}
	r := Rule{Method: f[0], Currency: f[1]}
	if !validName(r.Method) {
		return Rule{}, fmt.Errorf("method %q: want '*' or lower case letters, digits and '_'", r.Method)
	}
	if r.Currency != Any && !isCurrency(r.Currency) {
		return Rule{}, fmt.Errorf("currency %q: want '*' or three upper case letters", r.Currency)
	}
	var err error
	if r.MinAmount, r.MaxAmount, err = parseRange(f[2]); err != nil {
		return Rule{}, fmt.Errorf("amount %q: %v", f[2], err)
	}
	for p := range strings.SplitSeq(f[3], ",") {
		if p == Any || !validName(p) {
			return Rule{}, fmt.Errorf("processor %q: want lower case letters, digits and '_'", p)
		}
		if slices.Contains(r.Processors, p) {
			return Rule{}, fmt.Errorf("processor %q listed twice", p)
		}
		r.Processors = append(r.Processors, p)
	}
	if len(r.Processors) > MaxRoute {
		return Rule{}, fmt.Errorf("more than %d processors", MaxRoute)
	}
	return r, nil
}

func validName(s string) bool {
	if s == Any {
		return true
	}
	if s == "" || len(s) > 64 {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

func isCurrency(s string) bool {
	return len(s) == 3 && strings.IndexFunc(s, func(c rune) bool { return c < 'A' || c > 'Z' }) < 0
}

// parseRange reads '*', 'N..M', 'N..' or '..M' (non-negative integers).
func parseRange(s string) (lo, hi int64, err error) {
	if s == Any {
		return 0, math.MaxInt64, nil
	}
	a, b, ok := strings.Cut(s, "..")
	if !ok {
		return 0, 0, fmt.Errorf("want '*', 'N..M', 'N..' or '..M'")
	}
	lo, hi = 0, math.MaxInt64
	if a != "" {
		if lo, err = parseAmount(a); err != nil {
			return 0, 0, err
		}
	}
	if b != "" {
		if hi, err = parseAmount(b); err != nil {
			return 0, 0, err
		}
	}
	if a == "" && b == "" {
		return 0, 0, fmt.Errorf("empty range: use '*'")
	}
	if lo > hi {
		return 0, 0, fmt.Errorf("lower bound above upper bound")
	}
	return lo, hi, nil
}

func parseAmount(s string) (int64, error) {
	if s == "" || strings.IndexFunc(s, func(c rune) bool { return c < '0' || c > '9' }) >= 0 {
		return 0, fmt.Errorf("%q is not a non-negative integer of minor units", s)
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%q is out of range", s)
	}
	return v, nil
}

// String renders the rules in the form ParseRules reads.
func (rs Rules) String() string {
	var b strings.Builder
	for i, r := range rs {
		if i > 0 {
			b.WriteByte('\n')
		}
		amount := Any
		switch {
		case r.MinAmount == 0 && r.MaxAmount == math.MaxInt64:
		case r.MaxAmount == math.MaxInt64:
			amount = strconv.FormatInt(r.MinAmount, 10) + ".."
		default:
			amount = strconv.FormatInt(r.MinAmount, 10) + ".." + strconv.FormatInt(r.MaxAmount, 10)
		}
		fmt.Fprintf(&b, "%s %s %s %s", r.Method, r.Currency, amount, strings.Join(r.Processors, ","))
	}
	return b.String()
}
