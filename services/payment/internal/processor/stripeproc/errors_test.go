package stripeproc

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bourse-dev/bourse/pkg/testenv"
	"github.com/bourse-dev/bourse/services/payment/internal/processor"
)

// stripeError is an error answer in Stripe's shape.
func stripeError(status int, body string) *injected {
	return &injected{status: status, body: `{"error": {` + body + `}}`}
}

// Each error answer Stripe gives maps as the package comment says, and the connector sends the
// request once: stripe-go's own retries (on 409 and 5xx by default) are off, so an answer is never
// the last of several tries.
func testErrorAnswers(t *testing.T, sm *testenv.StripeMock) {
	p, rec := connector(t, sm)
	for _, tc := range []struct {
		name   string
		answer *injected
		want   processor.Status
		code   string
		ref    string
	}{
		{"card declined", stripeError(402, `"type": "card_error", "code": "card_declined", "decline_code": "insufficient_funds",
			"message": "Your card has insufficient funds.", "payment_intent": {"id": "pi_declined", "object": "payment_intent", "status": "requires_payment_method"}`),
			processor.Declined, "insufficient_funds", "pi_declined"},
		{"card error without decline code", stripeError(402, `"type": "card_error", "code": "expired_card", "message": "Your card has expired."`),
			processor.Declined, "expired_card", ""},
		{"invalid request", stripeError(400, `"type": "invalid_request_error", "code": "amount_too_small", "param": "amount", "message": "Amount must be at least $0.50 usd"`),
			processor.Declined, "amount_too_small", ""},
		{"missing payment method", stripeError(404, `"type": "invalid_request_error", "code": "resource_missing", "param": "payment_method", "message": "No such PaymentMethod"`),
			processor.Declined, "resource_missing", ""},
		{"key in use", stripeError(409, `"type": "invalid_request_error", "code": "idempotency_key_in_use", "message": "There is currently another in-progress request using this Idempotent Key"`),
			processor.Unknown, "", ""},
		{"key reused with other parameters", stripeError(400, `"type": "idempotency_error", "message": "Keys for idempotent requests can only be used with the same parameters they were first used with."`),
			processor.Unknown, "", ""},
		{"server error", stripeError(500, `"type": "api_error", "message": "An unknown error occurred"`), processor.Unknown, "", ""},
		{"bad gateway page", &injected{status: 502, body: "<html>502 Bad Gateway</html>"}, processor.Unknown, "", ""},
		{"bad key", stripeError(401, `"type": "invalid_request_error", "message": "Invalid API Key provided: sk_test_****"`), processor.NotReached, "", ""},
		{"rate limited", stripeError(429, `"type": "invalid_request_error", "code": "rate_limit", "message": "Too many requests"`), processor.NotReached, "", ""},
		{"truncated success", &injected{status: 200, body: `{"id": "pi_x", "object": "payment_int`}, processor.Unknown, "", ""},
	} {
		rec.setInject(tc.answer)
		res := authorize(t, p, "att_err", false)
		reqs := rec.take()
		if len(reqs) != 1 {
			t.Errorf("%s: %d requests sent, want 1 (no retries)", tc.name, len(reqs))
		}
		if res.Money != usd1000 {
			t.Errorf("%s: money %+v, want the request's", tc.name, res.Money)
		}
		if res.Status != tc.want || res.DeclineCode != tc.code || res.ProcessorRef != tc.ref {
			t.Errorf("%s: mapped to %v code %q ref %q (%s), want %v code %q ref %q", tc.name, res.Status, res.DeclineCode,
				res.ProcessorRef, res.Message, tc.want, tc.code, tc.ref)
		}
	}

	// A capture or lookup failing at Stripe: Unknown, still naming the PaymentIntent.
	rec.setInject(nil)
	rec.setRewrite(setFields(map[string]any{"status": "requires_capture"}))
	auth := authorize(t, p, "att_err2", false)
	rec.setInject(stripeError(500, `"type": "api_error", "message": "An unknown error occurred"`))
	res, _ := p.Capture(context.Background(), processor.CaptureRequest{Key: "att_err2:capture", AuthorizeKey: "att_err2", Money: usd1000})
	if res.Status != processor.Unknown || res.ProcessorRef != auth.ProcessorRef {
		t.Fatalf("capture answered 500: %+v", res)
	}
	for _, op := range []processor.Operation{processor.OpAuthorize, processor.OpCapture, processor.OpRefund, processor.OpPayout} {
		wantStatus(t, "lookup of "+string(op)+" answered 500", lookup(t, p, op, "att_err2:"+string(op)), processor.Unknown)
	}
}

