package stripeproc

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bourse-dev/bourse/pkg/testenv"
	"github.com/bourse-dev/bourse/services/payment/internal/processor"
)

// TestAgainstStripeMock runs the connector against one real stripe-mock (stateless, so the subtests
// share it: it takes seconds to load its spec on a busy machine); each subtest has its own
// recording proxy in front of it.
func TestAgainstStripeMock(t *testing.T) {
	sm := testenv.StartStripeMock(t)
	for _, tc := range []struct {
		name string
		run  func(*testing.T, *testenv.StripeMock)
	}{
		{"AuthorizeRequestAndMapping", testAuthorizeRequestAndMapping},
		{"CaptureVoidRefundPayout", testCaptureVoidRefundPayout},
		{"CaptureFindsTheIntent", testCaptureFindsTheIntent},
		{"RefusedLocally", testRefusedLocally},
		{"Lookup", testLookup},
		{"ErrorAnswers", testErrorAnswers},
		{"KeyRefused", testKeyRefused},
		{"Concurrent", testConcurrent},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.run(t, sm) })
	}
}

// connector returns a connector to stripe-mock through a new recording proxy.
func connector(t *testing.T, sm *testenv.StripeMock, mod ...func(*Options)) (*Processor, *recorder) {
	t.Helper()
	rec := newRecorder(t, sm.URL)
	o := Options{Key: "sk_test_bourse", URL: rec.URL(), Timeout: 10 * time.Second}
	for _, m := range mod {
		m(&o)
	}
	p, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	return p, rec
}

func one(t *testing.T, rec *recorder, method, path string) recorded {
	t.Helper()
	reqs := rec.take()
	if len(reqs) != 1 {
		t.Fatalf("want exactly one request (%s %s), got %d: %+v", method, path, len(reqs), reqs)
	}
	r := reqs[0]
	if r.Method != method || !strings.HasPrefix(r.Path, path) {
		t.Fatalf("request %s %s, want %s %s", r.Method, r.Path, method, path)
	}
	if r.Status != 200 {
		t.Fatalf("stripe-mock refused %s %s with %d (the request does not fit Stripe's API)", r.Method, r.Path, r.Status)
	}
	return r
}

func wantForm(t *testing.T, r recorded, want map[string]string) {
	t.Helper()
	for k, v := range want {
		if got := r.Form.Get(k); got != v {
			t.Errorf("%s %s: form %s = %q, want %q", r.Method, r.Path, k, got, v)
		}
	}
}

func wantStatus(t *testing.T, what string, res processor.Result, status processor.Status) {
	t.Helper()
	if res.Status != status {
		t.Fatalf("%s: status %v (%s), want %v", what, res.Status, res.Message, status)
	}
}

var usd1000 = processor.Money{Amount: 1000, Currency: "USD"}

