package routing

import (
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/bourse-dev/bourse/pkg/errs"
)

func TestParseRulesAndRoute(t *testing.T) {
	rules, err := ParseRules(`
# cards up to 1,000.00 USD: acquirer first
card USD ..100000 acquirer,stripe
card * 500.. stripe ; bank_transfer EUR 1..99 acquirer   # two rules on one line
* * * acquirer
`)
	if err != nil {
		t.Fatal(err)
	}
	want := Rules{
		{Method: "card", Currency: "USD", MinAmount: 0, MaxAmount: 100000, Processors: []string{"acquirer", "stripe"}},
		{Method: "card", Currency: "*", MinAmount: 500, MaxAmount: math.MaxInt64, Processors: []string{"stripe"}},
		{Method: "bank_transfer", Currency: "EUR", MinAmount: 1, MaxAmount: 99, Processors: []string{"acquirer"}},
		{Method: "*", Currency: "*", MinAmount: 0, MaxAmount: math.MaxInt64, Processors: []string{"acquirer"}},
	}
	if !reflect.DeepEqual(rules, want) {
		t.Fatalf("parsed\n%#v\nwant\n%#v", rules, want)
	}
	for _, c := range []struct {
		method, currency string
		amount           int64
		want             string
	}{
		{"card", "USD", 100000, "acquirer,stripe"},
		{"card", "USD", 100001, "stripe"},
		{"card", "EUR", 499, "acquirer"},
		{"card", "EUR", 500, "stripe"},
		{"bank_transfer", "EUR", 99, "acquirer"},
		{"bank_transfer", "EUR", 100, "acquirer"},
		{"wallet", "JPY", 1, "acquirer"},
	} {
		got, ok := rules.Route(c.method, c.currency, c.amount)
		if !ok || strings.Join(got, ",") != c.want {
			t.Errorf("Route(%s %s %d) = %v %v, want %s", c.method, c.currency, c.amount, got, ok, c.want)
		}
	}
	if got := rules.Processors(); !reflect.DeepEqual(got, []string{"acquirer", "stripe"}) {
		t.Errorf("Processors() = %v", got)
	}
	narrow, _ := ParseRules("card USD 1..10 acquirer")
	if _, ok := narrow.Route("card", "USD", 11); ok {
		t.Error("an amount past the range matched")
	}
}

func TestParseRulesRejects(t *testing.T) {
	for _, text := range []string{
		"",
		"# only a comment",
		"card USD * ",
		"card USD * a extra",
		"Card USD * a",
		"card usd * a",
		"card USDX * a",
		"card USD 10 a",
		"card USD 10..5 a",
		"card USD -1..5 a",
		"card USD +1..5 a",
		"card USD .. a",
		"card USD 1..99999999999999999999 a",
		"card USD * a,,b",
		"card USD * a,a",
		"card USD * *",
		"card USD * a,b,c,d,e,f,g,h,i",
		strings.Repeat("* * * a\n", MaxRules+1),
	} {
		_, err := ParseRules(text)
		if err == nil {
			t.Errorf("ParseRules(%q) accepted", text)
			continue
		}
		if !strings.HasPrefix(err.Error(), "routing: ") || errs.KindOf(err) != errs.KindInvalidArgument {
			t.Errorf("ParseRules(%q) error %q (kind %v), want InvalidArgument naming routing", text, err, errs.KindOf(err))
		}
	}
}

func FuzzParseRules(f *testing.F) {
	for _, s := range []string{
		"card USD ..100000 acquirer,stripe\n* * * acquirer",
		"card * 500.. stripe ; bank_transfer EUR 1..99 acquirer # c",
		"a B 1..2 x",
		"* * * a,b,c",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		rules, err := ParseRules(text)
		if err != nil {
			return
		}
		for _, r := range rules {
			if r.MinAmount < 0 || r.MinAmount > r.MaxAmount || len(r.Processors) == 0 || len(r.Processors) > MaxRoute {
				t.Fatalf("accepted an impossible rule %+v from %q", r, text)
			}
		}
		// The printed form reads back as the same rules.
		again, err := ParseRules(rules.String())
		if err != nil {
			t.Fatalf("String() of %q does not parse: %v\n%s", text, err, rules.String())
		}
		if !reflect.DeepEqual(rules, again) {
			t.Fatalf("round trip of %q:\n%#v\n%#v", text, rules, again)
		}
	})
}
