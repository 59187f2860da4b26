package postgres

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/bookd/bookd/persistence"
	"github.com/bookd/bookd/persistence/conformance"
	"github.com/bookd/bookd/persistence/testserver"
)

// TestMain keeps one PostgreSQL server for every test of the package and
// runs them in a time zone other than UTC, so that a time that comes back
// in time.Local instead of UTC fails the conformance suite.
func TestMain(m *testing.M) {
	time.Local = time.FixedZone("UTC+5:30", 5*3600+1800)
	os.Exit(testserver.Main(m))
}

// opener returns a conformance.Opener for the database at url.
func opener(url string) conformance.Opener {
	return func(t *testing.T) persistence.Store {
		t.Helper()
		s, err := Open(t.Context(), url, Options{})
		if err != nil {
			t.Fatalf("Open(%s) = %v, want nil", url, err)
		}
		return s
	}
}

func TestConformance(t *testing.T) {
	conformance.Run(t, func(t *testing.T) conformance.Opener {
		return opener(testserver.DatabaseT(t))
	})
}

// openT opens the database at url and closes the Store when t ends.
func openT(t *testing.T, url string) *Store {
	t.Helper()
	s, err := Open(t.Context(), url, Options{})
	if err != nil {
		t.Fatalf("Open(%s) = %v, want nil", url, err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close() = %v, want nil", err)
		}
	})
	return s
}

func mustAppend(t *testing.T, s *Store, stream string, expectedSeq uint64) {
	t.Helper()
	if err := s.Append(t.Context(), persistence.Batch{Stream: stream, ExpectedSeq: expectedSeq, Events: [][]byte{[]byte("e")}}); err != nil {
		t.Fatalf("Append(%q, %d) = %v, want nil", stream, expectedSeq, err)
	}
}

type appliedMigration struct {
	version int
	name    string
}

func appliedMigrations(t *testing.T, s *Store) []appliedMigration {
	t.Helper()
	rows, err := s.pool.Query(t.Context(), `SELECT version, name FROM schema_migrations ORDER BY version`)
	if err != nil {
		t.Fatalf("query schema_migrations: %v", err)
	}
	ms, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (appliedMigration, error) {
		var m appliedMigration
		err := row.Scan(&m.version, &m.name)
		return m, err
	})
	if err != nil {
		t.Fatalf("query schema_migrations: %v", err)
	}
	return ms
}

func wantMigrations(t *testing.T) []persistence.Migration {
	t.Helper()
	want, err := persistence.ReadMigrations(migrationFiles)
	if err != nil {
		t.Fatalf("persistence.ReadMigrations() = %v", err)
	}
	if len(want) == 0 {
		t.Fatal("persistence.ReadMigrations() = no migrations")
	}
	return want
}

func checkApplied(t *testing.T, s *Store, want []persistence.Migration) {
	t.Helper()
	got := appliedMigrations(t, s)
	if len(got) != len(want) {
		t.Fatalf("schema_migrations = %v, want %d rows", got, len(want))
	}
	for i, m := range got {
		if m.version != want[i].Version || m.name != want[i].Name {
			t.Errorf("schema_migrations row %d = %+v, want version %d name %q", i, m, want[i].Version, want[i].Name)
		}
	}
}

func TestMigrationsApplyOnce(t *testing.T) {
	url := testserver.DatabaseT(t)
	want := wantMigrations(t)
	for range 3 {
		s, err := Open(t.Context(), url, Options{})
		if err != nil {
			t.Fatalf("Open = %v", err)
		}
		checkApplied(t, s, want)
		if err := s.Close(); err != nil {
			t.Fatalf("Close() = %v", err)
		}
	}
}

// TestMigrateConcurrently opens several Stores on one new database at once,
// as nodes that start together do: every Open succeeds and each migration
// is applied once.
func TestMigrateConcurrently(t *testing.T) {
	url := testserver.DatabaseT(t)
	const nodes = 6
	stores := make([]*Store, nodes)
	errs := make([]error, nodes)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range nodes {
		wg.Go(func() {
			<-start
			stores[i], errs[i] = Open(t.Context(), url, Options{})
		})
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("node %d: Open = %v, want nil", i, err)
			continue
		}
		t.Cleanup(func() { _ = stores[i].Close() })
	}
	if t.Failed() {
		return
	}
	checkApplied(t, stores[0], wantMigrations(t))
	mustAppend(t, stores[nodes-1], "resource/x", 0)
}

