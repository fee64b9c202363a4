package catalog

import (
	"strings"
	"testing"
	"time"

	"github.com/bourse-dev/bourse/pkg/consul"
	"github.com/bourse-dev/bourse/pkg/errs"
)

func fieldOf(err error) string {
	if e, ok := err.(*errs.Error); ok && e.Kind == errs.KindInvalidArgument {
		return e.Field
	}
	return ""
}

func TestValidationNamesTheField(t *testing.T) {
	cases := []struct {
		err   error
		field string
	}{
		{validateName("name", ""), "name"},
		{validateName("name", strings.Repeat("a", 64)), "name"},
		{validateName("name", "-x"), "name"},
		{validateAddress("::"), "address"},
		{validateAddress("a..b"), "address"},
		{validateAddress(strings.Repeat("a", 64) + ".com"), "address"},
		{validatePort(0), "port"},
		{validatePort(65536), "port"},
		{validateID("a b"), "id"},
		{validateTags([]string{"x", "y\tz"}), "tags[1]"},
		{validateTags(make([]string, maxTags+1)), "tags"},
		{validateMeta(map[string]string{"k": strings.Repeat("v", maxMetaValueLen+1)}), `metadata["k"]`},
		{validateCheck(&consul.Check{Interval: 2 * time.Hour}), "check.interval"},
		{validateCheck(&consul.Check{Timeout: -time.Second}), "check.timeout"},
		{validateCheck(&consul.Check{Kind: consul.CheckTCP, Target: "x"}), "check.target"},
		{validateCheck(&consul.Check{Kind: consul.CheckGRPC, Target: "bad/svc"}), "check.target"},
	}
	for i, c := range cases {
		if got := fieldOf(c.err); got != c.field {
			t.Errorf("case %d: err %v names %q, want %q", i, c.err, got, c.field)
		}
	}
}

func TestValidInputPasses(t *testing.T) {
	for _, err := range []error{
		validateName("name", "risk-2"),
		validateAddress("10.0.0.1"),
		validateAddress("::1"),
		validateAddress("risk.service.consul"),
		validatePort(65535),
		validateID("risk-127.0.0.1-7002"),
		validateTags([]string{"v2", "primary"}),
		validateMeta(map[string]string{"zone": "eu-1", "build_sha": "abc"}),
		validateCheck(&consul.Check{Kind: consul.CheckHTTP, Target: "http://127.0.0.1:9000/health"}),
		validateCheck(&consul.Check{Kind: consul.CheckGRPC, Target: "bourse.risk.v1.RiskService"}),
	} {
		if err != nil {
			t.Errorf("valid input rejected: %v", err)
		}
	}
}

func TestCheckDefaults(t *testing.T) {
	c := consul.Check{Interval: 500 * time.Millisecond * 3}
	if err := validateCheck(&c); err != nil {
		t.Fatal(err)
	}
	if c.Timeout != 1500*time.Millisecond || c.DeregisterAfter != DefaultDeregisterAfter {
		t.Errorf("defaults: %+v (timeout is capped at the interval)", c)
	}
}

func TestFilterAndSnapshot(t *testing.T) {
	res := consul.Result{Index: 7, Instances: []consul.Instance{
		{ID: "b", Tags: []string{"v2", "primary"}, Meta: map[string]string{"zone": "a"}},
		{ID: "a", Tags: []string{"v2"}, Meta: map[string]string{"zone": "b"}},
		{ID: "c", Tags: []string{"v1"}},
	}}
	ids := func(s Snapshot) string {
		var out []string
		for _, i := range s.Instances {
			out = append(out, i.ID)
		}
		return strings.Join(out, ",")
	}
	for _, c := range []struct {
		f    Filter
		want string
	}{
		{Filter{}, "a,b,c"},
		{Filter{Tags: []string{"v2"}}, "a,b"},
		{Filter{Tags: []string{"v2", "primary"}}, "b"},
		{Filter{Meta: map[string]string{"zone": "b"}}, "a"},
		{Filter{Meta: map[string]string{"zone": ""}}, ""},
	} {
		s := snapshot(res, c.f)
		if got := ids(s); got != c.want || s.Index != 7 {
			t.Errorf("filter %+v: %q index %d, want %q", c.f, got, s.Index, c.want)
		}
	}
}
