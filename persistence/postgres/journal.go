package postgres

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/bookd/bookd/persistence"
)

// lastSeqSQL reads the last seq of stream $1 from its last batch row (rows
// are contiguous), 0 when it has none.
const lastSeqSQL = `SELECT COALESCE((SELECT last_seq FROM journal WHERE stream = $1::text ORDER BY first_seq DESC LIMIT 1), 0) AS last`

// insertBatchSQL is the batch's row, without its condition.
//
// $1 stream, $2 expected seq, $3 events.
const insertBatchSQL = `INSERT INTO journal (stream, first_seq, last_seq, events, at)
	SELECT $1::text, $2::bigint + 1, $2::bigint + cardinality($3::bytea[]), $3::bytea[], now()`

// appendSQL is Append as one statement, so one implicit transaction and one
// round trip: head reads the stream's last seq; the batch goes in as one
// row (appended) only when that is the expected seq ($2); then the
// snapshot and the wake time, written only when the events went in, and
// only after they did (they read appended), so that two racing writers
// meet on the journal's primary key first and never deadlock on the other
// tables. The result is the last seq head saw: the batch went in exactly
// when that is the expected seq.
//
// $1–$3 as insertBatchSQL, $4 snapshot seq (NULL: none), $5 snapshot
// data, $6 wake time (NULL: leave it), $7 clear the wake time.
const appendSQL = `WITH head AS (
	` + lastSeqSQL + `
), appended AS (
	` + insertBatchSQL + `
	FROM head
	WHERE head.last = $2::bigint
	RETURNING 1
), snapshot AS (
	INSERT INTO snapshots (stream, seq, data, at)
	SELECT $1::text, $4::bigint, $5::bytea, now() FROM appended
	WHERE $4::bigint IS NOT NULL
	ON CONFLICT (stream) DO UPDATE SET seq = excluded.seq, data = excluded.data, at = excluded.at
	WHERE excluded.seq > snapshots.seq
), wake_set AS (
	INSERT INTO wakes (stream, at)
	SELECT $1::text, $6::timestamptz FROM appended
	WHERE $6::timestamptz IS NOT NULL
	ON CONFLICT (stream) DO UPDATE SET at = excluded.at
), wake_clear AS (
	DELETE FROM wakes USING appended
	WHERE wakes.stream = $1::text AND $7::boolean
)
SELECT head.last FROM head`

// appendEventsSQL is Append for a batch with neither a snapshot nor a new
// wake time, the common case in a sale: the batch's row when the stream's
// last seq is the expected one ($2), else nothing (the command tag says
// which, and Append reads the stream's seq for the ConflictError). A plain
// INSERT … SELECT, not appendSQL's data-modifying WITH with its CTE scans:
// planned on each run, as Open has the server do by default, it took the
// server's backend about 500 µs of CPU per batch of 77 events where the
// WITH took 650 (one writer appending such batches in a loop, fsync on).
// Leaving out the snapshot and wake tables also spares setting them up.
//
// $1–$3 as insertBatchSQL.
const appendEventsSQL = insertBatchSQL + `
	WHERE (` + lastSeqSQL + `) = $2::bigint`

// Append writes b's events as seq b.ExpectedSeq+1, …, its snapshot and its
// wake time, if any, in one statement (appendEventsSQL or appendSQL): all
// or nothing. It returns a *persistence.ConflictError, having written
// nothing, when the stream's last seq is not b.ExpectedSeq (with
// ActualSeq, which for a batch of events alone is read afterwards, 0 if
// that fails), when a racing writer inserted a batch at the same first seq
// first (the primary key's unique violation; ActualSeq is then read
// afterwards too), and
// when the server aborts the statement as a serialization failure or a
// deadlock (possible only when the server's default isolation level is
// above READ COMMITTED; the stream may then even be at b.ExpectedSeq, and a
// reload finds that out). A nil entry of b.Events is stored as empty data.
// Event.At and the snapshot's time are the server's clock at the start of
// the statement. With the server's synchronous_commit on (its default),
// the batch is durable when Append returns nil.
//
// It returns a plain error, and writes nothing, when b.Stream is empty,
// b.Events is empty, b.Snapshot.Seq is not b.ExpectedSeq+len(b.Events), or
// the seqs would not fit in an int64.
func (s *Store) Append(ctx context.Context, b persistence.Batch) error {
	if err := checkAppend(b); err != nil {
		return err
	}
	events := make([][]byte, len(b.Events))
	for i, e := range b.Events {
		events[i] = blob(e)
	}
	if b.Snapshot == nil && b.Wake == nil {
		tag, err := s.pool.Exec(ctx, appendEventsSQL, b.Stream, int64(b.ExpectedSeq), events)
		if err == nil && tag.RowsAffected() == 0 {
			// The stream is not at the expected seq.
			return s.conflict(ctx, b)
		}
		return s.appendError(ctx, b, err)
	}
	var (
		snapSeq   *int64
		snapData  []byte
		wakeAt    *time.Time
		clearWake bool
	)
	if b.Snapshot != nil {
		seq := int64(b.Snapshot.Seq)
		snapSeq, snapData = &seq, blob(b.Snapshot.Data)
	}
	if b.Wake != nil {
		if b.Wake.IsZero() {
			clearWake = true
		} else {
			at := b.Wake.UTC()
			wakeAt = &at
		}
	}
	var last int64
	err := s.pool.QueryRow(ctx, appendSQL, b.Stream, int64(b.ExpectedSeq), events, snapSeq, snapData, wakeAt, clearWake).Scan(&last)
	if err == nil && uint64(last) != b.ExpectedSeq {
		return &persistence.ConflictError{Stream: b.Stream, ExpectedSeq: b.ExpectedSeq, ActualSeq: uint64(last)}
	}
	return s.appendError(ctx, b, err)
}