// migrationsFS holds the embedded migrations named (their paths), for
// migrate to apply.
func migrationsFS(t *testing.T, names ...string) fstest.MapFS {
	t.Helper()
	fsys := fstest.MapFS{}
	for _, name := range names {
		b, err := migrationFiles.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		fsys[name] = &fstest.MapFile{Data: b}
	}
	return fsys
}

func TestMigrateFailedStepLeavesNoTrace(t *testing.T) {
	s := openT(t, testserver.DatabaseT(t))
	ctx := t.Context()
	real, err := fs.Glob(migrationFiles, "migrations/*.sql")
	if err != nil || len(real) == 0 {
		t.Fatalf("the real migrations: %v, %v", real, err)
	}
	fsys := migrationsFS(t, real...)
	n := len(real)
	half, after := fmt.Sprintf("migrations/%04d_half.sql", n+1), fmt.Sprintf("migrations/%04d_after.sql", n+2)
	fsys[half] = &fstest.MapFile{Data: []byte("CREATE TABLE half (x INTEGER); INSERT INTO nowhere VALUES (1);")}
	fsys[after] = &fstest.MapFile{Data: []byte("CREATE TABLE after_half (x INTEGER);")}
	err = migrate(ctx, s.pool, fsys)
	if err == nil || !strings.Contains(err.Error(), strings.TrimPrefix(half, "migrations/")) {
		t.Fatalf("migrate(broken %s) = %v, want an error naming it", half, err)
	}
	for _, table := range []string{"half", "after_half"} {
		var exists bool
		if err := s.pool.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL`, table).Scan(&exists); err != nil || exists {
			t.Errorf("table %q after a failed migration: exists %v, %v, want false, nil", table, exists, err)
		}
	}
	if got := appliedMigrations(t, s); len(got) != n {
		t.Errorf("schema_migrations after a failed migration = %v, want only the %d real ones", got, n)
	}

	fsys[half] = &fstest.MapFile{Data: []byte("CREATE TABLE half (x INTEGER);")}
	if err := migrate(ctx, s.pool, fsys); err != nil {
		t.Fatalf("migrate(fixed) = %v, want nil", err)
	}
	if got := appliedMigrations(t, s); len(got) != n+2 {
		t.Errorf("schema_migrations after the fix = %v, want versions 1 to %d", got, n+2)
	}
}

// TestMigrateEventsToBatches: a journal of one row per event, as versions
// before 0004 kept it, becomes batch rows with every event, seq, time and
// byte kept, and the stream goes on from its last seq.
func TestMigrateEventsToBatches(t *testing.T) {
	ctx := t.Context()
	url := testserver.DatabaseT(t)
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	old := migrationsFS(t, "migrations/0001_init.sql", "migrations/0002_wakes.sql", "migrations/0003_accounts.sql")
	if err := migrate(ctx, pool, old); err != nil {
		t.Fatalf("migrate to 0003 = %v", err)
	}
	t1 := time.Date(2030, 1, 1, 10, 0, 0, 123000, time.UTC)
	t2 := t1.Add(time.Second)
	// a: a batch of 3 at t1, one of 2 at t2, one of 1 at t1 again; b: one.
	type ev struct {
		stream string
		seq    int64
		data   []byte
		at     time.Time
	}
	evs := []ev{{"a", 1, []byte("a1"), t1}, {"a", 2, []byte{}, t1}, {"a", 3, []byte("a3"), t1},
		{"a", 4, []byte("a4"), t2}, {"a", 5, []byte{0, 0xff}, t2}, {"a", 6, []byte("a6"), t1}, {"b", 1, []byte("b1"), t2}}
	for _, e := range evs {
		if _, err := pool.Exec(ctx, `INSERT INTO events (stream, seq, data, at) VALUES ($1, $2, $3, $4)`, e.stream, e.seq, e.data, e.at); err != nil {
			t.Fatal(err)
		}
	}
	pool.Close()

	s := openT(t, url)
	var rows int
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM journal WHERE stream = 'a'`).Scan(&rows); err != nil || rows != 3 {
		t.Errorf("a's journal rows = %d, %v, want its 3 batches", rows, err)
	}
	for _, after := range []uint64{0, 2, 4, 6} {
		var got []ev
		if err := s.Load(ctx, "a", after, func(e persistence.Event) error {
			got = append(got, ev{"a", int64(e.Seq), e.Data, e.At})
			return nil
		}); err != nil {
			t.Fatalf("Load(a, %d) = %v", after, err)
		}
		want := evs[after:6]
		if len(got) != len(want) {
			t.Fatalf("Load(a, %d) = %d events, want %d", after, len(got), len(want))
		}
		for i := range got {
			if got[i].seq != want[i].seq || string(got[i].data) != string(want[i].data) || !got[i].at.Equal(want[i].at) {
				t.Errorf("Load(a, %d)[%d] = %+v, want %+v", after, i, got[i], want[i])
			}
		}
	}
	for stream, want := range map[string]uint64{"a": 6, "b": 1, "c": 0} {
		if got, err := s.LastSeq(ctx, stream); got != want || err != nil {
			t.Errorf("LastSeq(%s) = %d, %v, want %d", stream, got, err, want)
		}
	}
	if err := s.SaveSnapshot(ctx, "a", persistence.Snapshot{Seq: 5, Data: []byte("s")}); err != nil {
		t.Errorf("SaveSnapshot(a, 5), inside a migrated batch = %v", err)
	}
	if err := s.Append(ctx, persistence.Batch{Stream: "a", ExpectedSeq: 5, Events: [][]byte{nil}}); !errors.Is(err, persistence.ErrConflict) {
		t.Errorf("Append(a) at 5 = %v, want a conflict", err)
	}
	mustAppend(t, s, "a", 6)
	// The schema keeps rows a list of events as long as their seqs.
	for _, bad := range []string{
		`('z', 1, 1, ARRAY[NULL::bytea], now())`,
		`('z', 1, 1, '{}'::bytea[], now())`,
		`('z', 1, 0, '{}'::bytea[], now())`,
		`('z', 1, 2, ARRAY[['\x01'::bytea], ['\x02'::bytea]], now())`,
		`('z', 1, 2, '[0:1]={"\\x01","\\x02"}'::bytea[], now())`,
		`('z', 1, 3, ARRAY['\x01'::bytea, '\x02'::bytea], now())`,
	} {
		if _, err := s.pool.Exec(ctx, `INSERT INTO journal (stream, first_seq, last_seq, events, at) VALUES `+bad); errCode(err) != "23514" {
			t.Errorf("inserting %s = %v, want a check violation", bad, err)
		}
	}
}

