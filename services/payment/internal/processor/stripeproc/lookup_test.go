package stripeproc

import (
	"context"
	"strings"
	"testing"

	"github.com/bourse-dev/bourse/pkg/testenv"
	"github.com/bourse-dev/bourse/services/payment/internal/processor"
)

func lookup(t *testing.T, p *Processor, op processor.Operation, key string) processor.Result {
	t.Helper()
	res, err := p.Lookup(context.Background(), op, key)
	if err != nil {
		t.Fatalf("Lookup %s %s: %v", op, key, err)
	}
	return res
}

// Lookup asks Stripe the way the package comment says for each operation, and maps what it finds.
func testLookup(t *testing.T, sm *testenv.StripeMock) {
	ctx := context.Background()
	t.Run("authorize by search", func(t *testing.T) {
		p, rec := connector(t, sm)
		// stripe-mock's search answers a fixture that does not carry the key: not found.
		res := lookup(t, p, processor.OpAuthorize, "att_l")
		r := one(t, rec, "GET", "/v1/payment_intents/search")
		if q := r.Query.Get("query"); q != "metadata['bourse_key']:'att_l'" {
			t.Fatalf("query %q", q)
		}
		wantStatus(t, "unmatched search", res, processor.NotFound)

		rec.setRewrite(setFields(map[string]any{"id": "pi_l", "status": "requires_capture", "amount_capturable": 700,
			"metadata": map[string]any{"bourse_key": "att_l"}}))
		res = lookup(t, p, processor.OpAuthorize, "att_l")
		one(t, rec, "GET", "/v1/payment_intents/search")
		wantStatus(t, "matched search", res, processor.Approved)
		if res.ProcessorRef != "pi_l" || res.Money.Amount != 700 {
			t.Fatalf("mapped to %+v", res)
		}
		// A quote in the key cannot end the query's string early.
		rec.setRewrite(nil)
		lookup(t, p, processor.OpAuthorize, `it's\`)
		if q := one(t, rec, "GET", "/v1/payment_intents/search").Query.Get("query"); q != `metadata['bourse_key']:'it\'s\\'` {
			t.Fatalf("escaped query %q", q)
		}
	})

	t.Run("authorize remembered", func(t *testing.T) {
		p, rec := connector(t, sm)
		rec.setRewrite(setFields(map[string]any{"status": "requires_capture"}))
		auth := authorize(t, p, "att_r", false)
		one(t, rec, "POST", "/v1/payment_intents")
		rec.setRewrite(setFields(map[string]any{"status": "succeeded"}))
		res := lookup(t, p, processor.OpAuthorize, "att_r")
		one(t, rec, "GET", "/v1/payment_intents/"+auth.ProcessorRef) // retrieved by id, no search
		wantStatus(t, "remembered", res, processor.Approved)

		// The capture: never sent, then sent and succeeded, then seen uncaptured.
		res = lookup(t, p, processor.OpCapture, "att_r:capture")
		if q := one(t, rec, "GET", "/v1/payment_intents/search").Query.Get("query"); q != "metadata['bourse_capture_key']:'att_r:capture'" {
			t.Fatalf("capture search %q", q)
		}
		wantStatus(t, "capture never sent", res, processor.NotFound)
		if _, err := p.Capture(ctx, processor.CaptureRequest{Key: "att_r:capture", AuthorizeKey: "att_r", Money: usd1000}); err != nil {
			t.Fatal(err)
		}
		one(t, rec, "POST", "/v1/payment_intents/"+auth.ProcessorRef+"/capture")
		rec.setRewrite(setFields(map[string]any{"status": "succeeded", "amount_received": 1000,
			"metadata": map[string]any{"bourse_key": "att_r", "bourse_capture_key": "att_r:capture"}}))
		res = lookup(t, p, processor.OpCapture, "att_r:capture")
		one(t, rec, "GET", "/v1/payment_intents/"+auth.ProcessorRef)
		wantStatus(t, "captured", res, processor.Approved)
		rec.setRewrite(setFields(map[string]any{"status": "requires_capture"}))
		wantStatus(t, "not captured", lookup(t, p, processor.OpCapture, "att_r:capture"), processor.NotFound)
		rec.take()
	})

	t.Run("void", func(t *testing.T) {
		p, rec := connector(t, sm)
		wantStatus(t, "void key unknown here", lookup(t, p, processor.OpVoid, "att_v:void"), processor.Unknown)
		if reqs := rec.take(); len(reqs) != 0 {
			t.Fatalf("asked Stripe without knowing what: %+v", reqs)
		}
		derive := func(o *Options) {
			o.AuthorizeKeyOf = func(op processor.Operation, key string) (string, bool) {
				return strings.CutSuffix(key, ":"+string(op))
			}
		}
		p, rec = connector(t, sm, derive)
		rec.setRewrite(func(path string, obj map[string]any) {
			setFields(map[string]any{"id": "pi_v", "status": "canceled", "metadata": map[string]any{"bourse_key": "att_v"}})(path, obj)
		})
		res := lookup(t, p, processor.OpVoid, "att_v:void")
		reqs := rec.take()
		if len(reqs) != 2 || reqs[0].Path != "/v1/payment_intents/search" || reqs[1].Path != "/v1/payment_intents/pi_v" {
			t.Fatalf("requests %+v, want a search for att_v then pi_v", reqs)
		}
		wantStatus(t, "voided", res, processor.Approved)
		// A connector that has not seen pi_v, whose search finds no authorization: no void of it ever
		// took effect.
		p, _ = connector(t, sm, derive)
		wantStatus(t, "no authorization", lookup(t, p, processor.OpVoid, "att_v:void"), processor.NotFound)
	})

	for _, tc := range []struct {
		op   processor.Operation
		path string
	}{{processor.OpRefund, "/v1/refunds"}, {processor.OpPayout, "/v1/payouts"}} {
		t.Run(string(tc.op)+" by listing", func(t *testing.T) {
			p, rec := connector(t, sm)
			// The fixture list (one object, not this key, has_more false) ends: not found.
			res := lookup(t, p, tc.op, "k_"+string(tc.op))
			if r := one(t, rec, "GET", tc.path); r.Query.Get("limit") != "100" {
				t.Fatalf("list limit %q", r.Query.Get("limit"))
			}
			wantStatus(t, "listing ended", res, processor.NotFound)

			rec.setRewrite(setFields(map[string]any{"metadata": map[string]any{"bourse_key": "k_" + string(tc.op)}}))
			res = lookup(t, p, tc.op, "k_"+string(tc.op))
			one(t, rec, "GET", tc.path)
			wantStatus(t, "listed", res, processor.Approved)

			// Cut short by the bound before the listing ends: cannot tell.
			p, rec = connector(t, sm, func(o *Options) { o.MaxLookupScan = 1 })
			wantStatus(t, "bounded", lookup(t, p, tc.op, "other"), processor.Unknown)
			one(t, rec, "GET", tc.path)
		})
	}

	t.Run("refund remembered", func(t *testing.T) {
		p, rec := connector(t, sm)
		rec.setRewrite(setFields(map[string]any{"status": "requires_capture"}))
		authorize(t, p, "att_rf", false)
		rec.setRewrite(nil)
		res, _ := p.Refund(ctx, processor.RefundRequest{Key: "ref_rf", AuthorizeKey: "att_rf", Money: usd1000})
		rec.take()
		got := lookup(t, p, processor.OpRefund, "ref_rf")
		one(t, rec, "GET", "/v1/refunds/"+res.ProcessorRef)
		wantStatus(t, "refund by id", got, processor.Approved)
	})
}