// appendError is Append's answer to the error of its statement: nil for
// nil, a ConflictError for a lost race (see Append), else the error.
func (s *Store) appendError(ctx context.Context, b persistence.Batch, err error) error {
	if code := errCode(err); code == codeUniqueViolation || code == codeSerializationFailure || code == codeDeadlockDetected {
		return s.conflict(ctx, b)
	}
	if err != nil {
		return fmt.Errorf("postgres: append to %q: %w", b.Stream, err)
	}
	return nil
}

// conflict builds the ConflictError for an Append that wrote nothing,
// reading the stream's last seq when it can (ActualSeq is 0 when that
// fails): neither a failed statement nor appendEventsSQL answers it.
func (s *Store) conflict(ctx context.Context, b persistence.Batch) error {
	ce := &persistence.ConflictError{Stream: b.Stream, ExpectedSeq: b.ExpectedSeq}
	if last, err := s.LastSeq(ctx, b.Stream); err == nil {
		ce.ActualSeq = last
	}
	return ce
}

// checkAppend validates the arguments of Append.
func checkAppend(b persistence.Batch) error {
	if b.Stream == "" {
		return errors.New("postgres: append: empty stream name")
	}
	if len(b.Events) == 0 {
		return fmt.Errorf("postgres: append to %q: no events", b.Stream)
	}
	if b.ExpectedSeq > math.MaxInt64-uint64(len(b.Events)) {
		return fmt.Errorf("postgres: append to %q: seq %d+%d does not fit in an int64", b.Stream, b.ExpectedSeq, len(b.Events))
	}
	if b.Snapshot != nil {
		if want := b.ExpectedSeq + uint64(len(b.Events)); b.Snapshot.Seq != want {
			return fmt.Errorf("postgres: append to %q: snapshot seq is %d, want %d (expected seq %d + %d events)",
				b.Stream, b.Snapshot.Seq, want, b.ExpectedSeq, len(b.Events))
		}
	}
	return nil
}

// blob makes nil data an empty BYTEA (the columns are NOT NULL).
func blob(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// loadEvents is about how many events Load reads per query: the batches
// that begin within the next loadEvents seqs, and the one holding the
// next seq, so at most loadEvents plus two batches. Load holds at most one chunk in memory and no connection while
// fn runs.
const loadEvents = 512

// Load calls fn for every event of stream with Seq > afterSeq, in order. It
// reads a chunk of batches per query (see loadEvents) and calls fn between
// queries, holding no connection, so fn may call the Store. Events appended
// while Load runs may be included; there is never a gap.
func (s *Store) Load(ctx context.Context, stream string, afterSeq uint64, fn func(persistence.Event) error) error {
	if afterSeq >= math.MaxInt64 {
		return nil
	}
	after := int64(afterSeq)
	for {
		hi := upper(after)
		rows, err := s.loadChunk(ctx, stream, after, hi)
		if err != nil {
			return fmt.Errorf("postgres: load %q after %d: %w", stream, after, err)
		}
		next := after
		for _, r := range rows {
			for i, data := range r.events {
				seq := r.first + int64(i)
				if seq <= after {
					continue // the first row may begin before afterSeq
				}
				if err := fn(persistence.Event{Seq: uint64(seq), Data: blob(data), At: r.at}); err != nil {
					return err
				}
				next = seq
			}
		}
		// Rows are contiguous: a chunk that ends before the seq it read up
		// to (nothing at all included: hi > after) has read the stream's end.
		if next < hi || next == math.MaxInt64 {
			return nil
		}
		after = next
	}
}

// upper is the greatest first seq of the rows Load reads after seq after.
func upper(after int64) int64 { return after + min(loadEvents, math.MaxInt64-after) }

// batchRow is a row of the journal.
type batchRow struct {
	first  int64
	events [][]byte
	at     time.Time
}

// loadChunkSQL reads the rows of stream $1 with events after seq $2 that
// begin up to seq $3: the row holding seq $2+1 (the one with the greatest
// first_seq up to it), if any, and the rows after it; all by the primary
// key.
const loadChunkSQL = `SELECT first_seq, events, at FROM journal
WHERE stream = $1::text AND first_seq <= $3::bigint AND last_seq > $2::bigint AND first_seq >= COALESCE((
	SELECT first_seq FROM journal WHERE stream = $1::text AND first_seq <= $2::bigint + 1 ORDER BY first_seq DESC LIMIT 1
), 1)
ORDER BY first_seq`

// loadChunk reads the rows of stream with events after seq after that
// begin up to seq hi (see upper).
func (s *Store) loadChunk(ctx context.Context, stream string, after, hi int64) ([]batchRow, error) {
	rows, err := s.pool.Query(ctx, loadChunkSQL, stream, after, hi)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (batchRow, error) {
		var r batchRow
		err := row.Scan(&r.first, &r.events, &r.at)
		return r, err
	})
}

