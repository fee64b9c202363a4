package payment_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// stripeCall is one request the payment binary sent to Stripe, with stripe-mock's status.
type stripeCall struct {
	Method, Path, IdempotencyKey string
	Form                         url.Values
	Status                       int
}

// stripeState is a loopback proxy in front of a real stripe-mock that gives stripe-mock's
// PaymentIntent answers the state a real Stripe account would have for the test card
// (pm_card_visa). stripe-mock validates every request against Stripe's API and answers from
// fixtures, but it is stateless: its PaymentIntent always requires_payment_method, so no deposit
// could ever succeed through it. The proxy rewrites only what that state decides, from the request
// itself: a confirmed PaymentIntent is succeeded (capture_method automatic, amount_received = amount)
// or requires_capture (manual, amount_capturable = amount); a capture is succeeded with
// amount_received = amount_to_capture; a cancel is canceled. Refunds and payouts are stripe-mock's
// own answers (succeeded, in_transit). A request stripe-mock refuses is answered as it was, unchanged.
type stripeState struct {
	t      *testing.T
	target string
	srv    *httptest.Server
	client *http.Client

	mu    sync.Mutex
	calls []stripeCall
}

func newStripeState(t *testing.T, target string) *stripeState {
	s := &stripeState{t: t, target: target, client: &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{Proxy: nil}}}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.srv.Close)
	return s
}

// take returns the calls recorded since the last take.
func (s *stripeState) take() []stripeCall {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.calls
	s.calls = nil
	return out
}

func (s *stripeState) serve(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(io.LimitReader(req.Body, 1<<20))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	form, _ := url.ParseQuery(string(body))
	fwd, err := http.NewRequestWithContext(req.Context(), req.Method, s.target+req.URL.RequestURI(), bytes.NewReader(body))
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	fwd.Header = req.Header.Clone()
	resp, err := s.client.Do(fwd)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	if resp.StatusCode == http.StatusOK && req.Method == http.MethodPost && strings.HasPrefix(req.URL.Path, "/v1/payment_intents") {
		out = s.withState(req.URL.Path, form, out)
	}
	s.mu.Lock()
	s.calls = append(s.calls, stripeCall{Method: req.Method, Path: req.URL.Path, IdempotencyKey: req.Header.Get("Idempotency-Key"),
		Form: form, Status: resp.StatusCode})
	s.mu.Unlock()
	for k, v := range resp.Header {
		if k != "Content-Length" {
			w.Header()[k] = v
		}
	}
	w.WriteHeader(resp.StatusCode)
	_, _ = w.Write(out)
}

// withState sets the PaymentIntent's status and amounts as Stripe would after this request.
func (s *stripeState) withState(path string, form url.Values, body []byte) []byte {
	var pi map[string]any
	if err := json.Unmarshal(body, &pi); err != nil {
		s.t.Errorf("stripe-mock answered %s with no JSON object: %v", path, err)
		return body
	}
	amount := func(field string) int64 {
		n, err := strconv.ParseInt(form.Get(field), 10, 64)
		if err != nil {
			s.t.Errorf("%s: form %s = %q", path, field, form.Get(field))
		}
		return n
	}
	switch {
	case path == "/v1/payment_intents" && form.Get("confirm") == "true":
		a := amount("amount")
		pi["amount"], pi["currency"], pi["last_payment_error"] = a, form.Get("currency"), nil
		if form.Get("capture_method") == "manual" {
			pi["status"], pi["amount_capturable"], pi["amount_received"] = "requires_capture", a, 0
		} else {
			pi["status"], pi["amount_capturable"], pi["amount_received"] = "succeeded", 0, a
		}
	case strings.HasSuffix(path, "/capture"):
		pi["status"], pi["amount_capturable"], pi["amount_received"], pi["last_payment_error"] = "succeeded", 0, amount("amount_to_capture"), nil
	case strings.HasSuffix(path, "/cancel"):
		pi["status"], pi["amount_capturable"], pi["last_payment_error"] = "canceled", 0, nil
	default:
		return body
	}
	b, err := json.Marshal(pi)
	if err != nil {
		s.t.Errorf("re-encoding %s: %v", path, err)
		return body
	}
	return b
}
