package store

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/bourse-dev/bourse/pkg/sqldb"
)

// snapshotJob replaces the stored snapshot and prunes the events it covers, in one transaction that
// the committer runs after every event up to seq is committed.
type snapshotJob struct {
	seq  uint64
	data []byte
}

func (j *snapshotJob) write(ctx context.Context, db *sqldb.DB, tx *sql.Tx) error {
	if _, err := tx.ExecContext(ctx, `DELETE FROM risk_snapshots`); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, db.Rebind(`INSERT INTO risk_snapshots (seq, data) VALUES (?, ?)`), int64(j.seq), string(j.data)); err != nil {
		return err
	}
	_, err := tx.ExecContext(ctx, db.Rebind(`DELETE FROM risk_events WHERE seq <= ?`), int64(j.seq))
	return err
}

// WriteSnapshot stores data as the snapshot of the engine at event seq and prunes the events up to
// seq, once every event up to seq is committed. The caller must have taken data at seq (and not
// later): the engine's SnapshotTo says which seq it covers. A failure keeps the previous snapshot
// and the events; it does not stop the store.
func (s *Store) WriteSnapshot(ctx context.Context, seq uint64, data []byte) error {
	reply := make(chan error, 1)
	if err := s.commit.enqueue(ctx, job{snap: &snapshotJob{seq: seq, data: data}, reply: reply}); err != nil {
		return err
	}
	if err := <-reply; err != nil {
		return fmt.Errorf("write snapshot at event %d: %w", seq, err)
	}
	return nil
}

// LatestSnapshot returns the stored snapshot and the seq it covers; ok is false when there is none.
func (s *Store) LatestSnapshot(ctx context.Context) (seq uint64, data []byte, ok bool, err error) {
	var n int64
	var text string
	switch err := s.db.QueryRowContext(ctx, `SELECT seq, data FROM risk_snapshots ORDER BY seq DESC LIMIT 1`).Scan(&n, &text); {
	case err == sql.ErrNoRows:
		return 0, nil, false, nil
	case err != nil:
		return 0, nil, false, fmt.Errorf("read snapshot: %w", err)
	}
	return uint64(n), []byte(text), true, nil
}