// TestLoadPagesOfBatches: Load reads whole journal rows, each a batch of
// several events, about loadEvents events a query; over more pages than
// one, from any seq, inside a batch or at its edge, it gives every event
// once and in order.
func TestLoadPagesOfBatches(t *testing.T) {
	s := openT(t, testserver.DatabaseT(t))
	ctx := t.Context()
	var want [][]byte
	for b := 0; len(want) < 2*loadEvents+7; b++ {
		batch := make([][]byte, 1+b%3)
		for i := range batch {
			batch[i] = fmt.Appendf(nil, "e%d", len(want)+i+1)
		}
		if err := s.Append(ctx, persistence.Batch{Stream: "p", ExpectedSeq: uint64(len(want)), Events: batch}); err != nil {
			t.Fatal(err)
		}
		want = append(want, batch...)
	}
	for _, after := range []int{0, 1, 2, 3, loadEvents - 1, loadEvents, loadEvents + 1, 2*loadEvents - 1, 2 * loadEvents, 2*loadEvents + 1,
		len(want) - 1, len(want), len(want) + 1} {
		next := after + 1
		if err := s.Load(ctx, "p", uint64(after), func(e persistence.Event) error {
			if e.Seq != uint64(next) || string(e.Data) != string(want[next-1]) {
				return fmt.Errorf("event %d %q, want %d %q", e.Seq, e.Data, next, want[next-1])
			}
			next++
			return nil
		}); err != nil {
			t.Fatalf("Load(p, %d) = %v", after, err)
		}
		if end := max(after, len(want)) + 1; next != end {
			t.Errorf("Load(p, %d) ended before seq %d, want %d", after, next, end)
		}
	}
}

