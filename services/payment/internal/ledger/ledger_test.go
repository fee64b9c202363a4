package ledger

import (
	"testing"

	"github.com/bourse-dev/bourse/services/payment/internal/domain"
)

func TestEveryPostingBalances(t *testing.T) {
	m := domain.Money{Amount: 1234, Currency: "USD"}
	for _, tx := range []Transaction{
		Captured("pay_1", "acquirer", "alice", m),
		RefundDebited("re_1", "alice", m), RefundSucceeded("re_1", "acquirer", m), RefundReversed("re_1", "alice", m),
		PayoutDebited("po_1", "alice", m), PayoutSucceeded("po_1", "acquirer", m), PayoutReversed("po_1", "alice", m),
	} {
		if err := tx.Validate(); err != nil {
			t.Errorf("%s: %v", tx.Kind, err)
		}
	}
}

func TestValidateRefusesUnbalanced(t *testing.T) {
	for name, tx := range map[string]Transaction{
		"one leg":        {Kind: "x", Entries: []Entry{{"a", "USD", 1}}},
		"off by one":     {Kind: "x", Entries: []Entry{{"a", "USD", 5}, {"b", "USD", -4}}},
		"two currencies": {Kind: "x", Entries: []Entry{{"a", "USD", 5}, {"b", "EUR", -5}}},
		"zero leg":       {Kind: "x", Entries: []Entry{{"a", "USD", 0}, {"b", "USD", 0}}},
	} {
		if err := tx.Validate(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestCheckBalances(t *testing.T) {
	if _, err := CheckBalances([]Balance{{"a", "USD", 5}, {"b", "USD", -5}, {"c", "JPY", 0}}); err != nil {
		t.Fatal(err)
	}
	if _, err := CheckBalances([]Balance{{"a", "USD", 5}, {"b", "USD", -4}}); err == nil {
		t.Fatal("unbalanced ledger passed the invariant")
	}
}
