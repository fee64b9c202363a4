package testenv

import (
	"context"
	"database/sql"
	"testing"
	"time"
)

// TestPostgresKillRestart: Kill takes the postmaster and its backends down at once (a client's
// connection breaks, no process of the server is left), and Restart brings the server back on the
// same URL with what was committed before the crash and nothing of what was not (crash recovery).
func TestPostgresKillRestart(t *testing.T) {
	pg := StartPostgresServer(t)
	db, err := sql.Open("pgx", pg.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := t.Context()
	if _, err := db.ExecContext(ctx, `CREATE TABLE t (v INTEGER PRIMARY KEY)`); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, `INSERT INTO t VALUES (1)`); err != nil {
		t.Fatal(err)
	}
	open, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := open.ExecContext(ctx, `INSERT INTO t VALUES (2)`); err != nil {
		t.Fatal(err)
	}
	pm, _ := readProcStat(pg.srv.Process.Pid)
	backends, err := childrenOf(pm.pid)
	if err != nil || len(backends) < 2 {
		t.Fatalf("before the kill: backends %v (%v), want at least the client's and the checkpointer", backends, err)
	}

	pg.Kill(t)
	for _, p := range append(backends, pm) {
		if p.alive() {
			t.Fatalf("after Kill: process %d of the server still running", p.pid)
		}
	}
	if err := open.Commit(); err == nil {
		t.Fatal("a transaction of a killed server committed")
	}
	cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	err = db.PingContext(cctx)
	cancel()
	if err == nil {
		t.Fatal("a killed server answered a ping")
	}

	pg.Restart(t)
	var n, v int
	if err := db.QueryRowContext(ctx, `SELECT COUNT(*), MAX(v) FROM t`).Scan(&n, &v); err != nil {
		t.Fatalf("after Restart: %v", err)
	}
	if n != 1 || v != 1 {
		t.Fatalf("after Restart: %d rows, max %d; want the committed row 1 alone", n, v)
	}

	// Twice over: a restarted server is killed and restarted like the first.
	pg.Kill(t)
	pg.Restart(t)
	if _, err := db.ExecContext(ctx, `INSERT INTO t VALUES (3)`); err != nil {
		t.Fatalf("after a second restart: %v", err)
	}
}
