package store

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"slices"

	"github.com/bourse-dev/bourse/pkg/sqldb"
	"github.com/bourse-dev/bourse/services/payment/internal/domain"
	"github.com/bourse-dev/bourse/services/payment/internal/idempotency"
)

// laneStmts are the set statements of the lanes, in the store's dialect.
type laneStmts struct {
	claimKeys, insPayments, insAttempts, insEvents, endpoints, insDeliveries   *setStmt
	updAttempts, updPayments, insLedgerTx, insEntries, insOutbox, completeKeys *setStmt
}

func newLaneStmts(d sqldb.Dialect) *laneStmts {
	text := func(names ...string) []col {
		cs := make([]col, len(names))
		for i, n := range names {
			cs[i] = col{n, "TEXT"}
		}
		return cs
	}
	big := func(names ...string) []col {
		cs := text(names...)
		for i := range cs {
			cs[i].typ = "BIGINT"
		}
		return cs
	}
	cat := func(parts ...[]col) []col { return slices.Concat(parts...) }
	eventsBody := `INSERT INTO events (id, type, account_id, object_id, data, created_at)
		SELECT id, type, account_id, object_id, data, created_at FROM v WHERE id IS NOT NULL`
	if d == sqldb.Postgres {
		// As AddEvent: the event's place in the log (see ListEvents).
		eventsBody = `INSERT INTO events (id, type, account_id, object_id, data, created_at, xid)
			SELECT id, type, account_id, object_id, data, created_at,
				GREATEST(pg_current_xact_id(), (SELECT xid FROM events ORDER BY xid DESC LIMIT 1)) FROM v WHERE id IS NOT NULL`
	}
	done, inFlight := string(idempotency.Done), string(idempotency.InFlight)
	return &laneStmts{
		// A lane claim is of a new deposit (freshDeposit): what every such row has in common is
		// written as literals, not bound once a row (binding was a fifth of the lane's statements).
		claimKeys: newSetStmt(cat(text("caller", "idem_key", "method", "fingerprint", "object_id"), big("created_at")),
			`INSERT INTO idempotency (caller, idem_key, method, fingerprint, state, object_id, created_at)
			SELECT caller, idem_key, method, fingerprint, '`+inFlight+`', object_id, created_at FROM v WHERE caller IS NOT NULL
			ON CONFLICT (caller, idem_key) DO NOTHING RETURNING object_id`),
		insPayments: newSetStmt(cat(text("id", "caller", "account_id"), big("amount"), text("currency", "method", "capture_method", "metadata"),
			big("created_at")),
			`INSERT INTO payments (`+paymentCols+`)
			SELECT id, caller, account_id, amount, currency, method, capture_method, '`+string(domain.PaymentProcessing)+`', 0, 0,
				0, '', '', 0, metadata, 0, created_at, created_at FROM v WHERE id IS NOT NULL`),
		insAttempts: newSetStmt(cat(text("id", "payment_id", "processor"), big("next_lookup_at", "created_at")),
			`INSERT INTO attempts (`+attemptCols+`)
			SELECT id, payment_id, processor, '`+string(domain.AttemptPending)+`', '`+string(domain.OpAuthorize)+`', '', '', 0,
				next_lookup_at, created_at, created_at FROM v WHERE id IS NOT NULL`),
		insEvents: newSetStmt(cat(text("id", "type", "account_id", "object_id", "data"), big("created_at")), eventsBody),
		endpoints: newSetStmt(text("account"),
			`SELECT w.id, w.account_id, w.event_types FROM webhook_endpoints w JOIN v ON w.account_id = v.account WHERE w.deleted = 0`),
		insDeliveries: newSetStmt(cat(text("id", "event_id", "endpoint_id"), big("next_at", "created_at")),
			`INSERT INTO webhook_deliveries (id, event_id, endpoint_id, next_at, created_at)
			SELECT id, event_id, endpoint_id, next_at, created_at FROM v WHERE id IS NOT NULL`),
		updAttempts: newSetStmt(cat(text("id", "status", "pending_op", "processor_ref", "decline_code"),
			big("lookups", "next_lookup_at", "updated_at"), text("from_status", "from_op")),
			// A verdict leaves lookups and next_lookup_at as they were; a janitor that rescheduled the
			// attempt meanwhile changed them, and the general path, which reads the row, keeps its
			// values: the verdict is for it then.
			`UPDATE attempts SET status = v.status, pending_op = v.pending_op, processor_ref = v.processor_ref,
				decline_code = v.decline_code, updated_at = v.updated_at
			FROM v WHERE attempts.id = v.id AND attempts.status = v.from_status AND attempts.pending_op = v.from_op
				AND attempts.lookups = v.lookups AND attempts.next_lookup_at = v.next_lookup_at
			RETURNING attempts.id`),
		updPayments: newSetStmt(cat(text("id", "status"), big("captured"), text("decline_reason", "decline_code"),
			[]col{{"fraud_score", "DOUBLE PRECISION"}}, big("updated_at"), text("from_status")),
			`UPDATE payments SET status = v.status, captured = v.captured, decline_reason = v.decline_reason,
				decline_code = v.decline_code, fraud_score = v.fraud_score, updated_at = v.updated_at
			FROM v WHERE payments.id = v.id AND payments.status = v.from_status
			RETURNING payments.id`),
		insLedgerTx: newSetStmt(cat(text("kind", "ref"), big("created_at")),
			`INSERT INTO ledger_transactions (kind, ref, created_at) SELECT kind, ref, created_at FROM v WHERE kind IS NOT NULL
			RETURNING id, kind, ref`),
		insEntries: newSetStmt(cat(big("tx_id"), text("account", "currency"), big("amount")),
			`INSERT INTO ledger_entries (tx_id, account, currency, amount) SELECT tx_id, account, currency, amount FROM v WHERE tx_id IS NOT NULL`),
		insOutbox: newSetStmt(cat(text("kind", "ref", "payload"), big("next_at", "created_at")),
			`INSERT INTO outbox (kind, ref, payload, next_at, created_at) SELECT kind, ref, payload, next_at, created_at FROM v WHERE kind IS NOT NULL`),
		// By the primary key as well as object_id: the janitor's completion by object_id alone may
		// find more than the request's own record, which is the only one this may complete.
		completeKeys: newSetStmt(text("caller", "idem_key", "object_id", "method", "response"),
			`UPDATE idempotency SET state = '`+done+`', response = v.response
			FROM v WHERE idempotency.caller = v.caller AND idempotency.idem_key = v.idem_key
				AND idempotency.object_id = v.object_id AND idempotency.method = v.method AND idempotency.state = '`+inFlight+`'`),
	}
}