// LastSeq returns the seq of the last event of stream, 0 when it has none.
func (s *Store) LastSeq(ctx context.Context, stream string) (uint64, error) {
	var last int64
	err := s.pool.QueryRow(ctx, lastSeqSQL, stream).Scan(&last)
	if err != nil {
		return 0, fmt.Errorf("postgres: last seq of %q: %w", stream, err)
	}
	return uint64(last), nil
}

// saveSnapshotSQL saves a snapshot when the stream has the event it
// describes, keeping a newer stored one; the result is whether the event
// exists.
const saveSnapshotSQL = `WITH ev AS (
	SELECT 1 FROM (
		SELECT last_seq FROM journal WHERE stream = $1::text AND first_seq <= $2::bigint ORDER BY first_seq DESC LIMIT 1
	) holding WHERE holding.last_seq >= $2::bigint
), saved AS (
	INSERT INTO snapshots (stream, seq, data, at)
	SELECT $1::text, $2::bigint, $3::bytea, now() FROM ev
	ON CONFLICT (stream) DO UPDATE SET seq = excluded.seq, data = excluded.data, at = excluded.at
	WHERE excluded.seq > snapshots.seq
)
SELECT EXISTS (SELECT 1 FROM ev)`

// SaveSnapshot saves snap as stream's newest snapshot in one statement,
// unless a newer one is stored (see persistence.Journal).
func (s *Store) SaveSnapshot(ctx context.Context, stream string, snap persistence.Snapshot) error {
	if snap.Seq < 1 || snap.Seq > math.MaxInt64 {
		return fmt.Errorf("postgres: save snapshot of %q: seq %d is out of range", stream, snap.Seq)
	}
	var found bool
	if err := s.pool.QueryRow(ctx, saveSnapshotSQL, stream, int64(snap.Seq), blob(snap.Data)).Scan(&found); err != nil {
		return fmt.Errorf("postgres: save snapshot of %q at %d: %w", stream, snap.Seq, err)
	}
	if !found {
		return fmt.Errorf("postgres: save snapshot of %q at %d: the stream has no such event: %w", stream, snap.Seq, persistence.ErrNotFound)
	}
	return nil
}

// LoadSnapshot returns the snapshot saved last (by Append or SaveSnapshot)
// with the highest seq; ok is false when there is none.
func (s *Store) LoadSnapshot(ctx context.Context, stream string) (persistence.Snapshot, bool, error) {
	var (
		seq  int64
		data []byte
	)
	err := s.pool.QueryRow(ctx, `SELECT seq, data FROM snapshots WHERE stream = $1`, stream).Scan(&seq, &data)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return persistence.Snapshot{}, false, nil
	case err != nil:
		return persistence.Snapshot{}, false, fmt.Errorf("postgres: load snapshot of %q: %w", stream, err)
	}
	return persistence.Snapshot{Seq: uint64(seq), Data: data}, true, nil
}

// DueWakes returns up to limit streams whose wake time is at or before now,
// earliest first (then by stream). Wake times are kept to the microsecond.
func (s *Store) DueWakes(ctx context.Context, now time.Time, limit int) ([]persistence.Wake, error) {
	if limit < 1 {
		return nil, fmt.Errorf("postgres: due wakes: limit %d, want at least 1", limit)
	}
	rows, err := s.pool.Query(ctx, `SELECT stream, at FROM wakes WHERE at <= $1 ORDER BY at, stream LIMIT $2`, now, limit)
	if err != nil {
		return nil, fmt.Errorf("postgres: due wakes: %w", err)
	}
	wakes, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (persistence.Wake, error) {
		var w persistence.Wake
		err := row.Scan(&w.Stream, &w.At)
		return w, err
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: due wakes: %w", err)
	}
	return wakes, nil
}
