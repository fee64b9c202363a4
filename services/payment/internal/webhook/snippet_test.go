package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"math"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The receiver's verification snippet, exactly as README.md shows it (TestReadmeSnippet keeps the
// two the same), so the tests below prove that what customers copy works.

// snippet begin
// VerifyBourseSignature reports whether a webhook request is authentic: header is the
// Bourse-Signature value, body the raw request body, secret the endpoint's signing secret.
func VerifyBourseSignature(header string, body []byte, secret string, now time.Time) bool {
	var ts string
	var sigs []string
	for _, part := range strings.Split(header, ",") {
		k, v, _ := strings.Cut(part, "=")
		switch k {
		case "t":
			ts = v
		case "v1":
			sigs = append(sigs, v)
		}
	}
	t, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || math.Abs(now.Sub(time.Unix(t, 0)).Seconds()) > 300 {
		return false // malformed, or too old (or too far ahead) to be anything but a replay
	}
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(ts + "." + string(body)))
	want := hex.EncodeToString(mac.Sum(nil))
	for _, s := range sigs {
		if hmac.Equal([]byte(s), []byte(want)) {
			return true
		}
	}
	return false
}

// snippet end

func TestReadmeSnippet(t *testing.T) {
	src, err := os.ReadFile("snippet_test.go")
	if err != nil {
		t.Fatal(err)
	}
	_, code, _ := strings.Cut(string(src), "// snippet begin\n")
	code, _, _ = strings.Cut(code, "\n// snippet end")
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(readme), "```go\n"+strings.TrimSpace(code)+"\n```") {
		t.Fatalf("README.md does not show the snippet the tests verify:\n%s", code)
	}
}