// TestBatchRowsStayInTheirPage: a sale's batch of events, 9 kB raw (77
// holds, the mean batch of make bench-flash at 256 clients), is kept in
// its journal row (nothing in the TOAST table), compressed, when the
// server has lz4 (Debian's has), as snapshots are; without lz4 it is
// stored uncompressed. A batch of 5 kB is stored as it is, in its row.
// Both load back as written.
func TestBatchRowsStayInTheirPage(t *testing.T) {
	s := openT(t, testserver.DatabaseT(t))
	ctx := t.Context()
	var version int
	if err := s.pool.QueryRow(ctx, `SELECT current_setting('server_version_num')::int`).Scan(&version); err != nil {
		t.Fatal(err)
	}
	lz4 := version >= 140000
	if lz4 {
		// Whether the server was built with lz4, asked in a transaction
		// that leaves nothing behind.
		tx, err := s.pool.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		_, err = tx.Exec(ctx, `CREATE TEMPORARY TABLE lz4_probe (b bytea COMPRESSION lz4)`)
		_ = tx.Rollback(ctx)
		switch {
		case errCode(err) == codeFeatureNotSupported:
			lz4 = false
			t.Logf("this server has no lz4 (%v): the events are stored uncompressed", err)
		case err != nil:
			t.Fatal(err)
		}
	}
	var storage string
	if err := s.pool.QueryRow(ctx, `SELECT attstorage::text FROM pg_attribute
		WHERE attrelid = 'journal'::regclass AND attname = 'events'`).Scan(&storage); err != nil {
		t.Fatal(err)
	}
	if lz4 {
		var compression, snapCompression string
		if err := s.pool.QueryRow(ctx, `SELECT
			(SELECT attcompression::text FROM pg_attribute WHERE attrelid = 'journal'::regclass AND attname = 'events'),
			(SELECT attcompression::text FROM pg_attribute WHERE attrelid = 'snapshots'::regclass AND attname = 'data')`).
			Scan(&compression, &snapCompression); err != nil {
			t.Fatal(err)
		}
		if storage != "m" || compression != "l" || snapCompression != "l" {
			t.Fatalf("journal.events has storage %q and compression %q, snapshots.data compression %q; want \"m\", \"l\" (lz4), \"l\"",
				storage, compression, snapCompression)
		}
	} else if storage != "e" {
		t.Fatalf("journal.events has storage %q, want \"e\" (uncompressed)", storage)
	}

	// Events like a hold's (about 115 bytes): a random id and fingerprint (32
	// bytes), the rest alike.
	batch := func(n int) ([][]byte, int) {
		events, raw := make([][]byte, n), 0
		for i := range events {
			fp := sha256.Sum256(fmt.Append(nil, rand.Uint64()))
			events[i] = fmt.Appendf(nil, "\x0a\x85\x01hold_%024x 2030-01-01T10:00 2030-01-01T11:00 %s user-%05d %s", rand.Uint64(), "\x20\x01\x28\x01", i%7, fp[:])
			raw += len(events[i])
		}
		return events, raw
	}
	toasted := func() int64 {
		var n int64
		if err := s.pool.QueryRow(ctx, `SELECT pg_relation_size(reltoastrelid) FROM pg_class WHERE oid = 'journal'::regclass`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	stored := func(stream string) int64 {
		var n int64
		if err := s.pool.QueryRow(ctx, `SELECT pg_column_size(events) FROM journal WHERE stream = $1`, stream).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	sale, saleRaw := batch(77)
	small, smallRaw := batch(45)
	for stream, events := range map[string][][]byte{"sale": sale, "small": small} {
		if err := s.Append(ctx, persistence.Batch{Stream: stream, Events: events}); err != nil {
			t.Fatal(err)
		}
		n := 0
		if err := s.Load(ctx, stream, 0, func(e persistence.Event) error {
			if string(e.Data) != string(events[n]) {
				return fmt.Errorf("event %d is %q, want %q", e.Seq, e.Data, events[n])
			}
			n++
			return nil
		}); err != nil || n != len(events) {
			t.Fatalf("Load(%s) = %v after %d events, want nil after %d", stream, err, n, len(events))
		}
	}
	saleSize, smallSize, toast := stored("sale"), stored("small"), toasted()
	t.Logf("a batch of %d bytes stored in %d, one of %d in %d; TOAST table %d bytes", saleRaw, saleSize, smallRaw, smallSize, toast)
	if smallSize < int64(smallRaw) {
		t.Errorf("a batch of %d bytes is stored in %d, want it as it is (not compressed)", smallRaw, smallSize)
	}
	switch {
	case lz4 && saleSize >= int64(saleRaw):
		t.Errorf("a batch of %d bytes is stored in %d, want it compressed", saleRaw, saleSize)
	case !lz4 && saleSize < int64(saleRaw):
		t.Errorf("a batch of %d bytes is stored in %d, want it uncompressed", saleRaw, saleSize)
	}
	if lz4 && toast != 0 {
		t.Errorf("the journal's TOAST table has %d bytes, want 0 (each row kept in its page)", toast)
	}
}

func TestOpenRefusesNewerSchema(t *testing.T) {
	url := testserver.DatabaseT(t)
	s := openT(t, url)
	if _, err := s.pool.Exec(t.Context(), `INSERT INTO schema_migrations (version, name, applied_at) VALUES (9999, '9999_future.sql', now())`); err != nil {
		t.Fatalf("insert future migration: %v", err)
	}
	if s, err := Open(t.Context(), url, Options{}); err == nil || !strings.Contains(err.Error(), "9999") {
		if err == nil {
			_ = s.Close()
		}
		t.Errorf("Open of a newer schema = %v, want an error naming version 9999", err)
	}
}

func TestOpenRejects(t *testing.T) {
	url := testserver.PostgresT(t).URL()
	tests := []struct {
		name string
		url  string
		opts Options
	}{
		{"negative max conns", url, Options{MaxConns: -1}},
		{"bad url", "postgres://127.0.0.1:notaport/x", Options{}},
		{"no such database", testserver.PostgresT(t).DatabaseURL("no_such_database"), Options{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Open(t.Context(), tt.url, tt.opts)
			if err == nil {
				_ = s.Close()
				t.Errorf("Open(%s, %+v) = nil error, want an error", tt.url, tt.opts)
			}
		})
	}
}

func TestOpenPoolSize(t *testing.T) {
	url := testserver.DatabaseT(t)
	tests := []struct {
		name string
		url  string
		opts Options
		want int32
	}{
		{"default", url, Options{}, DefaultOptions().MaxConns},
		{"option", url, Options{MaxConns: 3}, 3},
		{"url", url + "&pool_max_conns=5", Options{}, 5},
		{"option over url", url + "&pool_max_conns=5", Options{MaxConns: 7}, 7},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s2, err := Open(t.Context(), tt.url, tt.opts)
			if err != nil {
				t.Fatalf("Open = %v", err)
			}
			defer func() { _ = s2.Close() }()
			if got := s2.pool.Config().MaxConns; got != tt.want {
				t.Errorf("MaxConns = %d, want %d", got, tt.want)
			}
		})
	}
}

// TestUniqueViolationIsConflict checks the fence's last line: when an insert
// hits the primary key although the seq check passed (a trigger plays the
// writer that got in between), Append returns a ConflictError and writes
// nothing, neither the events nor the snapshot nor the wake time.
func TestUniqueViolationIsConflict(t *testing.T) {
	s := openT(t, testserver.DatabaseT(t))
	ctx := t.Context()
	mustAppend(t, s, "s", 0)
	if _, err := s.pool.Exec(ctx, `
		CREATE FUNCTION sneak() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN
			IF NEW.events[cardinality(NEW.events)] = '\xff'::bytea THEN
				INSERT INTO journal (stream, first_seq, last_seq, events, at) VALUES (NEW.stream, NEW.first_seq, NEW.first_seq, ARRAY['\x00'::bytea], now());
			END IF;
			RETURN NEW;
		END $$;
		CREATE TRIGGER sneak BEFORE INSERT ON journal FOR EACH ROW EXECUTE FUNCTION sneak();`); err != nil {
		t.Fatalf("create trigger: %v", err)
	}
	wake := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	err := s.Append(ctx, persistence.Batch{Stream: "s", ExpectedSeq: 1, Events: [][]byte{[]byte("ok"), {0xff}}, Snapshot: &persistence.Snapshot{Seq: 3}, Wake: &wake})
	var ce *persistence.ConflictError
	if !errors.Is(err, persistence.ErrConflict) || !errors.As(err, &ce) || ce.Stream != "s" || ce.ExpectedSeq != 1 || ce.ActualSeq != 1 {
		t.Fatalf("Append hitting the primary key = %v, want a ConflictError on s at 1, actual 1", err)
	}
	if got, err := s.LastSeq(ctx, "s"); got != 1 || err != nil {
		t.Errorf("LastSeq(s) after the conflict = %d, %v, want 1, nil", got, err)
	}
	if _, ok, err := s.LoadSnapshot(ctx, "s"); ok || err != nil {
		t.Errorf("LoadSnapshot(s) after the conflict = ok %v, %v, want false, nil", ok, err)
	}
	if due, err := s.DueWakes(ctx, wake, 10); len(due) != 0 || err != nil {
		t.Errorf("DueWakes after the conflict = %v, %v, want none", due, err)
	}
}

// TestRaceOnPrimaryKey holds one writer's transaction open after it inserted
// the next seq, so that Append reads the old last seq, waits on the primary
// key, and loses once that writer commits: the unique violation path of a
// real race.
func TestRaceOnPrimaryKey(t *testing.T) {
	s := openT(t, testserver.DatabaseT(t))
	ctx := t.Context()
	mustAppend(t, s, "r", 0)
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	if _, err := tx.Exec(ctx, `INSERT INTO journal (stream, first_seq, last_seq, events, at) VALUES ('r', 2, 2, ARRAY['other'::bytea], now())`); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		done <- s.Append(ctx, persistence.Batch{Stream: "r", ExpectedSeq: 1, Events: [][]byte{[]byte("mine")}})
	}()
	// Wait until the Append waits on the other transaction's lock.
	for deadline := time.Now().Add(10 * time.Second); ; {
		var waiting bool
		if err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_stat_activity
			WHERE datname = current_database() AND wait_event_type = 'Lock')`).Scan(&waiting); err != nil {
			t.Fatal(err)
		}
		if waiting {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("Append never waited on the other writer's insert")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	err = <-done
	var ce *persistence.ConflictError
	if !errors.As(err, &ce) || ce.ExpectedSeq != 1 || ce.ActualSeq != 2 {
		t.Fatalf("Append racing a committed insert = %v, want a ConflictError at 1 with ActualSeq 2", err)
	}
	var data []byte
	if err := s.pool.QueryRow(ctx, `SELECT events[1] FROM journal WHERE stream = 'r' AND first_seq = 2`).Scan(&data); err != nil || string(data) != "other" {
		t.Errorf("seq 2 = %q, %v, want the other writer's", data, err)
	}
}

// TestRacingBatchesOfOtherSizes: writers that saw the same last seq race
// with batches of different sizes; one wins each time, the other gets a
// conflict, and the journal holds exactly the winners' events.
func TestRacingBatchesOfOtherSizes(t *testing.T) {
	s := openT(t, testserver.DatabaseT(t))
	ctx := t.Context()
	var want []string
	for round := range 20 {
		seq := uint64(len(want))
		batch := func(w, n int) [][]byte {
			b := make([][]byte, n)
			for i := range b {
				b[i] = fmt.Appendf(nil, "r%d-w%d-%d", round, w, i)
			}
			return b
		}
		batches := [][][]byte{batch(0, 1+round%4), batch(1, 3+round%5)}
		errs := make([]error, len(batches))
		var wg sync.WaitGroup
		for w, b := range batches {
			wg.Go(func() { errs[w] = s.Append(ctx, persistence.Batch{Stream: "race", ExpectedSeq: seq, Events: b}) })
		}
		wg.Wait()
		won := -1
		for w, err := range errs {
			switch {
			case err == nil && won < 0:
				won = w
			case err == nil:
				t.Fatalf("round %d: both writers at seq %d committed", round, seq)
			case !errors.Is(err, persistence.ErrConflict):
				t.Fatalf("round %d: writer %d = %v, want nil or a conflict", round, w, err)
			}
		}
		if won < 0 {
			t.Fatalf("round %d: neither writer committed: %v", round, errs)
		}
		for _, e := range batches[won] {
			want = append(want, string(e))
		}
	}
	var got []string
	if err := s.Load(ctx, "race", 0, func(e persistence.Event) error { got = append(got, string(e.Data)); return nil }); err != nil {
		t.Fatal(err)
	}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("the journal holds\n%v\nwant the winners' events\n%v", got, want)
	}
}

// TestAppendAfterBackendsTerminated kills every connection of the Store's
// pool on the server: the pool notices, and the next Appends succeed on new
// connections.
func TestAppendAfterBackendsTerminated(t *testing.T) {
	s := openT(t, testserver.DatabaseT(t))
	ctx := t.Context()
	mustAppend(t, s, "k", 0)
	admin, err := pgx.Connect(ctx, testserver.PostgresT(t).DatabaseURL("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = admin.Close(ctx) }()
	var killed int
	if err := admin.QueryRow(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
		WHERE datname = $1 AND pid <> pg_backend_pid()`, s.pool.Config().ConnConfig.Database).Scan(&killed); err != nil {
		t.Fatal(err)
	}
	if killed == 0 {
		t.Fatal("no backend to terminate")
	}
	// The first use of a dead connection fails (its outcome would be
	// unknown); the pool then drops it.
	seq := uint64(1)
	for range killed + 1 {
		err := s.Append(ctx, persistence.Batch{Stream: "k", ExpectedSeq: seq, Events: [][]byte{[]byte("e")}})
		if err == nil {
			seq++
			break
		}
		if errors.Is(err, persistence.ErrConflict) {
			t.Fatalf("Append after a terminated backend = %v, want success or a plain error", err)
		}
	}
	mustAppend(t, s, "k", seq)
}

