package routing

import (
	"context"
	"testing"

	"github.com/bourse-dev/bourse/services/payment/internal/breaker"
	"github.com/bourse-dev/bourse/services/payment/internal/domain"
	"github.com/bourse-dev/bourse/services/payment/internal/processor"
	"github.com/bourse-dev/bourse/services/payment/internal/processor/instant"
)

func TestTable(t *testing.T) {
	rules, err := ParseRules("card USD ..100000 acquirer,stripe; * * * stripe")
	if err != nil {
		t.Fatal(err)
	}
	acq, str := instant.New("acquirer"), instant.New("stripe")
	set := breaker.NewSet(breaker.Config{MinCalls: 1, FailureRatio: 1})
	tab, err := NewTable(rules, []processor.Processor{acq, str}, set)
	if err != nil {
		t.Fatal(err)
	}
	names := func(ps []processor.Processor) (s []string) {
		for _, p := range ps {
			s = append(s, p.Name())
		}
		return s
	}
	if got := names(tab.Route("card", domain.Money{Amount: 100000, Currency: "USD"})); len(got) != 2 || got[0] != "acquirer" || got[1] != "stripe" {
		t.Fatalf("card 1000.00 USD routed to %v", got)
	}
	if got := names(tab.Route("bank_transfer", domain.Money{Amount: 1, Currency: "EUR"})); len(got) != 1 || got[0] != "stripe" {
		t.Fatalf("bank transfer routed to %v", got)
	}
	// Open the acquirer's circuit: the routed acquirer answers NotReached and is not called.
	tk, _ := set.Allow("acquirer")
	tk.Record(processor.NotReached)
	route := tab.Route("card", domain.Money{Amount: 100, Currency: "USD"})
	res, err := route[0].Authorize(context.Background(), processor.AuthorizeRequest{Key: "k", Money: processor.Money{Amount: 100, Currency: "USD"}})
	if err != nil || res.Status != processor.NotReached || acq.Calls() != 0 {
		t.Fatalf("open acquirer: %v %v, called %d", res.Status, err, acq.Calls())
	}
	if p, ok := tab.Processor("stripe"); !ok || p.Name() != "stripe" {
		t.Fatal("Processor(stripe)")
	}
	if _, err := NewTable(rules, []processor.Processor{acq}, nil); err == nil {
		t.Fatal("rules naming an unconfigured processor accepted")
	}
}
