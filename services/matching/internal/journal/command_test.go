package journal

import (
	"bytes"
	"errors"
	"math"
	"strconv"
	"testing"

	"github.com/bourse-dev/bourse/services/matching/internal/book"
)

const testTime = int64(1_767_225_600_000_000_000) // 2026-01-01 in unix nanoseconds

// sampleCommands has one command of every kind plus extremes.
func sampleCommands() []Command {
	return []Command{
		{Kind: CommandAddSymbol, Symbol: "BTC-EUR", Timestamp: testTime,
			Instrument: book.Instrument{TickSize: 1, LotSize: 1000, MinQty: 1, MaxQty: 1 << 40, MaxPrice: 10_000_000}},
		{Kind: CommandSubmit, Symbol: "BTC-EUR", Timestamp: testTime, ClientOrderID: "c-1", AccountID: "acct-7", ReservationID: 42,
			Order: book.NewOrder{ID: 1, Account: 7, Side: book.Buy, Type: book.Limit, TIF: book.GTD, Price: 100, Qty: 5,
				DisplayQty: 1, PostOnly: true, STP: book.STPDecrement, ExpireAt: testTime + 3600e9, Now: testTime}},
		{Kind: CommandSubmit, Symbol: "X", Timestamp: math.MinInt64, ReservationID: math.MaxUint64,
			Order: book.NewOrder{ID: math.MaxUint64, Account: math.MaxUint32, Side: 255, Type: 255, TIF: 255, STP: 255,
				Price: math.MinInt64, TriggerPrice: math.MaxInt64, Qty: -1, DisplayQty: math.MinInt64,
				ExpireAt: math.MaxInt64, Now: math.MaxInt64}},
		{Kind: CommandCancel, Symbol: "ETH-EUR", Timestamp: testTime, AccountID: "acct-7", OrderID: 99},
		{Kind: CommandCancelAll, Symbol: "ETH-EUR", Timestamp: testTime, AccountID: "acct-7", Account: math.MaxUint32},
		{Kind: CommandAmend, Symbol: "ETH-EUR", Timestamp: testTime, ClientOrderID: "c-2", ReservationID: 3,
			Amend: book.Amend{ID: 5, Price: -7, Qty: 12, TriggerPrice: 1}},
		{Kind: CommandExpire, Symbol: "ETH-EUR", Timestamp: testTime},
		{Kind: CommandExpire},
	}
}

func TestCommandRoundTrip(t *testing.T) {
	for _, c := range sampleCommands() {
		enc := AppendEncode(nil, c)
		got, err := Decode(enc)
		if err != nil {
			t.Fatalf("Decode(AppendEncode(%+v)): %v", c, err)
		}
		if got != c {
			t.Fatalf("round trip:\n got %+v\nwant %+v", got, c)
		}
		// Appending keeps what was in dst.
		if withPrefix := AppendEncode([]byte("prefix"), c); !bytes.Equal(withPrefix[6:], enc) {
			t.Fatal("AppendEncode depends on what dst holds")
		}
	}
}

func TestCommandEncodingIsCompact(t *testing.T) {
	c := sampleCommands()[1] // a typical submit
	if n := len(AppendEncode(nil, c)); n > 60 {
		t.Errorf("a typical submit encodes to %d bytes", n)
	}
	if n := len(AppendEncode(nil, Command{Kind: CommandCancel, Symbol: "BTC-EUR", Timestamp: testTime, OrderID: 1})); n > 24 {
		t.Errorf("a cancel encodes to %d bytes", n)
	}
}

func TestEncodeStoresOnlyTheKindsFields(t *testing.T) {
	c := Command{Kind: CommandCancel, Symbol: "S", OrderID: 3, Order: book.NewOrder{ID: 9}, Account: 4}
	got, err := Decode(AppendEncode(nil, c))
	if err != nil {
		t.Fatal(err)
	}
	if want := (Command{Kind: CommandCancel, Symbol: "S", OrderID: 3}); got != want {
		t.Fatalf("got %+v, want %+v", got, want)
	}
}

func TestEncodeUnknownKindPanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("AppendEncode of kind 0 did not panic")
		}
	}()
	AppendEncode(nil, Command{})
}

func TestDecodeRejects(t *testing.T) {
	valid := AppendEncode(nil, sampleCommands()[1])
	cases := map[string][]byte{
		"empty":           {},
		"version only":    {commandVersion},
		"bad version":     append([]byte{2}, valid[1:]...),
		"kind zero":       {commandVersion, 0, 0, 0, 0, 0, 0},
		"kind too large":  {commandVersion, byte(lastCommandKind) + 1, 0, 0, 0, 0, 0},
		"trailing byte":   append(bytes.Clone(valid), 0),
		"non-minimal":     {commandVersion, byte(CommandExpire), 0x80, 0x00, 0, 0, 0, 0},
		"overflow":        {commandVersion, byte(CommandExpire), 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f},
		"string too long": {commandVersion, byte(CommandExpire), 5, 'a', 'b'},
		// A cancel-all whose account is 2^32.
		"account > 32 bits": {commandVersion, byte(CommandCancelAll), 0, 0, 0, 0, 0, 0x80, 0x80, 0x80, 0x80, 0x10},
	}
	// In an all-zero submit, the 7 common bytes, id and account come
	// before side, type, tif, stp and post-only.
	badBool := AppendEncode(nil, Command{Kind: CommandSubmit})
	badBool[7+2+4] = 2
	cases["post-only 2"] = badBool
	for i := range valid {
		cases["truncated to "+strconv.Itoa(i)] = valid[:i]
	}
	for name, b := range cases {
		if c, err := Decode(b); !errors.Is(err, ErrBadCommand) {
			t.Errorf("%s: Decode(%x) = %+v, %v; want ErrBadCommand", name, b, c, err)
		}
	}
}

func TestEncodeDoesNotAllocate(t *testing.T) {
	c := sampleCommands()[1]
	buf := make([]byte, 0, 128)
	if n := testing.AllocsPerRun(100, func() { buf = AppendEncode(buf[:0], c) }); n != 0 {
		t.Fatalf("AppendEncode into a reused buffer: %v allocations", n)
	}
}

func BenchmarkCommandEncode(b *testing.B) {
	c := sampleCommands()[1]
	buf := make([]byte, 0, 128)
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendEncode(buf[:0], c)
	}
	b.SetBytes(int64(len(buf)))
}

func BenchmarkCommandDecode(b *testing.B) {
	enc := AppendEncode(nil, sampleCommands()[1])
	b.SetBytes(int64(len(enc)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Decode(enc); err != nil {
			b.Fatal(err)
		}
	}
}