func TestWakeTimesInUTC(t *testing.T) {
	s := openT(t, testserver.DatabaseT(t))
	ctx := t.Context()
	at := time.Date(2030, 5, 6, 7, 8, 9, 123456789, time.FixedZone("x", -7*3600))
	if err := s.Append(ctx, persistence.Batch{Stream: "w", Events: [][]byte{nil}, Wake: &at}); err != nil {
		t.Fatal(err)
	}
	due, err := s.DueWakes(ctx, at, 10)
	if err != nil || len(due) != 1 {
		t.Fatalf("DueWakes(at) = %v, %v, want one", due, err)
	}
	if want := at.Truncate(time.Microsecond); !due[0].At.Equal(want) || due[0].At.Location() != time.UTC {
		t.Errorf("DueWakes(at)[0].At = %v, want %v in UTC", due[0].At, want.UTC())
	}
}

// TestCloseTwice checks Close after concurrent use, twice, and use after.
func TestCloseTwice(t *testing.T) {
	s, err := Open(t.Context(), testserver.DatabaseT(t), Options{})
	if err != nil {
		t.Fatalf("Open = %v", err)
	}
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() {
			if err := s.Append(t.Context(), persistence.Batch{Stream: fmt.Sprint(i), Events: [][]byte{[]byte("e")}}); err != nil {
				t.Errorf("Append(%d) = %v", i, err)
			}
		})
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