// A refused connection is NotReached: the request provably never left. Lookup then cannot ask, so
// it is Unknown.
func TestConnectionRefusedIsNotReached(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	p, err := New(Options{Key: "sk_test_bourse", URL: "http://" + addr, Timeout: 5 * time.Second,
		Refs: func(context.Context, processor.Operation, string) (string, bool, error) {
			return "pi_stored", true, nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	res, _ := p.Authorize(ctx, processor.AuthorizeRequest{Key: "att_refused", Money: usd1000, Method: "card", PaymentToken: "pm_card_visa"})
	wantStatus(t, "authorize", res, processor.NotReached)
	res, _ = p.Capture(ctx, processor.CaptureRequest{Key: "att_refused:capture", AuthorizeKey: "att_refused", Money: usd1000})
	wantStatus(t, "capture", res, processor.NotReached)
	res, _ = p.Payout(ctx, processor.PayoutRequest{Key: "po_refused", Money: usd1000})
	wantStatus(t, "payout", res, processor.NotReached)
	wantStatus(t, "lookup", lookup(t, p, processor.OpAuthorize, "att_refused"), processor.Unknown)
}

// hungServer accepts connections, reads what is sent and never answers, as a processor that took
// the request and then stalled. It counts the requests that arrived whole.
type hungServer struct {
	l        net.Listener
	mu       sync.Mutex
	requests int
	conns    []net.Conn
}

func newHungServer(t *testing.T) *hungServer {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h := &hungServer{l: l}
	var wg sync.WaitGroup
	t.Cleanup(func() {
		l.Close()
		h.mu.Lock()
		for _, c := range h.conns {
			c.Close()
		}
		h.mu.Unlock()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			h.mu.Lock()
			h.conns = append(h.conns, c)
			h.mu.Unlock()
			wg.Go(func() {
				req, err := http.ReadRequest(bufio.NewReader(c))
				if err != nil {
					return
				}
				if _, err := io.Copy(io.Discard, req.Body); err == nil {
					h.mu.Lock()
					h.requests++
					h.mu.Unlock()
				}
				_, _ = io.Copy(io.Discard, c) // until the client gives up or the test ends
			})
		}
	})
	return h
}

func (h *hungServer) received() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.requests
}

// A server that took the request and never answers makes the call Unknown once the timeout (or the
// context's deadline, whichever is first) passes: the charge may have happened.
func TestHungServerIsUnknown(t *testing.T) {
	h := newHungServer(t)
	p, err := New(Options{Key: "sk_test_bourse", URL: "http://" + h.l.Addr().String(), Timeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	res, _ := p.Authorize(context.Background(), processor.AuthorizeRequest{Key: "att_hung", Money: usd1000, Method: "card", PaymentToken: "pm_card_visa"})
	wantStatus(t, "authorize on the client timeout", res, processor.Unknown)
	if took := time.Since(start); took > 10*time.Second {
		t.Fatalf("the 300ms timeout took %v", took)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	res, _ = p.Payout(ctx, processor.PayoutRequest{Key: "po_hung", Money: usd1000})
	wantStatus(t, "payout on the context deadline", res, processor.Unknown)
	if n := h.received(); n != 2 {
		t.Fatalf("the hung server received %d whole requests, want 2 (Unknown is for requests that arrived)", n)
	}
}

// A connection closed after the request arrived, with no answer, is Unknown: the request may have
// been acted on.
func TestClosedAfterRequestIsUnknown(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { l.Close(); wg.Wait() })
	var arrived atomic.Int32
	wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			if req, err := http.ReadRequest(bufio.NewReader(c)); err == nil {
				if _, err := io.Copy(io.Discard, req.Body); err == nil {
					arrived.Add(1)
				}
			}
			c.Close()
		}
	})
	p, err := New(Options{Key: "sk_test_bourse", URL: "http://" + l.Addr().String(), Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	res, _ := p.Authorize(context.Background(), processor.AuthorizeRequest{Key: "att_closed", Money: usd1000, Method: "card", PaymentToken: "pm_card_visa"})
	wantStatus(t, "authorize", res, processor.Unknown)
	if arrived.Load() == 0 {
		t.Fatal("the request never arrived: the test did not test a close after the request")
	}
}
