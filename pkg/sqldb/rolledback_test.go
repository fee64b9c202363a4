package sqldb

import (
	"database/sql"
	"sync"
	"testing"
)

// PostgreSQL's own answers, from a real server: a deadlock it breaks by rolling one transaction
// back is RolledBack (retryable: nothing was written), and so is a serialization failure; a
// statement that outlived statement_timeout is Unavailable. None of them is a verdict on the
// request, and a unique violation, which is one, is neither.
func TestPostgresConflictsAreRetryable(t *testing.T) {
	ctx, db := rawPostgres(t,
		`CREATE TABLE t (id INT PRIMARY KEY, v INT)`,
		`INSERT INTO t VALUES (1, 0), (2, 0)`,
		`ALTER DATABASE bourse_test SET deadlock_timeout = '50ms'`)

	t.Run("deadlock", func(t *testing.T) {
		// Two transactions lock the rows in opposite orders; PostgreSQL rolls one back.
		var wg, locked sync.WaitGroup
		errsOf := make([]error, 2)
		locked.Add(2)
		for i, order := range [][2]int{{1, 2}, {2, 1}} {
			wg.Go(func() {
				tx, err := db.BeginTx(ctx, nil)
				if err != nil {
					errsOf[i] = err
					locked.Done()
					return
				}
				defer tx.Rollback() //nolint:errcheck // the rolled-back one has nothing to roll back
				_, err = tx.ExecContext(ctx, `UPDATE t SET v = v + 1 WHERE id = $1`, order[0])
				locked.Done()
				if err == nil {
					locked.Wait() // each holds its first row: the second updates cross
					_, err = tx.ExecContext(ctx, `UPDATE t SET v = v + 1 WHERE id = $1`, order[1])
				}
				if err == nil {
					err = tx.Commit()
				}
				errsOf[i] = err
			})
		}
		wg.Wait()
		failed := 0
		for _, err := range errsOf {
			if err == nil {
				continue
			}
			failed++
			if !RolledBack(err) || Unavailable(err) {
				t.Fatalf("%v: RolledBack %v, Unavailable %v; want a retryable conflict", err, RolledBack(err), Unavailable(err))
			}
		}
		if failed != 1 {
			t.Fatalf("want exactly one transaction rolled back, got %v", errsOf)
		}
	})

	t.Run("serialization failure", func(t *testing.T) {
		a, err := db.BeginTx(ctx, &sql.TxOptions{Isolation: sql.LevelSerializable})
		if err != nil {
			t.Fatal(err)
		}
		defer a.Rollback() //nolint:errcheck
		var v int
		if err := a.QueryRowContext(ctx, `SELECT v FROM t WHERE id = 1`).Scan(&v); err != nil {
			t.Fatal(err)
		}
		execAll(t, ctx, db, `UPDATE t SET v = v + 1 WHERE id = 1`) // commits after a's snapshot
		_, err = a.ExecContext(ctx, `UPDATE t SET v = v + 1 WHERE id = 1`)
		if err == nil || !RolledBack(err) {
			t.Fatalf("%v: RolledBack false, want true", err)
		}
	})

	t.Run("statement timeout", func(t *testing.T) {
		conn, err := db.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if _, err := conn.ExecContext(ctx, `SET statement_timeout = '50ms'`); err != nil {
			t.Fatal(err)
		}
		_, err = conn.ExecContext(ctx, `SELECT pg_sleep(5)`)
		if err == nil || !Unavailable(err) || RolledBack(err) {
			t.Fatalf("%v: Unavailable %v, RolledBack %v; want Unavailable only", err, Unavailable(err), RolledBack(err))
		}
	})

	t.Run("unique violation", func(t *testing.T) {
		_, err := db.ExecContext(ctx, `INSERT INTO t VALUES (1, 0)`)
		if err == nil || Unavailable(err) || RolledBack(err) {
			t.Fatalf("%v: Unavailable %v, RolledBack %v; want neither (a refusal)", err, Unavailable(err), RolledBack(err))
		}
	})
}