// TestQueryExecModes runs a round trip of every kind of parameter the Store
// sends in pgx's query execution modes that do not prepare statements (used
// behind PgBouncer, for example): pgx then does not learn the parameter
// types from the server.
func TestQueryExecModes(t *testing.T) {
	for _, mode := range []string{"exec", "simple_protocol"} {
		t.Run(mode, func(t *testing.T) {
			s := openT(t, testserver.DatabaseT(t)+"&default_query_exec_mode="+mode)
			ctx := t.Context()
			wake := time.Date(2030, 1, 2, 3, 4, 5, 6000, time.UTC)
			if err := s.Append(ctx, persistence.Batch{Stream: "m", Events: [][]byte{{0, 0xff}, nil},
				Snapshot: &persistence.Snapshot{Seq: 2, Data: []byte{1, 2}}, Wake: &wake}); err != nil {
				t.Fatalf("Append = %v", err)
			}
			var got []persistence.Event
			if err := s.Load(ctx, "m", 0, func(e persistence.Event) error { got = append(got, e); return nil }); err != nil ||
				len(got) != 2 || string(got[0].Data) != "\x00\xff" || len(got[1].Data) != 0 {
				t.Errorf("Load = %v, %v, want the two events", got, err)
			}
			if snap, ok, err := s.LoadSnapshot(ctx, "m"); err != nil || !ok || snap.Seq != 2 || string(snap.Data) != "\x01\x02" {
				t.Errorf("LoadSnapshot = %+v, %v, %v", snap, ok, err)
			}
			if due, err := s.DueWakes(ctx, wake, 1); err != nil || len(due) != 1 || !due[0].At.Equal(wake) {
				t.Errorf("DueWakes = %v, %v, want m at %v", due, err, wake)
			}
			if err := s.Append(ctx, persistence.Batch{Stream: "m", ExpectedSeq: 2, Events: [][]byte{nil}, Wake: &time.Time{}}); err != nil {
				t.Fatalf("Append clearing the wake = %v", err)
			}
			if err := s.Append(ctx, persistence.Batch{Stream: "m", ExpectedSeq: 1, Events: [][]byte{nil}}); !errors.Is(err, persistence.ErrConflict) {
				t.Errorf("Append at a stale seq = %v, want a conflict", err)
			}
			if err := s.CreateProvider(ctx, persistence.Provider{ID: "p", Name: "P"}); err != nil {
				t.Fatalf("CreateProvider = %v", err)
			}
			l := persistence.Listing{ID: "l", ProviderID: "p", Kind: persistence.KindEvent, Name: "L", City: "Porto",
				TimeZone: "Europe/Lisbon", Attributes: map[string]string{"a": "b"}}
			if err := s.CreateListing(ctx, l); err != nil {
				t.Fatalf("CreateListing = %v", err)
			}
			if got, err := s.GetListing(ctx, "l"); err != nil || got.Attributes["a"] != "b" {
				t.Errorf("GetListing = %+v, %v, want attribute a=b", got, err)
			}
			r := persistence.Resource{ID: "r", ListingID: "l", Name: "R", Unit: persistence.SlotSingle, Capacity: 2, HoldTTL: time.Minute}
			if err := s.CreateResource(ctx, r); err != nil {
				t.Fatalf("CreateResource = %v", err)
			}
			if rs, err := s.ListResources(ctx, "l"); err != nil || len(rs) != 1 || rs[0].HoldTTL != time.Minute {
				t.Errorf("ListResources = %+v, %v", rs, err)
			}
			if page, more, err := s.ListListings(ctx, persistence.ListQuery{Limit: 1, City: "Porto", Kind: persistence.KindEvent}); err != nil || len(page) != 1 || more {
				t.Errorf("ListListings = %v, %v, %v", page, more, err)
			}
		})
	}
}