// laneWrite is one lane batch's transaction.
type laneWrite struct {
	ctx    context.Context
	s      *Store
	q      *sqldb.TxStmts
	events *setArgs
	// accounts whose events this batch writes, for their webhook deliveries; eventsOf lists them.
	eventsOf map[string][]laneEvent
}

type laneEvent struct {
	id, typ string
	at      int64
}

// writeLane writes a batch of claims and verdicts. A verdict never depends on a claim of its own
// batch: its request called the processor only after its claim had committed.
func (s *Store) writeLane(ctx context.Context, tx *sql.Tx, items []laneItem) error {
	w := &laneWrite{ctx: ctx, s: s, q: s.stmts.In(tx), events: s.laneSQL.insEvents.args(len(items)), eventsOf: map[string][]laneEvent{}}
	var claims, verdicts []laneItem
	for _, it := range items {
		*it.done = false
		if it.claim != nil {
			claims = append(claims, it)
		} else {
			verdicts = append(verdicts, it)
		}
	}
	if len(claims) > 0 {
		if err := w.claims(claims); err != nil {
			return err
		}
	}
	if len(verdicts) > 0 {
		if err := w.verdicts(verdicts); err != nil {
			return err
		}
	}
	return w.writeEvents()
}

func (w *laneWrite) exec(a *setArgs) error {
	if a.rows() == 0 {
		return nil
	}
	return a.each(func(q string, args []any) error {
		_, err := w.q.Exec(w.ctx, q, args...)
		return err
	})
}

