package instant

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/bourse-dev/bourse/services/payment/internal/processor"
)

var usd = func(a int64) processor.Money { return processor.Money{Amount: a, Currency: "USD"} }

func mustAuth(t *testing.T, p *Processor, req processor.AuthorizeRequest) processor.Result {
	t.Helper()
	res, err := p.Authorize(context.Background(), req)
	if err != nil {
		t.Fatalf("Authorize(%s): %v", req.Key, err)
	}
	return res
}

func TestSameKeyAnswersFirstOutcomeAndActsOnce(t *testing.T) {
	p := New("instant")
	first := mustAuth(t, p, processor.AuthorizeRequest{Key: "att-1", Money: usd(1000), PaymentToken: "tok"})
	if first.Status != processor.Approved || first.ProcessorRef == "" {
		t.Fatalf("first = %+v, want approved with a ref", first)
	}
	// Same key, other amount: a processor's idempotency answers the first outcome, never acts again.
	again := mustAuth(t, p, processor.AuthorizeRequest{Key: "att-1", Money: usd(5), PaymentToken: "tok"})
	if again != first {
		t.Fatalf("replay = %+v, want %+v", again, first)
	}
	if n := p.Acted(processor.OpAuthorize); n != 1 {
		t.Fatalf("Acted = %d, want 1", n)
	}
	look, err := p.Lookup(context.Background(), processor.OpAuthorize, "att-1")
	if err != nil || look != first {
		t.Fatalf("Lookup = %+v, %v; want %+v", look, err, first)
	}
}

func TestConcurrentSameKeyActsOnce(t *testing.T) {
	p := New("instant")
	var wg sync.WaitGroup
	results := make([]processor.Result, 100)
	for i := range results {
		wg.Go(func() {
			results[i], _ = p.Authorize(context.Background(), processor.AuthorizeRequest{Key: "k", Money: usd(100)})
		})
	}
	wg.Wait()
	for i, r := range results {
		if r != results[0] || r.Status != processor.Approved {
			t.Fatalf("result %d = %+v, want %+v (approved)", i, r, results[0])
		}
	}
	if n := p.Acted(processor.OpAuthorize); n != 1 {
		t.Fatalf("Acted = %d, want 1", n)
	}
}

func TestDeclineRules(t *testing.T) {
	p := New("instant", WithDeclines(
		Decline{Token: "tok_insufficient", Code: "insufficient_funds"},
		Decline{MinAmount: 1_000_000},
		Decline{Token: "tok_small", MaxAmount: 50, Code: "amount_too_small"},
	))
	cases := []struct {
		token  string
		amount int64
		status processor.Status
		code   string
	}{
		{"tok_ok", 999_999, processor.Approved, ""},
		{"tok_insufficient", 10, processor.Declined, "insufficient_funds"},
		{"tok_ok", 1_000_000, processor.Declined, "card_declined"},
		{"tok_small", 50, processor.Declined, "amount_too_small"},
		{"tok_small", 51, processor.Approved, ""},
	}
	for i, c := range cases {
		res := mustAuth(t, p, processor.AuthorizeRequest{Key: fmt.Sprint("a", i), Money: usd(c.amount), PaymentToken: c.token})
		if res.Status != c.status || res.DeclineCode != c.code {
			t.Errorf("%s/%d: got %v %q, want %v %q", c.token, c.amount, res.Status, res.DeclineCode, c.status, c.code)
		}
	}
	po, _ := p.Payout(context.Background(), processor.PayoutRequest{Key: "po", Money: usd(5), Destination: "tok_insufficient"})
	if po.Status != processor.Declined || po.DeclineCode != "insufficient_funds" {
		t.Errorf("payout to a declined destination = %+v", po)
	}
}

func TestFaults(t *testing.T) {
	ctx := context.Background()
	p := New("instant")
	var fault Fault
	p.SetFaults(func(c Call) Fault {
		if c.Lookup {
			return FaultNone
		}
		return fault
	})

	fault = FaultNotReached
	res := mustAuth(t, p, processor.AuthorizeRequest{Key: "nr", Money: usd(1)})
	if res.Status != processor.NotReached {
		t.Fatalf("NotReached fault answered %v", res.Status)
	}
	if look, _ := p.Lookup(ctx, processor.OpAuthorize, "nr"); look.Status != processor.NotFound {
		t.Fatalf("Lookup after NotReached = %v, want not_found", look.Status)
	}

	fault = FaultUnknownBefore
	if res := mustAuth(t, p, processor.AuthorizeRequest{Key: "ub", Money: usd(1)}); res.Status != processor.Unknown {
		t.Fatalf("UnknownBefore answered %v", res.Status)
	}
	if look, _ := p.Lookup(ctx, processor.OpAuthorize, "ub"); look.Status != processor.NotFound {
		t.Fatalf("Lookup after UnknownBefore = %v, want not_found", look.Status)
	}

	fault = FaultUnknownAfter
	if res := mustAuth(t, p, processor.AuthorizeRequest{Key: "ua", Money: usd(1)}); res.Status != processor.Unknown {
		t.Fatalf("UnknownAfter answered %v", res.Status)
	}
	look, _ := p.Lookup(ctx, processor.OpAuthorize, "ua")
	if look.Status != processor.Approved {
		t.Fatalf("Lookup after UnknownAfter = %v, want approved (it acted)", look.Status)
	}
	fault = FaultNone
	if res := mustAuth(t, p, processor.AuthorizeRequest{Key: "ua", Money: usd(1)}); res != look {
		t.Fatalf("retry after a lost answer = %+v, want the first outcome %+v", res, look)
	}
	if n := p.Acted(processor.OpAuthorize); n != 1 {
		t.Fatalf("Acted = %d, want 1 (only the UnknownAfter call acted)", n)
	}

	p.SetFaults(func(Call) Fault { return FaultNotReached })
	if look, _ := p.Lookup(ctx, processor.OpAuthorize, "ua"); look.Status != processor.Unknown {
		t.Fatalf("Lookup while unreachable = %v, want unknown", look.Status)
	}
	if _, err := p.Lookup(ctx, "charge", "ua"); err == nil {
		t.Fatal("Lookup of an unknown operation: no error")
	}
}

