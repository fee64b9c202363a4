package webhook

import (
	"encoding/hex"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestSignVerify(t *testing.T) {
	body := []byte(`{"id":"evt_1","type":"payment.succeeded","created":1764590000,"data":{}}`)
	at := time.Unix(1_764_590_000, 0)
	h := Sign(body, []string{"whsec_new", "whsec_old"}, at)
	if !strings.HasPrefix(h, "t=1764590000,v1=") || strings.Count(h, ",v1=") != 2 {
		t.Fatalf("header %q: want t and two v1", h)
	}
	for _, c := range []struct {
		name    string
		header  string
		body    []byte
		secrets []string
		now     time.Time
		want    error
	}{
		{"current secret", h, body, []string{"whsec_new"}, at, nil},
		{"previous secret during rotation", h, body, []string{"whsec_old"}, at, nil},
		{"receiver holds both", h, body, []string{"x", "whsec_old"}, at, nil},
		{"299 s old", h, body, []string{"whsec_new"}, at.Add(299 * time.Second), nil},
		{"301 s old", h, body, []string{"whsec_new"}, at.Add(301 * time.Second), ErrTimestamp},
		{"301 s ahead", h, body, []string{"whsec_new"}, at.Add(-301 * time.Second), ErrTimestamp},
		{"other secret", h, body, []string{"whsec_other"}, at, ErrSignature},
		{"no secrets", h, body, nil, at, ErrSignature},
		{"body changed", h, append([]byte(nil), append(body, ' ')...), []string{"whsec_new"}, at, ErrSignature},
		{"timestamp changed", strings.Replace(h, "t=1764590000", "t=1764590001", 1), body, []string{"whsec_new"}, at, ErrSignature},
		{"no header", "", body, []string{"whsec_new"}, at, ErrNoHeader},
		{"no timestamp", h[strings.Index(h, ",")+1:], body, []string{"whsec_new"}, at, ErrBadHeader},
		{"two timestamps", "t=1," + h, body, []string{"whsec_new"}, at, ErrBadHeader},
		{"garbage", "nonsense", body, []string{"whsec_new"}, at, ErrBadHeader},
		{"huge", "t=1764590000" + strings.Repeat(",v1=00", 1000), body, []string{"whsec_new"}, at, ErrBadHeader},
		{"unknown scheme ignored", h + ",v0=abc", body, []string{"whsec_new"}, at, nil},
		{"malformed v1 beside a good one", "t=1764590000,v1=zz," + h[len("t=1764590000,"):], body, []string{"whsec_new"}, at, nil},
	} {
		err := Verify(c.header, c.body, c.secrets, 0, c.now)
		if !errors.Is(err, c.want) || (c.want == nil) != (err == nil) {
			t.Errorf("%s: Verify = %v, want %v", c.name, err, c.want)
		}
		// The README snippet agrees with Verify on every case made with one secret.
		if len(c.secrets) == 1 && c.want != ErrBadHeader {
			if got := VerifyBourseSignature(c.header, c.body, c.secrets[0], c.now); got != (c.want == nil) {
				t.Errorf("%s: snippet says %v, Verify %v", c.name, got, err)
			}
		}
	}
}

func FuzzVerify(f *testing.F) {
	body := []byte(`{"id":"evt_1"}`)
	f.Add(Sign(body, []string{"s"}, time.Unix(1000, 0)), body)
	f.Add("t=1,v1=", []byte{})
	f.Fuzz(func(t *testing.T, header string, body []byte) {
		// Never panics, and accepts only a header holding the v1 Sign makes for its t and these bytes.
		if Verify(header, body, []string{"s"}, 1<<62, time.Unix(1000, 0)) != nil {
			return
		}
		for part := range strings.SplitSeq(header, ",") {
			if v, ok := strings.CutPrefix(strings.TrimSpace(part), "t="); ok {
				ts, err := strconv.ParseInt(v, 10, 64)
				if err != nil {
					t.Fatalf("accepted a bad t in %q", header)
				}
				if !strings.Contains(header, "v1="+hex.EncodeToString(mac("s", ts, body))) {
					t.Fatalf("accepted %q for %q without its signature", header, body)
				}
				return
			}
		}
		t.Fatalf("accepted %q without a t", header)
	})
}

func TestCheckURL(t *testing.T) {
	for _, ok := range []string{"https://example.com/hook", "http://127.0.0.1:8080/x?y=1"} {
		if err := CheckURL(ok); err != nil {
			t.Errorf("CheckURL(%q) = %v", ok, err)
		}
	}
	for _, bad := range []string{"", "example.com/hook", "ftp://example.com", "https://", "https://u:p@example.com/",
		"https://example.com/#frag", "https://example.com/" + strings.Repeat("a", MaxURL), "http://[::1"} {
		if err := CheckURL(bad); err == nil {
			t.Errorf("CheckURL(%q) accepted", bad)
		}
	}
}

func TestBackoff(t *testing.T) {
	c := Config{InitialBackoff: time.Second, MaxBackoff: 10 * time.Second}
	for n, full := range map[int]time.Duration{1: time.Second, 2: 2 * time.Second, 3: 4 * time.Second, 4: 8 * time.Second, 5: 10 * time.Second, 60: 10 * time.Second} {
		if lo, hi := c.Backoff(n, 0), c.Backoff(n, 0.999999); lo != full/2 || hi <= lo || hi > full {
			t.Errorf("Backoff(%d) in [%v, %v], want [%v, %v]", n, lo, hi, full/2, full)
		}
	}
}
