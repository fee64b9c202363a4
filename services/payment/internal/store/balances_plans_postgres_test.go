package store

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/bourse-dev/bourse/pkg/testenv"
)

// On PostgreSQL too, on its generic plans (a prepared statement's, made for any parameters) over an
// analyzed ledger of 50,000 transactions: what Open checks and what Balances reads scan neither
// ledger_entries nor ledger_transactions nor payments; the latest transactions' entries are read by
// ledger_entries_tx, their payments by the primary key.
func TestOpenChecksReadNoLedgerScanOnPostgres(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, testenv.StartPostgres(t))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	fillLedger(t, s, 50000)
	conn, err := s.db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for _, q := range []string{`ANALYZE`, `SET plan_cache_mode = force_generic_plan`} {
		if _, err := conn.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	want := map[string][]string{
		"latest transactions balance": {"ledger_entries_tx"},
		"latest captures":             {"ledger_transactions_pkey", "payments_pkey"},
		"latest payments":             {"payments_created"},
	}
	for i, q := range openAndBalancesQueries() {
		name := fmt.Sprint("open_check_", i)
		if _, err := conn.ExecContext(ctx, `PREPARE `+name+` AS `+s.db.Rebind(q.query)); err != nil {
			t.Fatalf("%s: %v", q.name, err)
		}
		var args []string
		for _, a := range q.args {
			if str, ok := a.(string); ok {
				a = "'" + str + "'"
			}
			args = append(args, fmt.Sprint(a))
		}
		exec := `EXPLAIN EXECUTE ` + name
		if len(args) > 0 {
			exec += "(" + strings.Join(args, ", ") + ")"
		}
		rows, err := conn.QueryContext(ctx, exec)
		if err != nil {
			t.Fatal(err)
		}
		var plan []string
		for rows.Next() {
			var line string
			if err := rows.Scan(&line); err != nil {
				t.Fatal(err)
			}
			plan = append(plan, line)
		}
		rows.Close()
		text := strings.Join(plan, "\n")
		for _, table := range []string{"ledger_entries", "ledger_transactions", "payments"} {
			if strings.Contains(text, "Seq Scan on "+table) {
				t.Errorf("%s: generic plan\n%s\nscans %s", q.name, text, table)
			}
		}
		for _, index := range want[q.name] {
			if !strings.Contains(text, " "+index+" ") && !strings.Contains(text, " "+index+"\n") && !strings.HasSuffix(text, " "+index) {
				t.Errorf("%s: generic plan\n%s\ndoes not read %s", q.name, text, index)
			}
		}
		if strings.HasPrefix(q.name, "Balances") && strings.Contains(text, "ledger_entries") {
			t.Errorf("%s reads ledger_entries:\n%s", q.name, text)
		}
	}
}