func authorize(t *testing.T, p *Processor, key string, capture bool) processor.Result {
	t.Helper()
	res, err := p.Authorize(context.Background(), processor.AuthorizeRequest{
		Key: key, Money: usd1000, Method: "card", PaymentToken: "pm_card_visa", Capture: capture,
		StatementDescr: "BOURSE DEPOSIT 12345678901234", Metadata: map[string]string{"payment_id": "pay_1"},
	})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// Authorize sends one create+confirm PaymentIntent request that stripe-mock accepts, with the Key
// as Idempotency-Key and bourse_key, and the capture method asked for; stripe-mock's fixture answer
// (requires_payment_method) maps to Declined, and the states a real Stripe answers map as the
// package comment says.
func testAuthorizeRequestAndMapping(t *testing.T, sm *testenv.StripeMock) {
	p, rec := connector(t, sm)
	for _, capture := range []bool{false, true} {
		res := authorize(t, p, "att_auth_"+map[bool]string{false: "manual", true: "auto"}[capture], capture)
		r := one(t, rec, "POST", "/v1/payment_intents")
		method := map[bool]string{false: "manual", true: "automatic"}[capture]
		if r.IdempotencyKey != "att_auth_"+map[bool]string{false: "manual", true: "auto"}[capture] {
			t.Fatalf("Idempotency-Key %q", r.IdempotencyKey)
		}
		wantForm(t, r, map[string]string{
			"amount": "1000", "currency": "usd", "confirm": "true", "capture_method": method,
			"payment_method": "pm_card_visa", "payment_method_types[0]": "card", "error_on_requires_action": "true",
			"metadata[bourse_key]": r.IdempotencyKey, "metadata[payment_id]": "pay_1",
			"statement_descriptor_suffix": "BOURSE DEPOSIT 1234567",
		})
		wantStatus(t, "fixture", res, processor.Declined)
		if res.DeclineCode != "payment_failed" || !strings.HasPrefix(res.ProcessorRef, "pi_") {
			t.Fatalf("fixture answer mapped to %+v", res)
		}
	}

	for _, tc := range []struct {
		fields map[string]any
		want   processor.Status
		amount int64
		code   string
	}{
		{map[string]any{"status": "requires_capture", "amount_capturable": 1000}, processor.Approved, 1000, ""},
		{map[string]any{"status": "requires_capture", "amount_capturable": 600}, processor.Approved, 600, ""}, // partial authorization
		{map[string]any{"status": "succeeded", "amount_received": 1000}, processor.Approved, 1000, ""},
		{map[string]any{"status": "processing"}, processor.Unknown, 1000, ""},
		{map[string]any{"status": "requires_action", "last_payment_error": nil}, processor.Declined, 1000, "authentication_required"},
		{map[string]any{"status": "requires_payment_method", "last_payment_error": map[string]any{"type": "card_error", "code": "card_declined", "decline_code": "do_not_honor"}}, processor.Declined, 1000, "do_not_honor"},
		{map[string]any{"status": "canceled", "last_payment_error": nil}, processor.Declined, 1000, "canceled"},
	} {
		rec.setRewrite(setFields(tc.fields))
		res := authorize(t, p, "att_map", false)
		one(t, rec, "POST", "/v1/payment_intents")
		wantStatus(t, tc.fields["status"].(string), res, tc.want)
		if res.Money.Amount != tc.amount || res.Money.Currency != "USD" || res.DeclineCode != tc.code {
			t.Fatalf("%v: mapped to %+v, want amount %d code %q", tc.fields, res, tc.amount, tc.code)
		}
	}
}

// Capture, Void, Refund and Payout each send one request stripe-mock accepts, with their own Key as
// Idempotency-Key, to the PaymentIntent the authorization got; their answers map to Approved.
func testCaptureVoidRefundPayout(t *testing.T, sm *testenv.StripeMock) {
	p, rec := connector(t, sm)
	ctx := context.Background()
	rec.setRewrite(setFields(map[string]any{"status": "requires_capture", "amount_capturable": 1000}))
	auth := authorize(t, p, "att_ops", false)
	one(t, rec, "POST", "/v1/payment_intents")
	wantStatus(t, "authorize", auth, processor.Approved)
	pi := auth.ProcessorRef

	rec.setRewrite(setFields(map[string]any{"status": "succeeded", "amount_received": 400}))
	res, err := p.Capture(ctx, processor.CaptureRequest{Key: "att_ops:capture", AuthorizeKey: "att_ops", Money: processor.Money{Amount: 400, Currency: "USD"}})
	if err != nil {
		t.Fatal(err)
	}
	r := one(t, rec, "POST", "/v1/payment_intents/"+pi+"/capture")
	if r.IdempotencyKey != "att_ops:capture" {
		t.Fatalf("capture Idempotency-Key %q", r.IdempotencyKey)
	}
	wantForm(t, r, map[string]string{"amount_to_capture": "400", "metadata[bourse_capture_key]": "att_ops:capture"})
	wantStatus(t, "capture", res, processor.Approved)
	if res.Money != (processor.Money{Amount: 400, Currency: "USD"}) || res.ProcessorRef != pi {
		t.Fatalf("capture mapped to %+v", res)
	}

	rec.setRewrite(setFields(map[string]any{"status": "canceled"}))
	res, err = p.Void(ctx, processor.VoidRequest{Key: "att_ops:void", AuthorizeKey: "att_ops"})
	if err != nil {
		t.Fatal(err)
	}
	r = one(t, rec, "POST", "/v1/payment_intents/"+pi+"/cancel")
	if r.IdempotencyKey != "att_ops:void" {
		t.Fatalf("void Idempotency-Key %q", r.IdempotencyKey)
	}
	wantStatus(t, "void", res, processor.Approved)

	// stripe-mock's refund and payout fixtures are succeeded and in_transit: no rewrite needed.
	rec.setRewrite(nil)
	res, err = p.Refund(ctx, processor.RefundRequest{Key: "ref_1", AuthorizeKey: "att_ops", Money: processor.Money{Amount: 300, Currency: "USD"}})
	if err != nil {
		t.Fatal(err)
	}
	r = one(t, rec, "POST", "/v1/refunds")
	if r.IdempotencyKey != "ref_1" {
		t.Fatalf("refund Idempotency-Key %q", r.IdempotencyKey)
	}
	wantForm(t, r, map[string]string{"payment_intent": pi, "amount": "300", "metadata[bourse_key]": "ref_1"})
	wantStatus(t, "refund", res, processor.Approved)
	if !strings.HasPrefix(res.ProcessorRef, "re_") || res.Money.Amount != 300 {
		t.Fatalf("refund mapped to %+v", res)
	}

	res, err = p.Payout(ctx, processor.PayoutRequest{Key: "po_key_1", Money: processor.Money{Amount: 2500, Currency: "EUR"},
		Destination: "ba_123", Metadata: map[string]string{"account_id": "alice"}})
	if err != nil {
		t.Fatal(err)
	}
	r = one(t, rec, "POST", "/v1/payouts")
	if r.IdempotencyKey != "po_key_1" {
		t.Fatalf("payout Idempotency-Key %q", r.IdempotencyKey)
	}
	wantForm(t, r, map[string]string{"amount": "2500", "currency": "eur", "destination": "ba_123",
		"metadata[bourse_key]": "po_key_1", "metadata[account_id]": "alice"})
	wantStatus(t, "payout", res, processor.Approved)
	if !strings.HasPrefix(res.ProcessorRef, "po_") || res.Money != (processor.Money{Amount: 2500, Currency: "EUR"}) {
		t.Fatalf("payout mapped to %+v", res)
	}

	// Stripe's failed refund and payout are Declined with their failure code.
	rec.setRewrite(setFields(map[string]any{"status": "failed", "failure_reason": "expired_or_canceled_card"}))
	res, _ = p.Refund(ctx, processor.RefundRequest{Key: "ref_2", AuthorizeKey: "att_ops", Money: processor.Money{Amount: 1, Currency: "USD"}})
	one(t, rec, "POST", "/v1/refunds")
	if res.Status != processor.Declined || res.DeclineCode != "expired_or_canceled_card" {
		t.Fatalf("failed refund mapped to %+v", res)
	}
	rec.setRewrite(setFields(map[string]any{"status": "failed", "failure_code": "account_closed"}))
	res, _ = p.Payout(ctx, processor.PayoutRequest{Key: "po_key_2", Money: processor.Money{Amount: 1, Currency: "USD"}})
	one(t, rec, "POST", "/v1/payouts")
	if res.Status != processor.Declined || res.DeclineCode != "account_closed" {
		t.Fatalf("failed payout mapped to %+v", res)
	}
}

// A connector that did not authorize itself (a restart) finds the PaymentIntent through
// Options.Refs, else by searching bourse_key; when the search does not find it, nothing is sent and
// the answer is NotReached.
func testCaptureFindsTheIntent(t *testing.T, sm *testenv.StripeMock) {
	ctx := context.Background()
	capture := processor.CaptureRequest{Key: "k:capture", AuthorizeKey: "k", Money: usd1000}

	p, rec := connector(t, sm)
	res, err := p.Capture(ctx, capture)
	if err != nil {
		t.Fatal(err)
	}
	r := one(t, rec, "GET", "/v1/payment_intents/search") // and no capture
	if q := r.Query.Get("query"); q != "metadata['bourse_key']:'k'" {
		t.Fatalf("search query %q", q)
	}
	wantStatus(t, "capture of an unfound authorization", res, processor.NotReached)

	// The search finds it once its answer carries the key.
	rec.setRewrite(func(path string, obj map[string]any) {
		if strings.HasSuffix(path, "/search") {
			setFields(map[string]any{"id": "pi_found", "metadata": map[string]any{"bourse_key": "k"}})(path, obj)
		} else {
			setFields(map[string]any{"status": "succeeded", "amount_received": 1000})(path, obj)
		}
	})
	res, _ = p.Capture(ctx, capture)
	reqs := rec.take()
	if len(reqs) != 2 || reqs[0].Path != "/v1/payment_intents/search" || reqs[1].Path != "/v1/payment_intents/pi_found/capture" {
		t.Fatalf("requests %+v, want a search then the capture of pi_found", reqs)
	}
	wantStatus(t, "capture after search", res, processor.Approved)

	// Refs answers without a search.
	var asked []string
	p, rec = connector(t, sm, func(o *Options) {
		o.Refs = func(_ context.Context, op processor.Operation, key string) (string, bool, error) {
			asked = append(asked, string(op)+" "+key)
			return "pi_stored", true, nil
		}
	})
	rec.setRewrite(setFields(map[string]any{"status": "succeeded", "amount_received": 1000}))
	res, _ = p.Capture(ctx, capture)
	one(t, rec, "POST", "/v1/payment_intents/pi_stored/capture")
	wantStatus(t, "capture with refs", res, processor.Approved)
	if len(asked) != 1 || asked[0] != "authorize k" {
		t.Fatalf("refs asked %v", asked)
	}
}

// Requests the connector will not send (empty key, non-positive amount, a currency Stripe would
// refuse, a method it does not take) send nothing.
func testRefusedLocally(t *testing.T, sm *testenv.StripeMock) {
	p, rec := connector(t, sm)
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		req  processor.AuthorizeRequest
		want processor.Status
	}{
		{"empty key", processor.AuthorizeRequest{Money: usd1000, Method: "card", PaymentToken: "pm_card_visa"}, processor.Declined},
		{"long key", processor.AuthorizeRequest{Key: strings.Repeat("k", 256), Money: usd1000, Method: "card", PaymentToken: "pm_card_visa"}, processor.Declined},
		{"zero amount", processor.AuthorizeRequest{Key: "k", Money: processor.Money{Currency: "USD"}, Method: "card", PaymentToken: "pm_card_visa"}, processor.Declined},
		{"lower-case currency", processor.AuthorizeRequest{Key: "k", Money: processor.Money{Amount: 1, Currency: "usd"}, Method: "card", PaymentToken: "pm_card_visa"}, processor.Declined},
		{"no token", processor.AuthorizeRequest{Key: "k", Money: usd1000, Method: "card"}, processor.Declined},
		{"bank transfer", processor.AuthorizeRequest{Key: "k", Money: usd1000, Method: "bank_transfer", PaymentToken: "x"}, processor.NotReached},
	} {
		res, err := p.Authorize(ctx, tc.req)
		if err != nil {
			t.Fatal(err)
		}
		if res.Status != tc.want {
			t.Errorf("%s: %v (%s), want %v", tc.name, res.Status, res.Message, tc.want)
		}
	}
	if reqs := rec.take(); len(reqs) != 0 {
		t.Fatalf("refused requests were sent: %+v", reqs)
	}
	if _, err := p.Lookup(ctx, "settle", "k"); err == nil {
		t.Fatal("Lookup of an unknown operation: no error")
	}
}

