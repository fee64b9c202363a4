package money

import (
	"math"
	"strconv"
)

// The API's prices and quantities are almost always plain "123.45": these parse and format them
// without the arbitrary-precision decimal type, which costs allocations on every order. Anything
// unusual goes the decimal way, so both paths accept and refuse exactly the same strings.

// fastUnits converts "[-]digits[.digits]" with at most scale fraction digits; ok is false when the
// string needs the general path (other syntax, more fraction digits, or overflow).
func fastUnits(s string, scale uint8) (v int64, ok bool) {
	if scale > MaxScale || len(s) == 0 || len(s) > 40 {
		return 0, false
	}
	neg := s[0] == '-'
	if neg {
		s = s[1:]
	}
	intPart, frac := s, ""
	for i := 0; i < len(s); i++ {
		if s[i] == '.' {
			intPart, frac = s[:i], s[i+1:]
			break
		}
	}
	if intPart == "" || (len(s) > len(intPart) && frac == "") || len(frac) > int(scale) {
		return 0, false
	}
	var u uint64
	digit := func(c byte) bool {
		if c < '0' || c > '9' {
			return false
		}
		if u > (math.MaxUint64-9)/10 {
			return false
		}
		u = u*10 + uint64(c-'0')
		return true
	}
	for i := 0; i < len(intPart); i++ {
		if !digit(intPart[i]) {
			return 0, false
		}
	}
	for i := 0; i < len(frac); i++ {
		if !digit(frac[i]) {
			return 0, false
		}
	}
	for range int(scale) - len(frac) {
		if u > math.MaxUint64/10 {
			return 0, false
		}
		u *= 10
	}
	if u > math.MaxInt64 {
		return 0, false
	}
	if neg {
		return -int64(u), true
	}
	return int64(u), true
}

// fastFormat renders units at scale like decimal's String: no trailing fraction zeros, "0" for zero.
func fastFormat(units int64, scale uint8) (string, bool) {
	if units == math.MinInt64 || scale > MaxScale {
		return "", false
	}
	var buf [48]byte
	b := buf[:0]
	if units < 0 {
		b = append(b, '-')
		units = -units
	}
	digits := strconv.AppendInt(buf[24:24], units, 10)
	if len(digits) <= int(scale) {
		b = append(b, '0', '.')
		for range int(scale) - len(digits) {
			b = append(b, '0')
		}
		b = append(b, digits...)
	} else {
		cut := len(digits) - int(scale)
		b = append(b, digits[:cut]...)
		if scale > 0 {
			b = append(b, '.')
			b = append(b, digits[cut:]...)
		}
	}
	if scale > 0 {
		for b[len(b)-1] == '0' {
			b = b[:len(b)-1]
		}
		if b[len(b)-1] == '.' {
			b = b[:len(b)-1]
		}
	}
	if string(b) == "-0" {
		return "0", true
	}
	return string(b), true
}