// TestAppendPlansWithTheJournalAsItIs: a pooled connection does not keep a
// plan of Append made when the journal was empty. With PostgreSQL's default
// plan cache, after five runs a connection kept a generic plan that read
// the last seq by a sequential scan of the journal, so that on a new database every
// append read the whole journal until the connection was recycled. The
// store plans each statement afresh (plan_cache_mode force_custom_plan;
// see TestPlanCacheMode for where it does not).
func TestAppendPlansWithTheJournalAsItIs(t *testing.T) {
	ctx := t.Context()
	s, err := Open(ctx, testserver.DatabaseT(t), Options{MaxConns: 1}) // one connection runs every statement
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	for i := range 10 { // on a journal that is empty
		if err := s.Append(ctx, persistence.Batch{Stream: "small", ExpectedSeq: uint64(i), Events: [][]byte{{1}}}); err != nil {
			t.Fatal(err)
		}
	}
	// 20,000 batches of one event, as 20,000 Appends would leave.
	if _, err := s.pool.Exec(ctx, `INSERT INTO journal (stream, first_seq, last_seq, events, at)
		SELECT 'big', i, i, ARRAY['\x02'::bytea], now() FROM generate_series(1, 20000) AS i`); err != nil {
		t.Fatal(err)
	}
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	var name string
	var generic int64
	if err := conn.QueryRow(ctx, `SELECT name, generic_plans FROM pg_prepared_statements WHERE statement = $1`, appendEventsSQL).Scan(&name, &generic); err != nil {
		t.Fatalf("the append statement is not prepared on the connection: %v", err)
	}
	if generic != 0 {
		t.Errorf("the append statement ran %d times with a generic plan, want 0", generic)
	}
	rows, err := conn.Query(ctx, `EXPLAIN EXECUTE `+pgx.Identifier{name}.Sanitize()+`('small', 10, ARRAY['\x01'::bytea])`)
	if err != nil {
		t.Fatal(err)
	}
	var plan []string
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, line)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if text := strings.Join(plan, "\n"); strings.Contains(text, "Seq Scan on journal") {
		t.Errorf("with 20,010 batches, Append reads the journal by a sequential scan:\n%s", text)
	}
}