// returning runs a's statements and collects the first column of what they return.
func (w *laneWrite) returning(a *setArgs, scan func(*sql.Rows) error) error {
	if a.rows() == 0 {
		return nil
	}
	return a.each(func(q string, args []any) error {
		rows, err := w.q.Query(w.ctx, q, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			if err := scan(rows); err != nil {
				return err
			}
		}
		return rows.Err()
	})
}

// returnedIDs runs a's statements, which return one id a row, and collects the ids.
func (w *laneWrite) returnedIDs(a *setArgs) (map[string]bool, error) {
	ids := make(map[string]bool, a.rows())
	err := w.returning(a, func(r *sql.Rows) error {
		var id string
		err := r.Scan(&id)
		ids[id] = true
		return err
	})
	return ids, err
}

func (w *laneWrite) addEvent(e EventRow, at int64) {
	w.events.add(e.ID, e.Type, e.AccountID, e.ObjectID, string(e.Data), at)
	w.eventsOf[e.AccountID] = append(w.eventsOf[e.AccountID], laneEvent{e.ID, e.Type, at})
}

// claims inserts the keys that have no record, then the payments, attempts and events of those.
func (w *laneWrite) claims(items []laneItem) error {
	st := w.s.laneSQL
	// Keys in one order in every lane and replica: two batches inserting the same keys wait for
	// each other in that order, never in a cycle.
	sorted := slices.SortedFunc(slices.Values(items), func(a, b laneItem) int {
		return cmp.Or(cmp.Compare(a.claim.Key.Caller, b.claim.Key.Caller), cmp.Compare(a.claim.Key.Key, b.claim.Key.Key))
	})
	keys := st.claimKeys.args(len(items))
	for i, it := range sorted {
		k := it.claim.Key
		if i > 0 && sorted[i-1].claim.Key.Caller == k.Caller && sorted[i-1].claim.Key.Key == k.Key {
			continue // the same key twice in one batch: the first claims it, the other reads its record
		}
		keys.add(k.Caller, k.Key, k.Method, k.Fingerprint, k.ObjectID, nanos(it.claim.At))
	}
	claimed, err := w.returnedIDs(keys)
	if err != nil {
		return err
	}
	pays, atts := st.insPayments.args(len(claimed)), st.insAttempts.args(len(claimed))
	for _, it := range items {
		d := it.claim
		p := d.Payment
		if !claimed[p.ID] { // ClaimDeposit refused a key naming another payment
			continue
		}
		*it.done = true
		at := nanos(d.At)
		md := "{}"
		if len(p.Metadata) > 0 {
			md = jsonText(p.Metadata)
		}
		pays.add(p.ID, p.Caller, p.AccountID, p.Amount.Amount, p.Amount.Currency, string(p.Method), string(p.CaptureMethod), md, at)
		if a := d.Attempt; a != nil {
			atts.add(a.ID, a.PaymentID, a.Processor, nanos(a.NextLookupAt), at)
		}
		w.addEvent(d.Event, at)
	}
	if err := w.exec(pays); err != nil {
		return err
	}
	return w.exec(atts)
}

