package stripeproc

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

// recorded is one request that passed the recording proxy, with stripe-mock's (or the injected)
// answer status.
type recorded struct {
	Method, Path   string
	Query          url.Values
	IdempotencyKey string
	Form           url.Values
	Status         int
}

// injected is a whole answer the proxy gives instead of asking stripe-mock: Stripe's error shape
// ({"error": {...}} with the status, and a Request-Id header), or any other body.
type injected struct {
	status int
	body   string
}

// recorder is a loopback HTTP proxy in front of stripe-mock. It records every request the
// connector sends, and a test may rewrite fields of stripe-mock's JSON answer (stripe-mock answers
// fixtures: a PaymentIntent that always requires_payment_method, lists whose one object has empty
// metadata) or answer by itself (an error stripe-mock never gives).
type recorder struct {
	t      *testing.T
	target string
	srv    *httptest.Server
	client *http.Client

	mu      sync.Mutex
	reqs    []recorded
	rewrite func(path string, obj map[string]any)
	inject  *injected
}

func newRecorder(t *testing.T, target string) *recorder {
	r := &recorder{t: t, target: target, client: &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{Proxy: nil}}}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.srv.Close)
	return r
}

// URL is the proxy's base URL, for Options.URL.
func (r *recorder) URL() string { return r.srv.URL }

func (r *recorder) setRewrite(f func(path string, obj map[string]any)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.rewrite = f
}

func (r *recorder) setInject(in *injected) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.inject = in
}

// take returns the requests recorded since the last take.
func (r *recorder) take() []recorded {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.reqs
	r.reqs = nil
	return out
}

func (r *recorder) serve(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(io.LimitReader(req.Body, 1<<20))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	form, _ := url.ParseQuery(string(body))
	rec := recorded{Method: req.Method, Path: req.URL.Path, Query: req.URL.Query(),
		IdempotencyKey: req.Header.Get("Idempotency-Key"), Form: form}
	r.mu.Lock()
	inject, rewrite := r.inject, r.rewrite
	r.mu.Unlock()

	if inject != nil {
		rec.Status = inject.status
		r.add(rec)
		w.Header().Set("Request-Id", "req_injected")
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(inject.status)
		_, _ = io.WriteString(w, inject.body)
		return
	}
	out, err := http.NewRequestWithContext(req.Context(), req.Method, r.target+req.URL.RequestURI(), bytes.NewReader(body))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	out.Header = req.Header.Clone()
	resp, err := r.client.Do(out)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(resp.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	rec.Status = resp.StatusCode
	r.add(rec)
	if rewrite != nil && resp.StatusCode == http.StatusOK {
		var obj map[string]any
		if err := json.Unmarshal(answer, &obj); err != nil {
			r.t.Errorf("proxy: stripe-mock answer to %s %s is not a JSON object: %v", req.Method, req.URL.Path, err)
		} else {
			rewrite(req.URL.Path, obj)
			if answer, err = json.Marshal(obj); err != nil {
				r.t.Errorf("proxy: %v", err)
			}
		}
	}
	for k, v := range resp.Header {
		if k != "Content-Length" {
			w.Header()[k] = v
		}
	}
	w.WriteHeader(resp.StatusCode)
	_, _ = w.Write(answer)
}

func (r *recorder) add(rec recorded) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.reqs = append(r.reqs, rec)
}

// setFields returns a rewrite that sets fields on the answered object, and on each object of a
// list or search answer.
func setFields(fields map[string]any) func(string, map[string]any) {
	return func(_ string, obj map[string]any) {
		targets := []map[string]any{obj}
		if data, ok := obj["data"].([]any); ok {
			targets = targets[:0]
			for _, d := range data {
				if m, ok := d.(map[string]any); ok {
					targets = append(targets, m)
				}
			}
		}
		for _, o := range targets {
			for k, v := range fields {
				o[k] = v
			}
		}
	}
}
