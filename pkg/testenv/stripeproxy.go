package testenv

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
	"time"
)

// StripeCall is one request that passed a StripeProxy, with the status it was answered.
type StripeCall struct {
	Method, Path   string
	Query          url.Values
	IdempotencyKey string
	Form           url.Values
	Status         int
}

// StripeAnswer is a whole answer a StripeProxy gives instead of asking stripe-mock: Stripe's error
// shape ({"error": {...}} with its status, and a Request-Id header), or any other body.
type StripeAnswer struct {
	Status int
	Body   string
}

// StripeProxy is a loopback HTTP proxy in front of a stripe-mock. It records every request, and a
// test may change fields of stripe-mock's JSON answers (stripe-mock is stateless and answers from
// fixtures: a PaymentIntent that always requires_payment_method, lists whose one object has empty
// metadata) or answer by itself (an error stripe-mock never gives). A request stripe-mock refuses
// is answered as stripe-mock answered it.
type StripeProxy struct {
	URL string // the base URL a Stripe client is configured with

	t      testing.TB
	target string
	client *http.Client

	mu      sync.Mutex
	calls   []StripeCall
	rewrite func(c StripeCall, obj map[string]any)
	inject  *StripeAnswer
}

// NewStripeProxy starts a proxy to target (a StripeMock's URL) for the test.
func NewStripeProxy(t testing.TB, target string) *StripeProxy {
	p := &StripeProxy{t: t, target: target, client: &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{Proxy: nil}}}
	srv := httptest.NewServer(http.HandlerFunc(p.serve))
	t.Cleanup(srv.Close)
	p.URL = srv.URL
	return p
}

// SetRewrite sets what changes the JSON object of each answer stripe-mock gives with status 200
// (nil: nothing); f sees the request it answers.
func (p *StripeProxy) SetRewrite(f func(c StripeCall, obj map[string]any)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rewrite = f
}

// SetInject makes the proxy answer every request with a (nil: ask stripe-mock again).
func (p *StripeProxy) SetInject(a *StripeAnswer) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.inject = a
}

// Take returns the requests recorded since the last Take.
func (p *StripeProxy) Take() []StripeCall {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := p.calls
	p.calls = nil
	return out
}

func (p *StripeProxy) add(c StripeCall) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls = append(p.calls, c)
}

func (p *StripeProxy) serve(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(io.LimitReader(req.Body, 1<<20))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	form, _ := url.ParseQuery(string(body))
	c := StripeCall{Method: req.Method, Path: req.URL.Path, Query: req.URL.Query(),
		IdempotencyKey: req.Header.Get("Idempotency-Key"), Form: form}
	p.mu.Lock()
	inject, rewrite := p.inject, p.rewrite
	p.mu.Unlock()

	if inject != nil {
		c.Status = inject.Status
		p.add(c)
		w.Header().Set("Request-Id", "req_injected")
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(inject.Status)
		_, _ = io.WriteString(w, inject.Body)
		return
	}
	out, err := http.NewRequestWithContext(req.Context(), req.Method, p.target+req.URL.RequestURI(), bytes.NewReader(body))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	out.Header = req.Header.Clone()
	resp, err := p.client.Do(out)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	c.Status = resp.StatusCode
	if rewrite != nil && resp.StatusCode == http.StatusOK {
		var obj map[string]any
		if err := json.Unmarshal(answer, &obj); err != nil {
			p.t.Errorf("stripe proxy: stripe-mock answer to %s %s is not a JSON object: %v", req.Method, req.URL.Path, err)
		} else {
			rewrite(c, obj)
			if answer, err = json.Marshal(obj); err != nil {
				p.t.Errorf("stripe proxy: %v", err)
			}
		}
	}
	// Recorded before the answer goes out: a test that takes the calls once its client has the
	// answer sees this one.
	p.add(c)
	for k, v := range resp.Header {
		if k != "Content-Length" {
			w.Header()[k] = v
		}
	}
	w.WriteHeader(resp.StatusCode)
	_, _ = w.Write(answer)
}