// stripe-mock, like Stripe, answers 401 to a key it does not take: Stripe acted on nothing, and the
// fault is this connector's configuration, so another processor may be tried (NotReached).
func testKeyRefused(t *testing.T, sm *testenv.StripeMock) {
	p, rec := connector(t, sm, func(o *Options) { o.Key = "sk_test_not_one" })
	res := authorize(t, p, "att_key", false)
	reqs := rec.take()
	if len(reqs) != 1 || reqs[0].Status != 401 {
		t.Fatalf("requests %+v, want one answered 401", reqs)
	}
	wantStatus(t, "refused key", res, processor.NotReached)
}

// One connector serves concurrent calls (run with -race): each call sends its own request with its
// own Key, and every authorization is remembered for its capture.
func testConcurrent(t *testing.T, sm *testenv.StripeMock) {
	p, rec := connector(t, sm)
	rec.setRewrite(setFields(map[string]any{"status": "requires_capture"}))
	const workers, each = 8, 5
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				key := fmt.Sprintf("att_c_%d_%d", w, i)
				res, err := p.Authorize(context.Background(), processor.AuthorizeRequest{Key: key, Money: usd1000, Method: "card", PaymentToken: "pm_card_visa"})
				if err != nil || res.Status != processor.Approved {
					t.Errorf("%s: %+v %v", key, res, err)
				}
			}
		})
	}
	wg.Wait()
	keys := map[string]bool{}
	for _, r := range rec.take() {
		if r.Status != 200 {
			t.Errorf("%s answered %d", r.IdempotencyKey, r.Status)
		}
		keys[r.IdempotencyKey] = true
	}
	if len(keys) != workers*each {
		t.Fatalf("%d distinct Idempotency-Keys sent, want %d", len(keys), workers*each)
	}
	for k := range keys {
		if _, ok := p.known.get(processor.OpAuthorize, k); !ok {
			t.Fatalf("authorization %s not remembered", k)
		}
	}
}
