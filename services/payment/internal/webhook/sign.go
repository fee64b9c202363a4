// Package webhook signs and delivers payment events to customers' HTTP endpoints, the way Stripe
// does: every request carries
//
//	Bourse-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>[,v1=...]
//
// with one v1 per active secret of the endpoint (several while a secret is being rotated), and the
// receiver checks one of them against its secret and refuses a timestamp more than 300 s away, so a
// captured request cannot be replayed later. README.md holds the receiver's verification snippet.
//
// The dispatcher retries each delivery with exponential backoff for up to 24 h (configurable) and
// records every attempt through Store, which the payment service's database implements.
package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strconv"
	"strings"
	"time"
)

// Header is the signature header's name.
const Header = "Bourse-Signature"

// DefaultTolerance is how far a signature's timestamp may be from the receiver's clock.
const DefaultTolerance = 300 * time.Second

// maxHeader bounds the header Verify parses: a few signatures fit many times over.
const maxHeader = 4096

// Errors of Verify. Receivers answer any of them with 400 and drop the request.
var (
	ErrNoHeader  = errors.New("webhook: no signature header")
	ErrBadHeader = errors.New("webhook: malformed signature header")
	ErrTimestamp = errors.New("webhook: timestamp outside the tolerance")
	ErrSignature = errors.New("webhook: no signature matches")
)

func mac(secret string, t int64, body []byte) []byte {
	h := hmac.New(sha256.New, []byte(secret))
	h.Write(strconv.AppendInt(nil, t, 10))
	h.Write([]byte{'.'})
	h.Write(body)
	return h.Sum(nil)
}

// Sign returns the header value for body sent at t, with one v1 per secret.
func Sign(body []byte, secrets []string, t time.Time) string {
	ts := t.Unix()
	var b strings.Builder
	b.WriteString("t=")
	b.WriteString(strconv.FormatInt(ts, 10))
	for _, s := range secrets {
		b.WriteString(",v1=")
		b.WriteString(hex.EncodeToString(mac(s, ts, body)))
	}
	return b.String()
}

// Verify checks a Bourse-Signature header against body: it must carry a timestamp within tolerance
// of now (either way; 0 means DefaultTolerance) and at least one v1 signature made with one of
// secrets. Elements other than t and v1 are ignored, so a later scheme can be added alongside.
func Verify(header string, body []byte, secrets []string, tolerance time.Duration, now time.Time) error {
	if header == "" {
		return ErrNoHeader
	}
	if len(header) > maxHeader {
		return ErrBadHeader
	}
	if tolerance <= 0 {
		tolerance = DefaultTolerance
	}
	var (
		ts    int64
		haveT bool
		sigs  [][]byte
	)
	for part := range strings.SplitSeq(header, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return ErrBadHeader
		}
		switch k {
		case "t":
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || haveT {
				return ErrBadHeader
			}
			ts, haveT = n, true
		case "v1":
			sig, err := hex.DecodeString(v)
			if err != nil || len(sig) != sha256.Size {
				continue // a malformed signature cannot match; another may
			}
			sigs = append(sigs, sig)
		}
	}
	if !haveT {
		return ErrBadHeader
	}
	if d := now.Sub(time.Unix(ts, 0)); d > tolerance || d < -tolerance {
		return ErrTimestamp
	}
	for _, s := range secrets {
		want := mac(s, ts, body)
		for _, sig := range sigs {
			if hmac.Equal(sig, want) {
				return nil
			}
		}
	}
	return ErrSignature
}
