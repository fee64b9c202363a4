package coordinator

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/bourse-dev/bourse/pkg/sqldb"
)

// Record is the durable part of a job: what a restarted coordinator needs to carry on.
type Record struct {
	ID             string
	Spec           Spec
	Status         Status
	Reason         string
	Step           int64 // steps applied, as of the latest commit recorded
	TotalSteps     int64
	Generation     uint64 // the latest generation formed; a restart continues above it
	CheckpointStep int64
	CheckpointPath string
	LastLoss       float32
	LastAccuracy   float64
	Created        time.Time
	Updated        time.Time
	// The export of the final model (Spec.ExportModel): the version written and loaded, or why not.
	ExportedVersion int64
	ExportError     string
}

// Store keeps job records in SQLite (synchronous=FULL: a write is on disk when it returns).
type Store struct {
	db *sqldb.DB
}

const schema = `CREATE TABLE IF NOT EXISTS jobs (
	id TEXT PRIMARY KEY,
	spec TEXT NOT NULL,
	status INTEGER NOT NULL,
	reason TEXT NOT NULL,
	step INTEGER NOT NULL,
	total_steps INTEGER NOT NULL,
	generation INTEGER NOT NULL,
	checkpoint_step INTEGER NOT NULL,
	checkpoint_path TEXT NOT NULL,
	last_loss REAL NOT NULL,
	last_accuracy REAL NOT NULL,
	created_ns INTEGER NOT NULL,
	updated_ns INTEGER NOT NULL,
	exported_version INTEGER NOT NULL DEFAULT 0,
	export_error TEXT NOT NULL DEFAULT ''
)`

// OpenStore opens (creating if needed) the jobs database at path.
func OpenStore(ctx context.Context, path string) (*Store, error) {
	db, err := sqldb.Open(ctx, path)
	if err != nil {
		return nil, err
	}
	if _, err := db.ExecContext(ctx, schema); err != nil {
		db.Close()
		return nil, fmt.Errorf("create schema: %w", err)
	}
	// Databases from before the export columns get them (an existing column is an error to ignore).
	for _, col := range []string{"exported_version INTEGER NOT NULL DEFAULT 0", "export_error TEXT NOT NULL DEFAULT ''"} {
		_, _ = db.ExecContext(ctx, "ALTER TABLE jobs ADD COLUMN "+col)
	}
	return &Store{db: db}, nil
}

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

// Save inserts or replaces a record.
func (s *Store) Save(ctx context.Context, r Record) error {
	spec, err := json.Marshal(r.Spec)
	if err != nil {
		return err
	}
	_, err = s.db.ExecContext(ctx, `INSERT INTO jobs (id, spec, status, reason, step, total_steps, generation,
		checkpoint_step, checkpoint_path, last_loss, last_accuracy, created_ns, updated_ns, exported_version, export_error)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET spec = excluded.spec, status = excluded.status, reason = excluded.reason,
		step = excluded.step, total_steps = excluded.total_steps, generation = excluded.generation,
		checkpoint_step = excluded.checkpoint_step, checkpoint_path = excluded.checkpoint_path,
		last_loss = excluded.last_loss, last_accuracy = excluded.last_accuracy, updated_ns = excluded.updated_ns,
		exported_version = excluded.exported_version, export_error = excluded.export_error`,
		r.ID, string(spec), int(r.Status), r.Reason, r.Step, r.TotalSteps, int64(r.Generation),
		r.CheckpointStep, r.CheckpointPath, float64(r.LastLoss), r.LastAccuracy, r.Created.UnixNano(), r.Updated.UnixNano(), r.ExportedVersion, r.ExportError)
	return err
}

// Load returns every record, oldest first.
func (s *Store) Load(ctx context.Context) ([]Record, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, spec, status, reason, step, total_steps, generation,
		checkpoint_step, checkpoint_path, last_loss, last_accuracy, created_ns, updated_ns, exported_version, export_error
		FROM jobs ORDER BY created_ns, id`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Record
	for rows.Next() {
		var r Record
		var spec string
		var status int
		var gen, created, updated int64
		var loss float64
		if err := rows.Scan(&r.ID, &spec, &status, &r.Reason, &r.Step, &r.TotalSteps, &gen, &r.CheckpointStep,
			&r.CheckpointPath, &loss, &r.LastAccuracy, &created, &updated, &r.ExportedVersion, &r.ExportError); err != nil {
			return nil, err
		}
		if err := json.Unmarshal([]byte(spec), &r.Spec); err != nil {
			return nil, fmt.Errorf("job %s: spec: %w", r.ID, err)
		}
		r.Status, r.Generation, r.LastLoss = Status(status), uint64(gen), float32(loss)
		r.Created, r.Updated = time.Unix(0, created), time.Unix(0, updated)
		out = append(out, r)
	}
	return out, rows.Err()
}
