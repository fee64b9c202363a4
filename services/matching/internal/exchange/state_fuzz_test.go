package exchange

import (
	"bytes"
	"testing"

	"github.com/bourse-dev/bourse/services/matching/internal/book"
)

// FuzzSnapshotDecode: a damaged snapshot is an error, never a panic; a valid one re-encodes to the
// same bytes.
func FuzzSnapshotDecode(f *testing.F) {
	spec := fuzzSpec(f)
	st := &shardState{Markets: []marketState{{Spec: spec, LastID: 3, MDSeq: 2, Accounts: []string{"alice"}, Closed: []uint64{1, 2},
		Book:   book.New(spec.Instrument()).AppendSnapshot(nil),
		Orders: []orderState{{Order: Order{ID: 3, ClientOrderID: "c", Account: "alice", Symbol: spec.Symbol, Side: book.Buy, Qty: 5, Status: StatusNew}, Reservation: 9, Acct: 1}}}}}
	seed, err := st.encode()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(seed)
	f.Add([]byte(snapshotMagic))
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := decodeShardState(data)
		if err != nil {
			return
		}
		again, err := got.encode()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := decodeShardState(again); err != nil {
			t.Fatalf("re-encoded snapshot does not decode: %v", err)
		}
		if bytes.Equal(data, seed) && !bytes.Equal(again, seed) {
			t.Fatal("the seed snapshot does not round-trip")
		}
	})
}
