package routing

import (
	"context"
	"strconv"
	"testing"

	"github.com/bourse-dev/bourse/services/payment/internal/breaker"
	"github.com/bourse-dev/bourse/services/payment/internal/processor"
	"github.com/bourse-dev/bourse/services/payment/internal/processor/instant"
)

// The router's own cost per payment: rule match, breaker ticket, one instant processor call.
func BenchmarkRouterAuthorize(b *testing.B) {
	rules, _ := ParseRules("bank_transfer EUR * acquirer; card USD ..100000 acquirer,stripe; * * * stripe")
	r, err := New(rules, []processor.Processor{instant.New("acquirer", instant.WithMaxRecords(1<<16)), instant.New("stripe")},
		breaker.NewSet(breaker.Config{}), nil)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.ReportAllocs()
	var n int
	for b.Loop() {
		n++
		out, _ := r.Authorize(ctx, processor.AuthorizeRequest{Key: strconv.Itoa(n), Method: "card",
			Money: processor.Money{Amount: 5000, Currency: "USD"}}, nil)
		if out.Result.Status != processor.Approved {
			b.Fatal(out.Result.Status)
		}
	}
}