// TestPlanCacheMode: the store plans afresh where it prepares statements,
// and leaves alone a plan_cache_mode the URL or the role chose, and the
// modes that prepare nothing (PgBouncer's).
func TestPlanCacheMode(t *testing.T) {
	url := testserver.DatabaseT(t)
	role := testserver.DatabaseT(t)
	admin := openT(t, role)
	if _, err := admin.pool.Exec(t.Context(), `ALTER ROLE CURRENT_USER IN DATABASE `+pgx.Identifier{databaseOf(t, admin)}.Sanitize()+` SET plan_cache_mode = force_generic_plan`); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ name, url, want string }{
		{"default", url, "force_custom_plan"},
		{"url", url + "&plan_cache_mode=auto", "auto"},
		{"role", role, "force_generic_plan"},
		{"exec mode", url + "&default_query_exec_mode=exec", "auto"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := openT(t, tt.url)
			var got string
			if err := s.pool.QueryRow(t.Context(), `SELECT current_setting('plan_cache_mode')`).Scan(&got); err != nil || got != tt.want {
				t.Errorf("plan_cache_mode %q (%v), want %q", got, err, tt.want)
			}
		})
	}
}

func databaseOf(t *testing.T, s *Store) string {
	t.Helper()
	var name string
	if err := s.pool.QueryRow(t.Context(), `SELECT current_database()`).Scan(&name); err != nil {
		t.Fatal(err)
	}
	return name
}
