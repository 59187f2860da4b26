// Package sqlite is the embedded persistence.Store: one SQLite file, opened
// with the pure-Go driver modernc.org/sqlite (no cgo).
//
// The file is in WAL mode with synchronous=FULL, so a committed Append is on
// disk before Append returns. Every write goes through one connection (the
// writer), which starts its transactions with BEGIN IMMEDIATE: writers of one
// Store queue in Go instead of failing with SQLITE_BUSY, and the check of a
// stream's last seq and the insert after it happen under the write lock.
// Reads use a separate pool and never wait for writes. Several Stores (or
// processes) may open the same file; they then wait for each other's write
// locks for up to Options.BusyTimeout.
//
// The schema is a list of numbered migrations embedded in the binary
// (migrations/NNNN_name.sql), applied in order by Open, each in its own
// transaction, and recorded in the table schema_migrations.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	sqlitedrv "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/bookd/bookd/persistence"
	"github.com/bookd/bookd/persistence/sqlaccounts"
)

var _ persistence.Store = (*Store)(nil)

// Options tune a Store. The zero value of a field means its default.
type Options struct {
	// BusyTimeout is how long a statement waits for a lock that another
	// connection to the same file holds (another Store, another process)
	// before it fails with SQLITE_BUSY. Writes of one Store never wait on
	// each other this way: they queue for the Store's single writer
	// connection. It is rounded down to milliseconds. Default 5s.
	BusyTimeout time.Duration
	// MaxReaders is the number of read connections. Default
	// max(4, runtime.GOMAXPROCS(0)).
	MaxReaders int
}

// DefaultOptions returns the options Open uses for zero fields.
func DefaultOptions() Options {
	return Options{
		BusyTimeout: 5 * time.Second,
		MaxReaders:  max(4, runtime.GOMAXPROCS(0)),
	}
}

// Validate reports the first field that has no meaning.
func (o Options) Validate() error {
	if o.BusyTimeout < 0 {
		return fmt.Errorf("sqlite: Options.BusyTimeout is %v, want >= 0", o.BusyTimeout)
	}
	if o.BusyTimeout > 0 && o.BusyTimeout < time.Millisecond {
		return fmt.Errorf("sqlite: Options.BusyTimeout is %v, want at least 1ms", o.BusyTimeout)
	}
	if o.MaxReaders < 0 {
		return fmt.Errorf("sqlite: Options.MaxReaders is %d, want >= 0", o.MaxReaders)
	}
	return nil
}

// withDefaults fills the zero fields of o from DefaultOptions.
func (o Options) withDefaults() Options {
	d := DefaultOptions()
	if o.BusyTimeout == 0 {
		o.BusyTimeout = d.BusyTimeout
	}
	if o.MaxReaders == 0 {
		o.MaxReaders = d.MaxReaders
	}
	return o
}

// Store is a persistence.Store over one SQLite file. It is safe for
// concurrent use. Close it when done.
type Store struct {
	path string
	// w is the writer: exactly one connection, transactions BEGIN IMMEDIATE.
	// Every statement that changes the file runs on it.
	w *sql.DB
	// r is the read pool (query_only connections).
	r *sql.DB

	// Accounts is the accounts part of the contract, on w and r.
	*sqlaccounts.Accounts

	closeOnce sync.Once
	closeErr  error
}

