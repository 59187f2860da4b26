package postgres

import (
	"context"
	"embed"
	"fmt"
	"io/fs"

	"github.com/bookd/bookd/persistence"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// migrationFiles holds the schema, one file per step: NNNN_name.sql,
// numbered from 0001 without gaps. A released file is never edited; a change
// is a new file.
//
//go:embed migrations/*.sql
var migrationFiles embed.FS

// migrationLock is the key of the transaction-level advisory lock that
// every migration transaction takes first (the bytes of "bookdmig"). Nodes
// that start together on one database thus migrate one after the other: the
// second waits for the first's step, then finds it applied and skips it.
// Advisory locks are per database, so databases of one server do not wait
// for each other.
const migrationLock int64 = 0x626f6f6b646d6967

// migrate applies the migrations of fsys that the database has not applied
// yet, in order, each in its own transaction together with its
// schema_migrations row, so a failed step leaves no trace and the next Open
// retries it. It refuses a database that has applied a version this binary
// does not know (a newer bookd wrote it).
func migrate(ctx context.Context, pool *pgxpool.Pool, fsys fs.FS) error {
	ms, err := persistence.ReadMigrations(fsys)
	if err != nil {
		return err
	}
	err = lockedTx(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
			version    INTEGER     NOT NULL PRIMARY KEY,
			name       TEXT        NOT NULL,
			applied_at TIMESTAMPTZ NOT NULL
		)`); err != nil {
			return fmt.Errorf("create schema_migrations: %w", err)
		}
		var newest int
		if err := tx.QueryRow(ctx, `SELECT COALESCE(max(version), 0) FROM schema_migrations`).Scan(&newest); err != nil {
			return fmt.Errorf("read schema_migrations: %w", err)
		}
		if newest > len(ms) {
			return fmt.Errorf("database schema is at version %d, this binary knows versions up to %d", newest, len(ms))
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, m := range ms {
		if err := applyMigration(ctx, pool, m); err != nil {
			return fmt.Errorf("migration %s: %w", m.Name, err)
		}
	}
	return nil
}

// migrationTx is the transaction of a migration step: READ COMMITTED
// whatever the server's default, so that each statement of a step sees
// what committed before it, in particular after a step's LOCK TABLE (a
// higher level would keep the snapshot of the step's first statement).
var migrationTx = pgx.TxOptions{IsoLevel: pgx.ReadCommitted}

// lockedTx runs fn in a migrationTx that holds the migration lock first.
func lockedTx(ctx context.Context, pool *pgxpool.Pool, fn func(pgx.Tx) error) error {
	return pgx.BeginTxFunc(ctx, pool, migrationTx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, migrationLock); err != nil {
			return fmt.Errorf("lock: %w", err)
		}
		return fn(tx)
	})
}

// applyMigration runs m in one transaction, under the migration lock,
// unless it was applied already.
func applyMigration(ctx context.Context, pool *pgxpool.Pool, m persistence.Migration) error {
	return lockedTx(ctx, pool, func(tx pgx.Tx) error {
		var applied bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM schema_migrations WHERE version = $1)`, m.Version).Scan(&applied); err != nil {
			return err
		}
		if applied {
			return nil
		}
		// Without arguments pgx sends the file with the simple protocol,
		// which runs every statement in it.
		if _, err := tx.Exec(ctx, m.SQL); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)`,
			m.Version, m.Name, now())
		return err
	})
}
