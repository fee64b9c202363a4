package domain

import (
	"strings"
	"testing"
	"time"
)

const idAlphabet = "abcdefghijklmnopqrstuvwxyz234567"

func TestNewIDFormat(t *testing.T) {
	for range 1000 {
		id := NewID("pay")
		rest, ok := strings.CutPrefix(id, "pay_")
		if !ok || len(rest) != 24 {
			t.Fatalf("%q: want pay_ and 24 characters", id)
		}
		for _, c := range rest {
			if !strings.ContainsRune(idAlphabet, c) {
				t.Fatalf("%q: character %q outside the id alphabet", id, c)
			}
		}
	}
}

func TestNewIDUnique(t *testing.T) {
	const n = 100_000
	seen := make(map[string]struct{}, n)
	for range n {
		id := NewID("att")
		if _, dup := seen[id]; dup {
			t.Fatalf("duplicate id %q", id)
		}
		seen[id] = struct{}{}
	}
}

// TestNewIDSortsByTime: an id made in a later millisecond sorts after every id of an earlier one,
// whatever their random parts, and the time is decodable from the first 6 bytes.
func TestNewIDSortsByTime(t *testing.T) {
	base := time.Date(2026, 12, 1, 16, 0, 0, 0, time.UTC)
	var prev string
	for i := range 2000 {
		at := base.Add(time.Duration(i) * time.Millisecond)
		for range 5 {
			id := newID("pay", at)
			if prev != "" && id[:12] < prev[:12] {
				t.Fatalf("time prefix of %q (at %v) sorts before %q", id, at, prev)
			}
			b, err := idEncoding.DecodeString(id[len("pay_"):])
			if err != nil {
				t.Fatal(err)
			}
			var ms uint64
			for _, x := range b[:6] {
				ms = ms<<8 | uint64(x)
			}
			if int64(ms) != at.UnixMilli() {
				t.Fatalf("%q decodes to %d ms, want %d", id, ms, at.UnixMilli())
			}
		}
		later := newID("pay", at.Add(time.Millisecond))
		if later <= newID("pay", at) {
			t.Fatalf("%q (one millisecond later) does not sort after an id of %v", later, at)
		}
		prev = newID("pay", at)
	}
	// Across the whole range of the 48-bit clock, not only within one day.
	for _, pair := range [][2]time.Time{
		{time.UnixMilli(0), time.UnixMilli(1)},
		{time.UnixMilli(1<<32 - 1), time.UnixMilli(1 << 32)},
		{base, base.AddDate(100, 0, 0)},
	} {
		if a, b := newID("x", pair[0]), newID("x", pair[1]); a >= b {
			t.Fatalf("%q (%v) does not sort before %q (%v)", a, pair[0], b, pair[1])
		}
	}
}

// TestNewIDRandomPart: 72 bits after the time differ between ids of one millisecond.
func TestNewIDRandomPart(t *testing.T) {
	at := time.Now()
	a, b := newID("x", at), newID("x", at)
	da, _ := idEncoding.DecodeString(a[2:])
	db, _ := idEncoding.DecodeString(b[2:])
	if string(da[:6]) != string(db[:6]) {
		t.Fatalf("same millisecond, different time bytes: %q %q", a, b)
	}
	if string(da[6:]) == string(db[6:]) {
		t.Fatalf("two ids of one millisecond share their random bytes: %q %q", a, b)
	}
}
