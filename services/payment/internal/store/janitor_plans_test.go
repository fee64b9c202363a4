package store

import (
	"strings"
	"testing"
)

// The janitor's searches for open work read indexes of the open work only, in the order they list
// it: not every record in retention (stale keys) or every attempt ever made (due attempts), which
// each pass would otherwise scan. SQLite's plans; PostgreSQL plans by its statistics.
func TestJanitorSearchesReadOpenWorkIndexes(t *testing.T) {
	s := openStore(t, sqliteURL(t), Options{})
	for _, tc := range []struct {
		name, query, index string
		args               []any
	}{
		{"StaleKeys", staleKeysQuery, "idempotency_in_flight", []any{1, 0, "", "", 100}},
		{"DueAttempts", dueAttemptsQuery, "attempts_open", []any{1, 1, 100}},
	} {
		steps := sqlitePlan(t, s, tc.query, tc.args...)
		if len(steps) != 1 || !strings.Contains(steps[0], "USING INDEX "+tc.index) {
			t.Errorf("%s: plan %q, want one search of %s (no scan, no sort)", tc.name, steps, tc.index)
		}
	}
}
