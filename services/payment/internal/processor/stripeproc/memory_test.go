package stripeproc

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bourse-dev/bourse/services/payment/internal/processor"
)

// The Key memory stays within its bound, forgetting the oldest first, and keeps an updated Key in
// its place.
func TestMemoryBounded(t *testing.T) {
	m := newMemory(3)
	for i := range 5 {
		m.put(processor.OpAuthorize, fmt.Sprint("k", i), fmt.Sprint("pi_", i))
	}
	if m.len() != 3 {
		t.Fatalf("holds %d ids, bound 3", m.len())
	}
	for i, want := range []bool{false, false, true, true, true} {
		if _, ok := m.get(processor.OpAuthorize, fmt.Sprint("k", i)); ok != want {
			t.Errorf("k%d remembered %v, want %v", i, ok, want)
		}
	}
	m.put(processor.OpAuthorize, "k4", "pi_new")
	if id, _ := m.get(processor.OpAuthorize, "k4"); id != "pi_new" || m.len() != 3 {
		t.Fatalf("update: k4 = %q, %d held", id, m.len())
	}
	if _, ok := m.get(processor.OpCapture, "k4"); ok {
		t.Fatal("a Key is remembered per operation")
	}
	m.put(processor.OpAuthorize, "", "pi_x")
	m.put(processor.OpAuthorize, "k9", "")
	if m.len() != 3 {
		t.Fatal("an empty key or id was remembered")
	}
}

// New refuses what would never work against Stripe.
func TestNewRefuses(t *testing.T) {
	for _, o := range []Options{
		{},
		{Key: "pk_test_publishable"},
		{Key: "sk_test_x", URL: "127.0.0.1:12111"},
	} {
		if _, err := New(o); err == nil {
			t.Errorf("New(%+v): no error", o)
		}
	}
	if _, err := New(Options{Key: "sk_test_x", URL: "http://127.0.0.1:12111/"}); err != nil {
		t.Fatal(err)
	}
}

// ReadKeyFile takes the first line of the file, and refuses a file that does not start with a
// secret key without repeating its content.
func TestReadKeyFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	key, err := ReadKeyFile(write("ok", "sk_test_abc\nsecond line\n"))
	if err != nil || key != "sk_test_abc" {
		t.Fatalf("ReadKeyFile = %q, %v", key, err)
	}
	_, err = ReadKeyFile(write("pk", "pk_live_secretish\n"))
	if err == nil || strings.Contains(err.Error(), "secretish") {
		t.Fatalf("publishable key file: %v", err)
	}
	if _, err := ReadKeyFile(write("big", "sk_"+strings.Repeat("x", maxKeyFile))); err == nil {
		t.Fatal("an oversized file was read as a key")
	}
	if _, err := ReadKeyFile(filepath.Join(dir, "absent")); err == nil {
		t.Fatal("a missing file was read")
	}
}

// A statement descriptor is cut to what Stripe takes rather than failing the payment.
func TestDescriptor(t *testing.T) {
	for in, want := range map[string]string{
		"BOURSE DEPOSIT":                "BOURSE DEPOSIT",
		"BOURSE DEPOSIT 12345678901234": "BOURSE DEPOSIT 1234567",
		`Bourse <"dépôt"> *1*`:          "Bourse dpt 1",
		"1234567":                       "",
		"":                              "",
		"  ab\x00c  ":                   "abc",
		"ééééééééééééééééééééééééééééééééé": "",
	} {
		if got := descriptor(in); got != want {
			t.Errorf("descriptor(%q) = %q, want %q", in, got, want)
		}
	}
}
