// Package sqldb opens a service's database — SQLite by default, PostgreSQL when the URL says so — with
// settings that make a committed transaction durable, and hides the few dialect differences the
// services meet (placeholders, upserts).
package sqldb

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"strings"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registers "pgx"
	_ "modernc.org/sqlite"             // registers "sqlite"
)

// Dialect names the SQL engine behind a DB.
type Dialect int

const (
	SQLite Dialect = iota
	Postgres
)

func (d Dialect) String() string {
	if d == Postgres {
		return "postgres"
	}
	return "sqlite"
}

// DB is a database handle that knows its dialect.
type DB struct {
	*sql.DB
	Dialect Dialect
}

// Open connects to url: "postgres://..." or "postgresql://..." for PostgreSQL, otherwise a SQLite
// file path (optionally "sqlite:" or "file:" prefixed). SQLite runs in WAL mode with
// synchronous=FULL so a commit is on disk before it returns.
func Open(ctx context.Context, url string) (*DB, error) {
	var db *DB
	switch {
	case strings.HasPrefix(url, "postgres://"), strings.HasPrefix(url, "postgresql://"):
		conn, err := sql.Open("pgx", url)
		if err != nil {
			return nil, err
		}
		conn.SetMaxOpenConns(16)
		// database/sql keeps 2 idle connections by default: under load the others would be closed
		// and dialled again for nearly every transaction.
		conn.SetMaxIdleConns(16)
		conn.SetConnMaxIdleTime(5 * time.Minute)
		db = &DB{DB: conn, Dialect: Postgres}
	default:
		path := strings.TrimPrefix(strings.TrimPrefix(url, "sqlite:"), "file:")
		if path == "" {
			return nil, fmt.Errorf("sqldb: empty database path")
		}
		dsn := "file:" + path + "?_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_pragma=busy_timeout(10000)&_pragma=foreign_keys(ON)&_txlock=immediate"
		conn, err := sql.Open("sqlite", dsn)
		if err != nil {
			return nil, err
		}
		// One writer at a time is SQLite's model; a single connection also keeps the pragmas.
		conn.SetMaxOpenConns(1)
		db = &DB{DB: conn, Dialect: SQLite}
	}
	pingCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := db.PingContext(pingCtx); err != nil {
		db.Close()
		return nil, fmt.Errorf("sqldb: %s: %w", db.Dialect, err)
	}
	return db, nil
}

// Rebind turns "?" placeholders into the dialect's form ($1, $2, ... for PostgreSQL).
func (db *DB) Rebind(query string) string {
	if db.Dialect != Postgres {
		return query
	}
	var b strings.Builder
	n := 0
	for _, r := range query {
		if r == '?' {
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// Migrate runs each statement once, in order, recording progress in schema_migrations.
func (db *DB) Migrate(ctx context.Context, statements []string) error {
	if _, err := db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY)`); err != nil {
		return fmt.Errorf("sqldb migrate: %w", err)
	}
	var applied int
	if err := db.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&applied); err != nil {
		return fmt.Errorf("sqldb migrate: %w", err)
	}
	for i := applied; i < len(statements); i++ {
		err := db.InTx(ctx, func(tx *sql.Tx) error {
			if _, err := tx.ExecContext(ctx, statements[i]); err != nil {
				return err
			}
			_, err := tx.ExecContext(ctx, db.Rebind(`INSERT INTO schema_migrations (version) VALUES (?)`), i+1)
			return err
		})
		if err != nil {
			return fmt.Errorf("sqldb migration %d: %w", i+1, err)
		}
	}
	return nil
}

// InTx runs fn in a transaction, committing if it returns nil.
func (db *DB) InTx(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	return tx.Commit()
}
