package stripeproc

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bourse-dev/bourse/pkg/testenv"
	"github.com/bourse-dev/bourse/services/payment/internal/processor"
)

// BenchmarkAuthorizeStripeMock is one Authorize (create+confirm PaymentIntent) through stripe-go to
// a real stripe-mock on loopback: the connector's own cost plus stripe-mock's request validation,
// which dominates. It tells what a payment test or make run can expect from the Stripe path, not
// what Stripe does.
func BenchmarkAuthorizeStripeMock(b *testing.B) {
	sm := testenv.StartStripeMock(b)
	p, err := New(Options{Key: "sk_test_bench", URL: sm.URL, Timeout: 10 * time.Second})
	if err != nil {
		b.Fatal(err)
	}
	var seq atomic.Int64
	run := func() {
		res, err := p.Authorize(context.Background(), processor.AuthorizeRequest{
			Key: fmt.Sprint("att_bench_", seq.Add(1)), Money: usd1000, Method: "card", PaymentToken: "pm_card_visa",
		})
		if err != nil || res.Status != processor.Declined { // stripe-mock's fixture: requires_payment_method
			b.Errorf("authorize: %+v %v", res, err)
		}
	}
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			run()
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				run()
			}
		})
	})
}