// verdicts compare-and-sets the attempts, then for those that held the payments (which must hold
// too), and writes what they cause.
func (w *laneWrite) verdicts(items []laneItem) error {
	st := w.s.laneSQL
	upd := st.updAttempts.args(len(items))
	// One verdict per attempt: a second one in the same batch would pass the same compare-and-set.
	// The first is tried; the others are not applied and leave their callers to the general path.
	first := make(map[string]*DepositVerdict, len(items))
	for _, it := range items {
		v := it.verdict
		a := v.Attempt
		if _, ok := first[a.ID]; ok {
			continue
		}
		first[a.ID] = v
		upd.add(a.ID, string(a.Status), string(a.PendingOp), a.ProcessorRef, a.DeclineCode, a.Lookups, nanos(a.NextLookupAt), nanos(v.At),
			string(v.AttemptFrom), string(v.AttemptFromOp))
	}
	held, err := w.returnedIDs(upd)
	if err != nil {
		return err
	}
	applied := make(map[*DepositVerdict]bool, len(held))
	for id := range held {
		applied[first[id]] = true
	}
	if len(applied) == 0 {
		return nil
	}
	pays := st.updPayments.args(len(applied))
	for _, it := range items {
		if v := it.verdict; applied[v] {
			p := v.Payment
			pays.add(p.ID, string(p.Status), p.Captured, string(p.DeclineReason), p.DeclineCode, p.FraudScore, nanos(v.At), string(v.PaymentFrom))
		}
	}
	moved, err := w.returnedIDs(pays)
	if err != nil {
		return err
	}
	if len(moved) != len(applied) {
		return errLaneMismatch
	}
	ltx, box, keys := st.insLedgerTx.args(len(applied)), st.insOutbox.args(len(applied)), st.completeKeys.args(len(applied))
	for _, it := range items {
		v := it.verdict
		if !applied[v] {
			continue
		}
		*it.done = true
		at := nanos(v.At)
		if v.Ledger != nil {
			ltx.add(v.Ledger.Kind, v.Ledger.Ref, at)
		}
		if o := v.Outbox; o != nil {
			box.add(o.Kind, o.Ref, string(o.Payload), at, at)
		}
		w.addEvent(v.Event, at)
		if v.Method != "" {
			keys.add(v.Caller, v.Key, v.Payment.ID, v.Method, string(v.Result))
		}
	}
	type kindRef struct{ kind, ref string }
	txIDs := map[kindRef]int64{}
	if err := w.returning(ltx, func(r *sql.Rows) error {
		var id int64
		var k kindRef
		err := r.Scan(&id, &k.kind, &k.ref)
		txIDs[k] = id
		return err
	}); err != nil {
		return err
	}
	entries := st.insEntries.args(2 * len(txIDs))
	deltas := balanceDeltas{}
	for _, it := range items {
		v := it.verdict
		if !applied[v] || v.Ledger == nil {
			continue
		}
		id, ok := txIDs[kindRef{v.Ledger.Kind, v.Ledger.Ref}]
		if !ok {
			return errLaneMismatch
		}
		for _, e := range v.Ledger.Entries {
			entries.add(id, e.Account, e.Currency, e.Amount)
		}
		deltas.add(v.Ledger.Entries...)
	}
	if err := w.exec(entries); err != nil {
		return err
	}
	if err := w.exec(box); err != nil {
		return err
	}
	if err := w.exec(keys); err != nil {
		return err
	}
	// The batch's entries added to the balances, per (account, currency), in one shard for the
	// whole batch and last, so the batch holds the hot rows only for its commit (balances.go).
	return w.exec(deltas.args(w.s.pickShard()))
}

// writeEvents inserts the batch's events and their webhook deliveries (as addDeliveries does for
// one event: to every live endpoint of the account that takes the event's type).
func (w *laneWrite) writeEvents() error {
	if err := w.exec(w.events); err != nil || len(w.eventsOf) == 0 {
		return err
	}
	st := w.s.laneSQL
	accts := st.endpoints.args(len(w.eventsOf))
	for a := range w.eventsOf {
		accts.add(a)
	}
	dels := st.insDeliveries.args(0)
	if err := w.returning(accts, func(r *sql.Rows) error {
		var id, account, types string
		if err := r.Scan(&id, &account, &types); err != nil {
			return err
		}
		var ts []string
		_ = json.Unmarshal([]byte(types), &ts)
		for _, e := range w.eventsOf[account] {
			if len(ts) == 0 || slices.Contains(ts, e.typ) {
				dels.add(e.id+":"+id, e.id, id, e.at, e.at)
			}
		}
		return nil
	}); err != nil {
		return err
	}
	return w.exec(dels)
}
