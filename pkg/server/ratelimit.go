package server

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/bourse-dev/bourse/pkg/auth"
)

// Rate is a token bucket: PerSecond calls on average, bursts of up to Burst. A zero PerSecond means
// no limit.
type Rate struct {
	PerSecond float64
	Burst     int
}

// ParseRate reads "off", "<n>/s" or "<n>/s:<burst>" (burst defaults to twice the rate, at least 1).
func ParseRate(s string) (Rate, error) {
	s = strings.TrimSpace(s)
	if s == "" || s == "off" || s == "0" {
		return Rate{}, nil
	}
	perSec, burst, hasBurst := strings.Cut(s, ":")
	n, err := strconv.ParseFloat(strings.TrimSuffix(perSec, "/s"), 64)
	if err != nil || n < 0 || !strings.HasSuffix(perSec, "/s") {
		return Rate{}, fmt.Errorf("rate %q: want off, <n>/s or <n>/s:<burst>", s)
	}
	r := Rate{PerSecond: n, Burst: max(1, int(2*n))}
	if hasBurst {
		b, err := strconv.Atoi(burst)
		if err != nil || b < 1 {
			return Rate{}, fmt.Errorf("rate %q: burst must be a positive integer", s)
		}
		r.Burst = b
	}
	return r, nil
}

func (r Rate) String() string {
	if r.PerSecond == 0 {
		return "off"
	}
	return strconv.FormatFloat(r.PerSecond, 'f', -1, 64) + "/s:" + strconv.Itoa(r.Burst)
}

// rateLimiter keeps one token bucket per identity. Identities come from the keyring, so the map is
// bounded by the number of configured keys (plus those removed by a reload, which are few).
type rateLimiter struct {
	rates   map[auth.Role]Rate
	now     func() time.Time
	mu      sync.Mutex
	buckets map[auth.Identity]*bucket
}

type bucket struct {
	tokens float64
	at     time.Time
}

func newRateLimiter(rates map[auth.Role]Rate, now func() time.Time) *rateLimiter {
	return &rateLimiter{rates: rates, now: now, buckets: map[auth.Identity]*bucket{}}
}

// allow takes one token from id's bucket; it reports false when the bucket is empty.
func (l *rateLimiter) allow(id auth.Identity) bool {
	return l.take(id) == 0
}

// wait takes one token from id's bucket, waiting for it as long as ctx allows. A stream's messages
// pay this way: the stream of a caller over its rate slows down to it, and nobody else waits.
func (l *rateLimiter) wait(ctx context.Context, id auth.Identity) error {
	for {
		d := l.take(id)
		if d == 0 {
			return nil
		}
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		}
	}
}

// take takes one token from id's bucket and answers 0, or answers how long until a token is there.
func (l *rateLimiter) take(id auth.Identity) time.Duration {
	r := l.rates[id.Role]
	if r.PerSecond == 0 {
		return 0
	}
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	b, ok := l.buckets[id]
	if !ok {
		b = &bucket{tokens: float64(r.Burst), at: now}
		l.buckets[id] = b
	}
	b.tokens = min(float64(r.Burst), b.tokens+now.Sub(b.at).Seconds()*r.PerSecond)
	b.at = now
	if b.tokens < 1 {
		return max(time.Duration((1-b.tokens)/r.PerSecond*float64(time.Second)), time.Microsecond)
	}
	b.tokens--
	return 0
}