// Open opens the SQLite file at path, creating the file and its folder when
// missing, and applies the migrations it has not applied yet. path must name
// a file; ":memory:" and URIs are refused (a Store needs two connection pools
// on one database). ctx bounds the migrations only.
func Open(ctx context.Context, path string, opts Options) (*Store, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	opts = opts.withDefaults()
	if path == "" || path == ":memory:" || strings.HasPrefix(path, "file:") {
		return nil, fmt.Errorf("sqlite: open %q: want the path of a file", path)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %q: %w", path, err)
	}
	if err := os.MkdirAll(filepath.Dir(abs), 0o750); err != nil {
		return nil, fmt.Errorf("sqlite: open %q: %w", path, err)
	}

	s := &Store{path: abs}
	busy := strconv.FormatInt(opts.BusyTimeout.Milliseconds(), 10)

	// The writer is opened and used first: it turns the file into WAL mode,
	// which is persistent, before any reader looks at it.
	s.w, err = sql.Open("sqlite", dsn(abs, url.Values{
		"_busy_timeout": {busy},
		"_journal_mode": {"WAL"},
		"_synchronous":  {"FULL"},
		"_foreign_keys": {"1"},
		"_txlock":       {"immediate"},
	}))
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %q: %w", path, err)
	}
	s.w.SetMaxOpenConns(1)
	s.w.SetMaxIdleConns(1)
	s.w.SetConnMaxLifetime(0)
	s.w.SetConnMaxIdleTime(0)

	s.r, err = sql.Open("sqlite", dsn(abs, url.Values{
		"_busy_timeout": {busy},
		"_foreign_keys": {"1"},
		"_query_only":   {"1"},
	}))
	if err != nil {
		_ = s.w.Close()
		return nil, fmt.Errorf("sqlite: open %q: %w", path, err)
	}
	s.r.SetMaxOpenConns(opts.MaxReaders)
	s.r.SetMaxIdleConns(opts.MaxReaders)
	s.r.SetConnMaxLifetime(0)
	s.r.SetConnMaxIdleTime(0)
	s.Accounts = &sqlaccounts.Accounts{Name: "sqlite", W: s.w, R: s.r, IsUnique: isUniqueViolation}

	if err := s.prepare(ctx); err != nil {
		_ = s.Close()
		return nil, fmt.Errorf("sqlite: open %q: %w", path, err)
	}
	return s, nil
}

// prepare checks that WAL mode took, applies the migrations and checks a
// reader answers.
func (s *Store) prepare(ctx context.Context) error {
	var mode string
	if err := s.w.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
		return err
	}
	if !strings.EqualFold(mode, "wal") {
		return fmt.Errorf("journal_mode is %q, want wal", mode)
	}
	if err := migrate(ctx, s.w, migrationFiles); err != nil {
		return err
	}
	return s.r.PingContext(ctx)
}

// dsn is the modernc.org/sqlite URI for the absolute path with params.
func dsn(abs string, params url.Values) string {
	p := filepath.ToSlash(abs)
	if !strings.HasPrefix(p, "/") {
		p = "/" + p // a Windows drive letter: file:///C:/…
	}
	u := url.URL{Scheme: "file", Path: p, RawQuery: params.Encode()}
	return u.String()
}

// Path returns the absolute path of the database file.
func (s *Store) Path() string { return s.path }

// Ping runs a query on a read connection.
func (s *Store) Ping(ctx context.Context) error {
	var one int
	if err := s.r.QueryRowContext(ctx, "SELECT 1").Scan(&one); err != nil {
		return fmt.Errorf("sqlite: ping: %w", err)
	}
	return nil
}

// Close closes the connections; the last one to close checkpoints the WAL
// into the main file. It waits for the calls in progress. Calls after Close
// fail; Close itself may be called again and returns the first result.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		var errs []error
		if s.r != nil {
			errs = append(errs, s.r.Close())
		}
		if s.w != nil {
			errs = append(errs, s.w.Close())
		}
		if err := errors.Join(errs...); err != nil {
			s.closeErr = fmt.Errorf("sqlite: close %q: %w", s.path, err)
		}
	})
	return s.closeErr
}

// errCode returns the (extended) SQLite result code of err, 0 when err does
// not come from SQLite.
func errCode(err error) int {
	var e *sqlitedrv.Error
	if errors.As(err, &e) {
		return e.Code()
	}
	return 0
}

// isUniqueViolation reports whether err is a PRIMARY KEY or UNIQUE violation.
func isUniqueViolation(err error) bool {
	switch errCode(err) {
	case sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY, sqlite3.SQLITE_CONSTRAINT_UNIQUE:
		return true
	}
	return false
}

// isForeignKeyViolation reports whether err is a FOREIGN KEY violation.
func isForeignKeyViolation(err error) bool {
	return errCode(err) == sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY
}

// toMicros is how times are stored: microseconds since the Unix epoch.
func toMicros(t time.Time) int64 { return t.UnixMicro() }

// fromMicros is the inverse of toMicros, in UTC.
func fromMicros(us int64) time.Time { return time.UnixMicro(us).UTC() }

// now is the time the store stamps on what it accepts.
func now() time.Time { return time.Now().UTC().Truncate(time.Microsecond) }
