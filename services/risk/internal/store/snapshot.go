package store

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"time"

	"github.com/bourse-dev/bourse/pkg/sqldb"
	"github.com/bourse-dev/bourse/services/risk/internal/engine"
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
	if err := s.commit.snapshot(ctx, &snapshotJob{seq: seq, data: data}); err != nil {
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

// Snapshot writes a snapshot of eng (see WriteSnapshot) and returns the seq it covers.
func (s *Store) Snapshot(ctx context.Context, eng *engine.Engine) (uint64, error) {
	seq, data, err := eng.Snapshot()
	if err != nil {
		return 0, err
	}
	return seq, s.WriteSnapshot(ctx, seq, data)
}

// Load rebuilds eng, a new engine, from the store: the latest snapshot, then the events after it.
// It returns how many events were replayed after the snapshot.
func (s *Store) Load(ctx context.Context, eng *engine.Engine) (replayed uint64, err error) {
	seq, data, ok, err := s.LatestSnapshot(ctx)
	if err != nil {
		return 0, err
	}
	if ok {
		if err := eng.LoadSnapshot(data); err != nil {
			return 0, fmt.Errorf("load snapshot at event %d: %w", seq, err)
		}
		if eng.LastSeq() != seq {
			return 0, fmt.Errorf("the snapshot stored at event %d holds event %d", seq, eng.LastSeq())
		}
	}
	if err := eng.Replay(s.Events(ctx, seq)); err != nil {
		return 0, fmt.Errorf("replay stored events: %w", err)
	}
	return eng.LastSeq() - seq, nil
}

// KeepSnapshots snapshots eng whenever every events were applied since the last snapshot (from is
// the seq of the one loaded at start), checking each poll. It returns the seq of the last snapshot
// when ctx ends or the store fails. A failed snapshot is logged and retried at the next poll.
func KeepSnapshots(ctx context.Context, s *Store, eng *engine.Engine, every, from uint64, poll time.Duration, log *slog.Logger) uint64 {
	last := from
	tick := time.NewTicker(poll)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return last
		case <-tick.C:
		}
		if s.Err() != nil {
			return last
		}
		if eng.LastSeq() < last+every {
			continue
		}
		start := time.Now()
		seq, err := s.Snapshot(ctx, eng)
		if err != nil {
			log.Error("snapshot", "err", err)
			continue
		}
		log.Info("snapshot written", "seq", seq, "elapsed", time.Since(start))
		last = seq
	}
}
