package grpcapi

import (
	"testing"

	"github.com/bourse-dev/bourse/services/matching/internal/exchange"
)

// A page token comes from the client: decoding never panics, accepts only what it could have
// issued, and what it issues decodes to the same position.
func FuzzPageToken(f *testing.F) {
	f.Add("AQFCVEMtVVNE", "BTC-USD", uint64(1))
	f.Add("", "ETH-USD", uint64(1<<63))
	f.Add("////", "A", uint64(42))
	f.Fuzz(func(t *testing.T, tok, symbol string, id uint64) {
		if c, err := decodePageToken(tok); err == nil && tok != "" {
			if c.OrderID == 0 || !plausibleSymbol(c.Symbol) || encodePageToken(c) != tok {
				t.Fatalf("%q decoded to %+v, which is not what it would be issued as", tok, c)
			}
		}
		if id == 0 || !plausibleSymbol(symbol) {
			return
		}
		want := exchange.ListCursor{Symbol: symbol, OrderID: id}
		issued := encodePageToken(want)
		if len(issued) > maxPageToken {
			t.Fatalf("token %q for %+v is longer than decoding accepts", issued, want)
		}
		if got, err := decodePageToken(issued); err != nil || got != want {
			t.Fatalf("%+v issued as %q decodes to %+v, %v", want, issued, got, err)
		}
	})
}
