package store

import (
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
	s := openStore(t, testenv.StartPostgres(t), Options{})
	fillLedger(t, s, 50000)
	conn := postgresConn(t, s, `ANALYZE`, `SET plan_cache_mode = force_generic_plan`)
	want := map[string][]string{
		"latest transactions balance": {"ledger_entries_tx"},
		"latest captures":             {"ledger_transactions_pkey", "payments_pkey"},
		"latest payments":             {"payments_created"},
	}
	for i, q := range openAndBalancesQueries() {
		var args []string
		for _, a := range q.args {
			if str, ok := a.(string); ok {
				a = "'" + str + "'"
			}
			args = append(args, fmt.Sprint(a))
		}
		list := ""
		if len(args) > 0 {
			list = "(" + strings.Join(args, ", ") + ")"
		}
		text := strings.Join(genericPlan(t, s, conn, fmt.Sprint("open_check_", i), q.query, list), "\n")
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
