package store

import (
	"context"
	"fmt"
	"reflect"
	"testing"
)

// rawRow is the row of table whose column key is id, each column as the driver hands it back
// (its Go type shows SQLite's storage class: int64, float64, string), rendered "%T:%v".
func rawRow(t *testing.T, s *Store, table, key, id string) map[string]string {
	t.Helper()
	rows, err := s.query(context.Background(), `SELECT * FROM `+table+` WHERE `+key+` = ?`, id)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		t.Fatal(err)
	}
	if !rows.Next() {
		t.Fatalf("%s %s: no row", table, id)
	}
	vals := make([]any, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	if err := rows.Scan(ptrs...); err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for i, c := range cols {
		v := vals[i]
		if b, ok := v.([]byte); ok {
			v = "bytes:" + string(b)
		}
		out[c] = fmt.Sprintf("%T:%v", v, v)
	}
	if rows.Next() {
		t.Fatalf("%s %s: more than one row", table, id)
	}
	return out
}

// The lane's claim writes its constants as SQL literals; the rows it writes are, column for column
// and type for type (SQLite's storage class included), those the general path writes for the same
// deposit: the payment, its attempt and the key's record, all but the columns that name the request
// (ids, key) or its time.
func TestLaneClaimRowsAsGeneralPathColumnByColumn(t *testing.T) {
	onBothWithGeneral(t, func(t *testing.T, s, g *Store) {
		ctx := context.Background()
		viaLane := laneDeposit(s, "raw", "lane", 4200)
		viaGeneral := laneDeposit(g, "raw", "general", 4200)
		viaGeneral.Payment.Metadata, viaGeneral.Key.Fingerprint = viaLane.Payment.Metadata, viaLane.Key.Fingerprint
		if ok, err := s.ClaimDeposit(ctx, viaLane); !ok || err != nil {
			t.Fatalf("lane claim: %v %v", ok, err)
		}
		if !claimGeneral(t, g, viaGeneral) {
			t.Fatal("general claim refused")
		}
		same := func(what string, lane, general map[string]string, own ...string) {
			t.Helper()
			for _, c := range own {
				if _, ok := lane[c]; !ok {
					t.Fatalf("%s: no column %s", what, c)
				}
				if lt, gt := typeOf(lane[c]), typeOf(general[c]); lt != gt {
					t.Fatalf("%s.%s: lane wrote a %s, the general path a %s", what, c, lt, gt)
				}
				delete(lane, c)
				delete(general, c)
			}
			if !reflect.DeepEqual(lane, general) {
				t.Fatalf("%s rows differ:\nlane    %v\ngeneral %v", what, lane, general)
			}
		}
		lp, gp := rawRow(t, s, "payments", "id", viaLane.Payment.ID), rawRow(t, s, "payments", "id", viaGeneral.Payment.ID)
		if lp["created_at"] != lp["updated_at"] {
			t.Fatalf("lane payment created %s, updated %s", lp["created_at"], lp["updated_at"])
		}
		same("payments", lp, gp, "id", "created_at", "updated_at")
		la, ga := rawRow(t, s, "attempts", "id", viaLane.Attempt.ID), rawRow(t, s, "attempts", "id", viaGeneral.Attempt.ID)
		if la["created_at"] != la["updated_at"] {
			t.Fatalf("lane attempt created %s, updated %s", la["created_at"], la["updated_at"])
		}
		same("attempts", la, ga, "id", "payment_id", "next_lookup_at", "created_at", "updated_at")
		lk, gk := rawRow(t, s, "idempotency", "object_id", viaLane.Payment.ID), rawRow(t, s, "idempotency", "object_id", viaGeneral.Payment.ID)
		same("idempotency", lk, gk, "idem_key", "object_id", "created_at")
	})
}

func typeOf(rendered string) string {
	for i := range rendered {
		if rendered[i] == ':' {
			return rendered[:i]
		}
	}
	return rendered
}
