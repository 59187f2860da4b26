package sqlite

import (
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/bookd/bookd/persistence"
	"github.com/bookd/bookd/persistence/conformance"
)

// opener returns a conformance.Opener for the file at path.
func opener(path string) conformance.Opener {
	return func(t *testing.T) persistence.Store {
		t.Helper()
		s, err := Open(t.Context(), path, Options{})
		if err != nil {
			t.Fatalf("Open(%q) = %v, want nil", path, err)
		}
		return s
	}
}

func TestConformance(t *testing.T) {
	conformance.Run(t, func(t *testing.T) conformance.Opener {
		return opener(filepath.Join(t.TempDir(), "bookd.db"))
	})
}

// openT opens the file at path and closes it when t ends.
func openT(t *testing.T, path string) *Store {
	t.Helper()
	s, err := Open(t.Context(), path, Options{})
	if err != nil {
		t.Fatalf("Open(%q) = %v, want nil", path, err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close() = %v, want nil", err)
		}
	})
	return s
}

type appliedMigration struct {
	version   int
	name      string
	appliedAt int64
}

func appliedMigrations(t *testing.T, s *Store) []appliedMigration {
	t.Helper()
	rows, err := s.r.QueryContext(t.Context(), `SELECT version, name, applied_at FROM schema_migrations ORDER BY version`)
	if err != nil {
		t.Fatalf("query schema_migrations: %v", err)
	}
	defer func() { _ = rows.Close() }()
	var ms []appliedMigration
	for rows.Next() {
		var m appliedMigration
		if err := rows.Scan(&m.version, &m.name, &m.appliedAt); err != nil {
			t.Fatalf("scan schema_migrations: %v", err)
		}
		ms = append(ms, m)
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("query schema_migrations: %v", err)
	}
	return ms
}

func TestOpenCreatesFolderAndSetsPragmas(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a", "b", "bookd.db")
	s := openT(t, path)
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("Stat(%q) after Open = %v, want the file", path, err)
	}
	if s.Path() != path {
		t.Errorf("Path() = %q, want %q", s.Path(), path)
	}
	ctx := t.Context()
	tests := []struct {
		db     *sql.DB
		pragma string
		want   string
	}{
		{s.w, "journal_mode", "wal"},
		{s.w, "synchronous", "2"}, // FULL
		{s.w, "foreign_keys", "1"},
		{s.w, "busy_timeout", "5000"},
		{s.r, "journal_mode", "wal"},
		{s.r, "query_only", "1"},
		{s.r, "busy_timeout", "5000"},
	}
	for _, tt := range tests {
		var got string
		if err := tt.db.QueryRowContext(ctx, "PRAGMA "+tt.pragma).Scan(&got); err != nil {
			t.Errorf("PRAGMA %s = %v", tt.pragma, err)
			continue
		}
		if got != tt.want {
			which := "writer"
			if tt.db == s.r {
				which = "reader"
			}
			t.Errorf("%s: PRAGMA %s = %q, want %q", which, tt.pragma, got, tt.want)
		}
	}
}

func TestOpenPathWithOddCharacters(t *testing.T) {
	path := filepath.Join(t.TempDir(), "da ta?#%", "book d.db")
	s := openT(t, path)
	mustAppend(t, s, "resource/x", 0)
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("Stat(%q) = %v, want the file under its exact name", path, err)
	}
}

func mustAppend(t *testing.T, s *Store, stream string, expectedSeq uint64) {
	t.Helper()
	if err := s.Append(t.Context(), persistence.Batch{Stream: stream, ExpectedSeq: expectedSeq, Events: [][]byte{[]byte("e")}}); err != nil {
		t.Fatalf("Append(%q, %d) = %v, want nil", stream, expectedSeq, err)
	}
}

