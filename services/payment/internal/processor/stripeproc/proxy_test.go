package stripeproc

import (
	"testing"

	"github.com/bourse-dev/bourse/pkg/testenv"
)

// recorded is one request that passed the recording proxy, with stripe-mock's (or the injected)
// answer status.
type recorded = testenv.StripeCall

// injected is a whole answer the proxy gives instead of asking stripe-mock.
type injected struct {
	status int
	body   string
}

// recorder is testenv's recording proxy in front of stripe-mock, with the rewrites these tests use
// (by path).
type recorder struct{ p *testenv.StripeProxy }

func newRecorder(t *testing.T, target string) *recorder {
	return &recorder{testenv.NewStripeProxy(t, target)}
}

// URL is the proxy's base URL, for Options.URL.
func (r *recorder) URL() string { return r.p.URL }

func (r *recorder) setRewrite(f func(path string, obj map[string]any)) {
	if f == nil {
		r.p.SetRewrite(nil)
		return
	}
	r.p.SetRewrite(func(c testenv.StripeCall, obj map[string]any) { f(c.Path, obj) })
}

func (r *recorder) setInject(in *injected) {
	if in == nil {
		r.p.SetInject(nil)
		return
	}
	r.p.SetInject(&testenv.StripeAnswer{Status: in.status, Body: in.body})
}

// take returns the requests recorded since the last take.
func (r *recorder) take() []recorded { return r.p.Take() }

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
