package store

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/bourse-dev/bourse/services/payment/internal/ledger"
)

// Post writes every entry of a transaction with the transaction's id, for the entry counts whose
// statements are built ahead and for longer ones, and refuses a second transaction of the same
// kind and reference without writing any of its entries.
func TestPostWritesEveryEntry(t *testing.T) {
	onBoth(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		var want [][]ledger.Entry
		for _, n := range []int{2, 3, 4, 7} {
			lt := ledger.Transaction{Kind: "test", Ref: fmt.Sprint("ref-", n)}
			for i := range n - 1 {
				lt.Entries = append(lt.Entries, ledger.Entry{Account: fmt.Sprint("acct:", i), Currency: "USD", Amount: int64(10 + i)})
			}
			lt.Entries = append(lt.Entries, ledger.Entry{Account: "acct:sink", Currency: "USD", Amount: -int64((n - 1) * (10 + 10 + n - 2) / 2)})
			if err := s.InTx(ctx, func(tx *Tx) error { return tx.Post(ctx, lt) }); err != nil {
				t.Fatalf("%d entries: %v", n, err)
			}
			want = append(want, lt.Entries)
		}
		dup := ledger.Transaction{Kind: "test", Ref: "ref-3", Entries: []ledger.Entry{
			{Account: "acct:x", Currency: "USD", Amount: 1}, {Account: "acct:y", Currency: "USD", Amount: -1}}}
		if err := s.InTx(ctx, func(tx *Tx) error { return tx.Post(ctx, dup) }); err == nil {
			t.Fatal("a second transaction with the same kind and ref was posted")
		}
		got, err := s.LedgerTransactions(ctx, "", 0, 100)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(want) {
			t.Fatalf("%d transactions stored, want %d", len(got), len(want))
		}
		byAccount := func(a, b ledger.Entry) int { return strings.Compare(a.Account, b.Account) }
		for i, lt := range got {
			g, w := slices.Clone(lt.Entries), slices.Clone(want[i])
			slices.SortFunc(g, byAccount)
			slices.SortFunc(w, byAccount)
			if !slices.Equal(g, w) {
				t.Fatalf("transaction %s: entries %+v, want %+v", lt.Ref, g, w)
			}
		}
	})
}