func TestOpenRejects(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name string
		path string
		opts Options
	}{
		{"empty path", "", Options{}},
		{"memory", ":memory:", Options{}},
		{"uri", "file:" + filepath.Join(dir, "x.db"), Options{}},
		{"negative busy timeout", filepath.Join(dir, "x.db"), Options{BusyTimeout: -time.Second}},
		{"sub-millisecond busy timeout", filepath.Join(dir, "x.db"), Options{BusyTimeout: time.Microsecond}},
		{"negative readers", filepath.Join(dir, "x.db"), Options{MaxReaders: -1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Open(t.Context(), tt.path, tt.opts)
			if err == nil {
				_ = s.Close()
				t.Errorf("Open(%q, %+v) = nil error, want an error", tt.path, tt.opts)
			}
		})
	}
}

func TestMigrationsApplyOnce(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bookd.db")
	want, err := persistence.ReadMigrations(migrationFiles)
	if err != nil {
		t.Fatalf("persistence.ReadMigrations() = %v", err)
	}
	if len(want) == 0 {
		t.Fatal("persistence.ReadMigrations() = no migrations")
	}

	s, err := Open(t.Context(), path, Options{})
	if err != nil {
		t.Fatalf("Open(%q) = %v", path, err)
	}
	first := appliedMigrations(t, s)
	if len(first) != len(want) {
		t.Fatalf("schema_migrations after first Open = %v, want %d rows", first, len(want))
	}
	for i, m := range first {
		if m.version != want[i].Version || m.name != want[i].Name {
			t.Errorf("schema_migrations row %d = %+v, want version %d name %q", i, m, want[i].Version, want[i].Name)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close() = %v", err)
	}

	for range 2 {
		s := openT(t, path)
		again := appliedMigrations(t, s)
		if len(again) != len(first) {
			t.Fatalf("schema_migrations after reopen = %v, want %v", again, first)
		}
		for i := range again {
			if again[i] != first[i] {
				t.Errorf("schema_migrations row %d after reopen = %+v, want %+v (applied once)", i, again[i], first[i])
			}
		}
	}
}

func TestMigrateFailedStepLeavesNoTrace(t *testing.T) {
	s := openT(t, filepath.Join(t.TempDir(), "bookd.db"))
	ctx := t.Context()
	// The real migrations (all applied by Open), then a broken step and one after it.
	fsys := fstest.MapFS{}
	real, err := fs.Glob(os.DirFS("."), "migrations/*.sql")
	if err != nil || len(real) == 0 {
		t.Fatalf("the real migrations: %v, %v", real, err)
	}
	for _, name := range real {
		fsys[name] = &fstest.MapFile{Data: mustRead(t, name)}
	}
	n := len(real)
	half, after := fmt.Sprintf("migrations/%04d_half.sql", n+1), fmt.Sprintf("migrations/%04d_after.sql", n+2)
	fsys[half] = &fstest.MapFile{Data: []byte("CREATE TABLE half (x INTEGER); INSERT INTO nowhere VALUES (1);")}
	fsys[after] = &fstest.MapFile{Data: []byte("CREATE TABLE after_half (x INTEGER);")}
	err = migrate(ctx, s.w, fsys)
	if err == nil || !strings.Contains(err.Error(), path.Base(half)) {
		t.Fatalf("migrate(broken %s) = %v, want an error naming it", half, err)
	}
	for _, table := range []string{"half", "after_half"} {
		var n int
		if err := s.r.QueryRowContext(ctx, `SELECT COUNT(*) FROM sqlite_schema WHERE name = ?`, table).Scan(&n); err != nil || n != 0 {
			t.Errorf("table %q after a failed migration: count %d, %v, want 0, nil", table, n, err)
		}
	}
	if got := appliedMigrations(t, s); len(got) != n {
		t.Errorf("schema_migrations after a failed migration = %v, want only the %d real ones", got, n)
	}

	// Fixed, it applies, and only the new steps.
	fsys[half] = &fstest.MapFile{Data: []byte("CREATE TABLE half (x INTEGER);")}
	if err := migrate(ctx, s.w, fsys); err != nil {
		t.Fatalf("migrate(fixed) = %v, want nil", err)
	}
	if got := appliedMigrations(t, s); len(got) != n+2 {
		t.Errorf("schema_migrations after the fix = %v, want versions 1 to %d", got, n+2)
	}
}

func mustRead(t *testing.T, name string) []byte {
	t.Helper()
	b, err := migrationFiles.ReadFile(name)
	if err != nil {
		t.Fatalf("ReadFile(%q) = %v", name, err)
	}
	return b
}

func TestOpenRefusesNewerSchema(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bookd.db")
	s, err := Open(t.Context(), path, Options{})
	if err != nil {
		t.Fatalf("Open(%q) = %v", path, err)
	}
	if _, err := s.w.ExecContext(t.Context(), `INSERT INTO schema_migrations (version, name, applied_at) VALUES (9999, '9999_future.sql', 0)`); err != nil {
		t.Fatalf("insert future migration: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close() = %v", err)
	}
	if s, err := Open(t.Context(), path, Options{}); err == nil || !strings.Contains(err.Error(), "9999") {
		if err == nil {
			_ = s.Close()
		}
		t.Errorf("Open(%q) of a newer schema = %v, want an error naming version 9999", path, err)
	}
}

// TestUniqueViolationIsConflict checks the fence's last line: when an insert
// hits the primary key although the seq check passed (a trigger plays the
// writer that got in between), Append returns a ConflictError and writes
// nothing.
func TestUniqueViolationIsConflict(t *testing.T) {
	s := openT(t, filepath.Join(t.TempDir(), "bookd.db"))
	ctx := t.Context()
	mustAppend(t, s, "s", 0)
	if _, err := s.w.ExecContext(ctx, `CREATE TRIGGER sneak BEFORE INSERT ON events WHEN NEW.data = x'ff'
		BEGIN INSERT INTO events (stream, seq, data, at) VALUES (NEW.stream, NEW.seq, x'00', 0); END`); err != nil {
		t.Fatalf("create trigger: %v", err)
	}
	err := s.Append(ctx, persistence.Batch{Stream: "s", ExpectedSeq: 1, Events: [][]byte{[]byte("ok"), {0xff}}, Snapshot: &persistence.Snapshot{Seq: 3}})
	var ce *persistence.ConflictError
	if !errors.Is(err, persistence.ErrConflict) || !errors.As(err, &ce) || ce.Stream != "s" || ce.ExpectedSeq != 1 {
		t.Fatalf("Append hitting the primary key = %v, want a ConflictError on s at 1", err)
	}
	if got, err := s.LastSeq(ctx, "s"); got != 1 || err != nil {
		t.Errorf("LastSeq(s) after the conflict = %d, %v, want 1, nil", got, err)
	}
	if _, ok, err := s.LoadSnapshot(ctx, "s"); ok || err != nil {
		t.Errorf("LoadSnapshot(s) after the conflict = ok %v, %v, want false, nil", ok, err)
	}
}

// TestCloseTwice checks Close after concurrent use, twice, and use after.
func TestCloseTwice(t *testing.T) {
	s, err := Open(t.Context(), filepath.Join(t.TempDir(), "bookd.db"), Options{})
	if err != nil {
		t.Fatalf("Open = %v", err)
	}
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() { mustAppendErr(t, s, string(rune('a'+i))) })
	}
	wg.Wait()
	if err := s.Close(); err != nil {
		t.Errorf("Close() = %v, want nil", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close() = %v, want nil", err)
	}
	if err := s.Ping(t.Context()); err == nil {
		t.Errorf("Ping() after Close = nil, want an error")
	}
}

func mustAppendErr(t *testing.T, s *Store, stream string) {
	t.Helper()
	if err := s.Append(t.Context(), persistence.Batch{Stream: stream, ExpectedSeq: 0, Events: [][]byte{[]byte("e")}}); err != nil {
		t.Errorf("Append(%q, 0) = %v, want nil", stream, err)
	}
}
