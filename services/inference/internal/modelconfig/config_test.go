package modelconfig

import (
	"slices"
	"strings"
	"testing"
	"time"
)

const valid = `{
  "max_batch_size": 8,
  "inputs": [{"name": "X", "datatype": "FP32", "dims": [4]}],
  "outputs": [{"name": "y", "datatype": "INT64", "dims": []}],
  "dynamic_batching": {"max_queue_delay": "250us", "preferred_batch_sizes": [8, 4]}
}`

func TestParseFillsDefaults(t *testing.T) {
	c, err := Parse([]byte(valid))
	if err != nil {
		t.Fatal(err)
	}
	if c.Platform != PlatformONNX || c.Instances != 1 || c.VersionPolicy.Latest != 1 || c.ResponseCache {
		t.Fatalf("defaults not filled: %+v", c)
	}
	if c.MaxQueueSize != DefaultMaxQueueSize || c.Allow != nil {
		t.Fatalf("queue bound %d, allow %v: want the default bound and no access rule", c.MaxQueueSize, c.Allow)
	}
	if time.Duration(c.DynamicBatching.MaxQueueDelay) != 250*time.Microsecond || c.DynamicBatching.MaxQueueSize != 1024 {
		t.Fatalf("batching %+v", c.DynamicBatching)
	}
	if !slices.Equal(c.DynamicBatching.PreferredBatchSizes, []int{4, 8}) {
		t.Fatalf("preferred sizes not sorted: %v", c.DynamicBatching.PreferredBatchSizes)
	}
	if got := c.FullShape(c.Inputs[0]); !slices.Equal(got, []int64{-1, 4}) {
		t.Fatalf("full shape %v", got)
	}
}

func TestParseRejects(t *testing.T) {
	cases := map[string]string{
		"unknown field":         `{"max_batch":1}`,
		"no inputs":             `{"outputs":[{"name":"y","datatype":"FP32"}]}`,
		"bad datatype":          `{"inputs":[{"name":"x","datatype":"FLOAT"}],"outputs":[{"name":"y","datatype":"FP32"}]}`,
		"batching without size": `{"inputs":[{"name":"x","datatype":"FP32"}],"outputs":[{"name":"y","datatype":"FP32"}],"dynamic_batching":{}}`,
		"two policies":          `{"inputs":[{"name":"x","datatype":"FP32"}],"outputs":[{"name":"y","datatype":"FP32"}],"version_policy":{"latest":1,"all":true}}`,
		"preferred too large":   `{"max_batch_size":2,"inputs":[{"name":"x","datatype":"FP32"}],"outputs":[{"name":"y","datatype":"FP32"}],"dynamic_batching":{"preferred_batch_sizes":[4]}}`,
		"variable dim batched":  `{"max_batch_size":2,"inputs":[{"name":"x","datatype":"FP32","dims":[-1]}],"outputs":[{"name":"y","datatype":"FP32"}],"dynamic_batching":{}}`,
		"duplicate input":       `{"inputs":[{"name":"x","datatype":"FP32"},{"name":"x","datatype":"FP32"}],"outputs":[{"name":"y","datatype":"FP32"}]}`,
		"bad delay":             `{"max_batch_size":2,"inputs":[{"name":"x","datatype":"FP32"}],"outputs":[{"name":"y","datatype":"FP32"}],"dynamic_batching":{"max_queue_delay":"5s"}}`,
		"negative queue":        `{"max_queue_size":-1,"inputs":[{"name":"x","datatype":"FP32"}],"outputs":[{"name":"y","datatype":"FP32"}]}`,
		"unbounded queue":       `{"max_queue_size":100000000,"inputs":[{"name":"x","datatype":"FP32"}],"outputs":[{"name":"y","datatype":"FP32"}]}`,
		"batching queue":        `{"max_batch_size":2,"inputs":[{"name":"x","datatype":"FP32"}],"outputs":[{"name":"y","datatype":"FP32"}],"dynamic_batching":{"max_queue_size":-5}}`,
		"empty allow":           `{"allow":[],"inputs":[{"name":"x","datatype":"FP32"}],"outputs":[{"name":"y","datatype":"FP32"}]}`,
		"unknown role":          `{"allow":["services:payment"],"inputs":[{"name":"x","datatype":"FP32"}],"outputs":[{"name":"y","datatype":"FP32"}]}`,
		"bad subject":           `{"allow":["service:pay ment"],"inputs":[{"name":"x","datatype":"FP32"}],"outputs":[{"name":"y","datatype":"FP32"}]}`,
	}
	for name, body := range cases {
		if _, err := Parse([]byte(body)); err == nil || !strings.Contains(err.Error(), FileName) {
			t.Errorf("%s: err = %v, want a config error", name, err)
		}
	}
}