func TestCanceledContextIsNotReached(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	p := New("instant")
	res, err := p.Authorize(ctx, processor.AuthorizeRequest{Key: "k", Money: usd(1)})
	if res.Status != processor.NotReached || err == nil {
		t.Fatalf("got %v, %v; want not_reached with the context error", res.Status, err)
	}
	if n := p.Acted(processor.OpAuthorize); n != 0 {
		t.Fatalf("Acted = %d", n)
	}
}

func TestCaptureVoidRefundLimits(t *testing.T) {
	ctx := context.Background()
	p := New("instant")
	mustAuth(t, p, processor.AuthorizeRequest{Key: "a", Money: usd(100)})
	step := func(name string, res processor.Result, err error, status processor.Status, code string) {
		t.Helper()
		if err != nil || res.Status != status || res.DeclineCode != code {
			t.Fatalf("%s: got %v %q %v, want %v %q", name, res.Status, res.DeclineCode, err, status, code)
		}
	}
	r, err := p.Refund(ctx, processor.RefundRequest{Key: "r0", AuthorizeKey: "a", Money: usd(1)})
	step("refund before capture", r, err, processor.Declined, "amount_too_large")
	r, err = p.Capture(ctx, processor.CaptureRequest{Key: "c1", AuthorizeKey: "a", Money: usd(60)})
	step("capture 60", r, err, processor.Approved, "")
	r, err = p.Capture(ctx, processor.CaptureRequest{Key: "c2", AuthorizeKey: "a", Money: usd(41)})
	step("capture 41 more", r, err, processor.Declined, "amount_too_large")
	r, err = p.Void(ctx, processor.VoidRequest{Key: "v", AuthorizeKey: "a"})
	step("void after capture", r, err, processor.Declined, "already_captured")
	r, err = p.Refund(ctx, processor.RefundRequest{Key: "r1", AuthorizeKey: "a", Money: usd(60)})
	step("refund 60", r, err, processor.Approved, "")
	r, err = p.Refund(ctx, processor.RefundRequest{Key: "r1", AuthorizeKey: "a", Money: usd(60)})
	step("refund r1 replayed", r, err, processor.Approved, "")
	r, err = p.Refund(ctx, processor.RefundRequest{Key: "r2", AuthorizeKey: "a", Money: usd(1)})
	step("refund past captured", r, err, processor.Declined, "amount_too_large")

	mustAuth(t, p, processor.AuthorizeRequest{Key: "b", Money: usd(10)})
	r, err = p.Void(ctx, processor.VoidRequest{Key: "vb", AuthorizeKey: "b"})
	step("void", r, err, processor.Approved, "")
	r, err = p.Capture(ctx, processor.CaptureRequest{Key: "cb", AuthorizeKey: "b", Money: usd(10)})
	step("capture after void", r, err, processor.Declined, "authorization_voided")
	r, err = p.Capture(ctx, processor.CaptureRequest{Key: "cx", AuthorizeKey: "nope", Money: usd(10)})
	step("capture of nothing", r, err, processor.Declined, "no_such_authorization")

	mustAuth(t, p, processor.AuthorizeRequest{Key: "auto", Money: usd(10), Capture: true})
	r, err = p.Refund(ctx, processor.RefundRequest{Key: "ra", AuthorizeKey: "auto", Money: usd(10)})
	step("refund of an auto-captured charge", r, err, processor.Approved, "")
}

func TestMaxRecordsForgetsOldest(t *testing.T) {
	ctx := context.Background()
	p := New("instant", WithMaxRecords(2))
	for _, k := range []string{"k1", "k2", "k3"} {
		mustAuth(t, p, processor.AuthorizeRequest{Key: k, Money: usd(1)})
	}
	if look, _ := p.Lookup(ctx, processor.OpAuthorize, "k1"); look.Status != processor.NotFound {
		t.Fatalf("oldest key still remembered: %v", look.Status)
	}
	for _, k := range []string{"k2", "k3"} {
		if look, _ := p.Lookup(ctx, processor.OpAuthorize, k); look.Status != processor.Approved {
			t.Fatalf("%s forgotten: %v", k, look.Status)
		}
	}
	if len(p.records) != 2 || len(p.auths) != 2 {
		t.Fatalf("records %d, auths %d; want 2 and 2", len(p.records), len(p.auths))
	}
}

func BenchmarkAuthorize(b *testing.B) {
	p := New("instant")
	ctx := context.Background()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			i++
			p.Authorize(ctx, processor.AuthorizeRequest{Key: fmt.Sprintf("%p-%d", pb, i), Money: usd(100), Capture: true})
		}
	})
}
