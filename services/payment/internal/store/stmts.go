package store

import "github.com/bourse-dev/bourse/pkg/sqldb"

// maxStmts bounds the statements prepared per connection handle: every fixed statement of the
// store, every shape of the lanes' set statements (14 sizes of a dozen) and room for the few shapes of
// the filtered lists; the rest run unprepared.
const maxStmts = 512

// newStmts prepares the statements run on db (nil: none, no handle). On SQLite that saves parsing
// each statement again on every execution, which was a third of the writer's time. PostgreSQL's
// driver (pgx) already prepares and caches statements per connection, so there nothing more is
// prepared.
func newStmts(db *sqldb.DB) *sqldb.Stmts {
	if db == nil {
		return nil
	}
	if db.Dialect == sqldb.Postgres {
		return sqldb.NewStmts(db, 0)
	}
	return sqldb.NewStmts(db, maxStmts)
}
