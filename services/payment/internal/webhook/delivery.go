package webhook

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"

	"golang.org/x/net/idna"
)

// Event is one entry of the payment event log, as a webhook delivers it. ID is the receiver's key
// for deduplication: every delivery and every retry of an event carries the same ID.
type Event struct {
	ID      string          // "evt_..."
	Type    string          // "payment.succeeded", "refund.created", ...
	Created time.Time       // when the state change happened (sent as unix seconds)
	Data    json.RawMessage // the object the event is about, as the API renders it
}

// Body is the request body of the event: {"id","type","created","data"}. It is the same bytes on
// every attempt, so receivers may also hash it.
func (e Event) Body() ([]byte, error) {
	data := e.Data
	if len(data) == 0 {
		data = json.RawMessage("{}")
	}
	return json.Marshal(struct {
		ID      string          `json:"id"`
		Type    string          `json:"type"`
		Created int64           `json:"created"`
		Data    json.RawMessage `json:"data"`
	}{e.ID, e.Type, e.Created.Unix(), data})
}

// Endpoint is where a customer receives events.
type Endpoint struct {
	ID  string
	URL string
	// Account owns the endpoint: its endpoints together get at most Config.PerAccount workers. Empty
	// (no account) leaves the endpoint to its PerEndpoint share alone; the payment store always sets it.
	Account string
	// Secrets signs with each (one v1 per secret): the current one, plus the previous one for a while
	// after a rotation, so receivers can switch at their own pace.
	Secrets []string
}

// Delivery is one event owed to one endpoint.
type Delivery struct {
	ID       string // stable per (event, endpoint)
	Event    Event
	Endpoint Endpoint
	Attempts int       // attempts already made
	Created  time.Time // when the delivery was created; retries stop MaxAge after it
}

// Outcome is what happened to a delivery on one pass of the dispatcher.
type Outcome int

const (
	// Delivered: the endpoint answered 2xx. Final.
	Delivered Outcome = iota + 1
	// Failed: the attempt failed (non-2xx, network error, timeout); retry at NextAttempt.
	Failed
	// GaveUp: the attempt failed and the next one would fall past MaxAge. Final.
	GaveUp
	// Deferred: not attempted (its endpoint or its account already had its share of the
	// dispatcher's workers in flight); due again at NextAttempt, Attempts unchanged, nothing to add to the attempt log.
	Deferred
)

func (o Outcome) String() string {
	switch o {
	case Delivered:
		return "delivered"
	case Failed:
		return "failed"
	case GaveUp:
		return "gave_up"
	case Deferred:
		return "deferred"
	default:
		return fmt.Sprintf("outcome(%d)", int(o))
	}
}

// Result is one attempt (or deferral) of a delivery, for the store to record.
type Result struct {
	DeliveryID string
	Outcome    Outcome
	Attempt    int       // 1 for the first attempt; unchanged (Delivery.Attempts) when Deferred
	At         time.Time // when the attempt started
	Duration   time.Duration
	StatusCode int    // the HTTP status; 0 when there was none
	Error      string // why it failed, when it did (at most 500 bytes)
	Response   string // the start of the response body (at most 256 bytes), for the customer
	// Error and Response are valid UTF-8 without NUL, whatever bytes the receiver sent.
	NextAttempt time.Time // for Failed and Deferred
}

// Store is the durable side of deliveries, implemented by the payment service's database.
//
// Due returns up to q.Limit deliveries that are not final, whose next attempt is at or before q.Now,
// whose endpoint is not in q.SkipEndpoints and whose endpoint's account is not in q.SkipAccounts
// (those this dispatcher cannot take more of now), oldest due first, and claims them: none of them is returned again (to this or any other
// dispatcher, on any replica) until q.Now+q.Lease, unless Record reschedules it first. The dispatcher's
// lease always exceeds its request timeout, so a claimed delivery is recorded before the claim
// lapses unless the process dies, in which case the delivery is simply due again.
//
// Record stores a Result: Delivered and GaveUp make the delivery final; Failed sets its attempt count
// to Result.Attempt and its next attempt to Result.NextAttempt; Deferred only moves its next attempt.
// Every Result except Deferred is also an entry of the delivery's attempt log.
type Store interface {
	Due(ctx context.Context, q DueQuery) ([]Delivery, error)
	Record(ctx context.Context, r Result) error
}

// DueQuery is what Store.Due is asked.
type DueQuery struct {
	Now           time.Time
	Lease         time.Duration
	Limit         int
	SkipEndpoints []string // endpoint ids; at most 4×Config.Concurrency of them
	SkipAccounts  []string // account ids (Endpoint.Account, never empty); at most 2×Config.Concurrency
}

// MaxURL bounds an endpoint URL.
const MaxURL = 2048

// CheckURL validates an endpoint URL for the API layer: absolute http or https with a host, no user
// info (a password in a URL ends up in logs), at most MaxURL bytes.
func CheckURL(raw string) error {
	if len(raw) > MaxURL {
		return fmt.Errorf("longer than %d bytes", MaxURL)
	}
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("not a URL")
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("scheme must be http or https")
	}
	if u.Host == "" || u.Hostname() == "" {
		return fmt.Errorf("no host")
	}
	if u.User != nil {
		return fmt.Errorf("must not carry user info")
	}
	if u.Fragment != "" {
		return fmt.Errorf("must not carry a fragment")
	}
	return nil
}

// CheckPublicHost refuses, for the API layer, an endpoint URL whose host is internal on its face:
// localhost (and its subdomains) or an IP address that is not public. Deliveries to it would all be
// refused by the dispatcher's guard, so the customer is told now, not by endpoints that never get an
// event. A name is left to the guard, which checks what it resolves to at each delivery.
func CheckPublicHost(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("not a URL")
	}
	host := u.Hostname()
	// As the HTTP client reads it before dialling (full-width letters and digits, an ideographic
	// full stop): ｌｏｃａｌｈｏｓｔ reaches localhost.
	if a, err := idna.Lookup.ToASCII(host); err == nil {
		host = a
	}
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return fmt.Errorf("host %s is this machine: deliveries go to public addresses only", host)
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		ip, err = numericIPv4(host)
	}
	if err == nil && !public(ip) {
		return fmt.Errorf("host %s is not a public address: deliveries go to public addresses only", ip)
	}
	return nil
}

// numericIPv4 reads host as inet_aton does, which a C resolver applies before any DNS: one to four
// parts, each decimal, octal (a leading 0) or hex (0x), the last filling the bytes left, so
// 2130706433, 0x7f.1 and 127.1 are all 127.0.0.1. netip reads only the dotted-decimal form.
func numericIPv4(host string) (netip.Addr, error) {
	parts := strings.Split(host, ".")
	if len(parts) > 4 {
		return netip.Addr{}, fmt.Errorf("not an address")
	}
	var v uint64
	for i, part := range parts {
		base := 10
		switch {
		case strings.HasPrefix(part, "0x"):
			base, part = 16, part[2:]
		case len(part) > 1 && part[0] == '0':
			base, part = 8, part[1:]
		}
		n, err := strconv.ParseUint(part, base, 32)
		if err != nil {
			return netip.Addr{}, fmt.Errorf("not an address")
		}
		bits := 8
		if i == len(parts)-1 {
			bits = 8 * (4 - i)
		}
		if n >= 1<<bits {
			return netip.Addr{}, fmt.Errorf("not an address")
		}
		v = v<<bits | n
	}
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}), nil
}
