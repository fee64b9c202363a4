package cli

import (
	"bytes"
	"testing"

	matchingv1 "github.com/bourse-dev/bourse/pkg/gen/bourse/matching/v1"
)

// protojson adds a space at random in some builds; the CLI's JSON must not depend on the build.
func TestJSONOutputHasOneLayout(t *testing.T) {
	msg := &matchingv1.Order{OrderId: 7, Symbol: "ETH-USD", Price: "3000.05"}
	indented, err := marshalJSON(msg, true)
	if err != nil {
		t.Fatal(err)
	}
	want := "{\n  \"order_id\": \"7\",\n  \"symbol\": \"ETH-USD\",\n  \"price\": \"3000.05\"\n}"
	if string(indented) != want {
		t.Errorf("indented JSON:\n%s\nwant:\n%s", indented, want)
	}
	line, err := marshalJSON(msg, false)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"order_id":"7","symbol":"ETH-USD","price":"3000.05"}`; string(line) != want {
		t.Errorf("one-line JSON: %s, want %s", line, want)
	}
	if bytes.Contains(line, []byte("\n")) {
		t.Errorf("one-line JSON spans lines: %q", line)
	}
}
