package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"

	"github.com/bookd/bookd/persistence"
)

// migrationFiles holds the schema, one file per step: NNNN_name.sql,
// numbered from 0001 without gaps. A released file is never edited; a change
// is a new file.
//
//go:embed migrations/*.sql
var migrationFiles embed.FS

// migrate applies the migrations of fsys that db has not applied yet, in
// order, each in its own transaction together with its schema_migrations
// row, so a failed step leaves no trace and the next Open retries it. db must
// be the writer (BEGIN IMMEDIATE): a second process migrating the same file
// waits for the first and then skips what it applied. It refuses a database
// that has applied a version this binary does not know (a newer bookd wrote
// it).
func migrate(ctx context.Context, db *sql.DB, fsys fs.FS) error {
	ms, err := persistence.ReadMigrations(fsys)
	if err != nil {
		return err
	}
	if _, err := db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    INTEGER NOT NULL PRIMARY KEY,
		name       TEXT    NOT NULL,
		applied_at INTEGER NOT NULL
	)`); err != nil {
		return fmt.Errorf("create schema_migrations: %w", err)
	}
	var newest int
	if err := db.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&newest); err != nil {
		return fmt.Errorf("read schema_migrations: %w", err)
	}
	if newest > len(ms) {
		return fmt.Errorf("database schema is at version %d, this binary knows versions up to %d", newest, len(ms))
	}
	for _, m := range ms {
		if err := applyMigration(ctx, db, m); err != nil {
			return fmt.Errorf("migration %s: %w", m.Name, err)
		}
	}
	return nil
}

// applyMigration runs m in one transaction unless it was applied already.
func applyMigration(ctx context.Context, db *sql.DB, m persistence.Migration) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback() }()
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM schema_migrations WHERE version = ?`, m.Version).Scan(&n); err != nil {
		return err
	}
	if n > 0 {
		return nil
	}
	if _, err := tx.ExecContext(ctx, m.SQL); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`,
		m.Version, m.Name, toMicros(now())); err != nil {
		return err
	}
	return tx.Commit()
}