func TestVersionPolicySelect(t *testing.T) {
	avail := []int64{1, 3, 2, 10}
	for _, tc := range []struct {
		p    VersionPolicy
		want []int64
	}{
		{VersionPolicy{Latest: 1}, []int64{10}},
		{VersionPolicy{Latest: 2}, []int64{10, 3}},
		{VersionPolicy{Latest: 9}, []int64{10, 3, 2, 1}},
		{VersionPolicy{All: true}, []int64{10, 3, 2, 1}},
		{VersionPolicy{Specific: []int64{2, 7}}, []int64{2}},
	} {
		if got := tc.p.Select(avail); !slices.Equal(got, tc.want) {
			t.Errorf("%+v selected %v, want %v", tc.p, got, tc.want)
		}
	}
}

// One queue bound serves both execution paths; dynamic_batching's own bound, when set, wins for a
// batched model.
func TestQueueBound(t *testing.T) {
	c, err := Parse([]byte(`{"max_queue_size":8,"max_batch_size":4,"inputs":[{"name":"x","datatype":"FP32","dims":[1]}],
		"outputs":[{"name":"y","datatype":"FP32"}],"dynamic_batching":{}}`))
	if err != nil {
		t.Fatal(err)
	}
	if c.MaxQueueSize != 8 || c.DynamicBatching.MaxQueueSize != 8 {
		t.Fatalf("bounds %d / %d, want 8 for both", c.MaxQueueSize, c.DynamicBatching.MaxQueueSize)
	}
	c, err = Parse([]byte(`{"max_queue_size":8,"max_batch_size":4,"inputs":[{"name":"x","datatype":"FP32","dims":[1]}],
		"outputs":[{"name":"y","datatype":"FP32"}],"dynamic_batching":{"max_queue_size":3}}`))
	if err != nil {
		t.Fatal(err)
	}
	if c.DynamicBatching.MaxQueueSize != 3 {
		t.Fatalf("batching bound %d, want its own 3", c.DynamicBatching.MaxQueueSize)
	}
}

// The fraud model's rule: the payment service and any admin, nobody else.
func TestAccessRule(t *testing.T) {
	c, err := Parse([]byte(`{"allow":["service:payment","admin"],"inputs":[{"name":"x","datatype":"FP32"}],"outputs":[{"name":"y","datatype":"FP32"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		role, subject string
		want          bool
	}{
		{"service", "payment", true},
		{"admin", "ops", true},
		{"admin", "anyone", true},
		{"service", "matching", false},
		{"account", "payment", false}, // an account named like the service is not the service
		{"account", "alice", false},
		{"", "", false},
	} {
		if got := c.Allow.Allows(tc.role, tc.subject); got != tc.want {
			t.Errorf("%s:%s allowed %v, want %v", tc.role, tc.subject, got, tc.want)
		}
	}
	if !Access(nil).Allows("account", "alice") {
		t.Error("a model without a rule refused an authenticated account")
	}
	if a := (Access{"admin:*", "account:alice"}); !a.Allows("admin", "ops") || !a.Allows("account", "alice") || a.Allows("account", "bob") {
		t.Errorf("%v: wildcard or exact subject not matched", a)
	}
}
