package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/bookd/bookd/persistence"
)

// insertChunk is how many events one INSERT statement of Append writes (4
// parameters each, far below SQLite's limit of 32766).
const insertChunk = 128

// insertEvents returns the INSERT of n events.
func insertEvents(n int) string {
	var b strings.Builder
	b.WriteString("INSERT INTO events (stream, seq, data, at) VALUES (?, ?, ?, ?)")
	for range n - 1 {
		b.WriteString(", (?, ?, ?, ?)")
	}
	return b.String()
}

// loadChunk is how many events Load reads per query. Load holds at most one
// chunk in memory and no connection while fn runs.
const loadChunk = 256

// Append writes b's events as seq b.ExpectedSeq+1, …, its snapshot and its
// wake time, if any, in one
// BEGIN IMMEDIATE transaction on the writer: it reads the stream's last seq
// under the write lock, returns a *persistence.ConflictError (with ActualSeq)
// when it is not expectedSeq, and inserts otherwise. The primary key on
// (stream, seq) backs the check up; a violation of it is a ConflictError too.
// A nil entry of events is stored as empty data. With synchronous=FULL the
// events are on disk when Append returns nil.
//
// It returns a plain error, and writes nothing, when stream is empty, events
// is empty, snap.Seq is not expectedSeq+len(events), or the seqs would not
// fit in an int64.
func (s *Store) Append(ctx context.Context, b persistence.Batch) error {
	stream, expectedSeq, events, snap := b.Stream, b.ExpectedSeq, b.Events, b.Snapshot
	if err := checkAppend(stream, expectedSeq, events, snap); err != nil {
		return err
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlite: append to %q: %w", stream, err)
	}
	defer func() { _ = tx.Rollback() }()

	last, err := lastSeq(ctx, tx, stream)
	if err != nil {
		return fmt.Errorf("sqlite: append to %q: %w", stream, err)
	}
	if last != expectedSeq {
		return &persistence.ConflictError{Stream: stream, ExpectedSeq: expectedSeq, ActualSeq: last}
	}
	at := toMicros(now()) // taken under the write lock: when the store accepts them

	for first := 0; first < len(events); first += insertChunk {
		chunk := events[first:min(first+insertChunk, len(events))]
		args := make([]any, 0, 4*len(chunk))
		for i, data := range chunk {
			args = append(args, stream, int64(expectedSeq)+int64(first+i)+1, blob(data), at)
		}
		if _, err := tx.ExecContext(ctx, insertEvents(len(chunk)), args...); err != nil {
			if isUniqueViolation(err) {
				return s.conflictAfterViolation(ctx, tx, stream, expectedSeq)
			}
			return fmt.Errorf("sqlite: append to %q: %w", stream, err)
		}
	}

	if snap != nil {
		// The fence above makes snap.Seq larger than any snapshot stored
		// before; the WHERE keeps the newest should that ever not hold.
		if _, err := tx.ExecContext(ctx, `INSERT INTO snapshots (stream, seq, data, at) VALUES (?, ?, ?, ?)
			ON CONFLICT (stream) DO UPDATE SET seq = excluded.seq, data = excluded.data, at = excluded.at
			WHERE excluded.seq > snapshots.seq`,
			stream, int64(snap.Seq), blob(snap.Data), at); err != nil {
			return fmt.Errorf("sqlite: append to %q: snapshot %d: %w", stream, snap.Seq, err)
		}
	}

	if b.Wake != nil {
		if err := setWake(ctx, tx, stream, *b.Wake); err != nil {
			return fmt.Errorf("sqlite: append to %q: wake: %w", stream, err)
		}
	}

	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlite: append to %q: commit: %w", stream, err)
	}
	return nil
}

// conflictAfterViolation builds the ConflictError for a primary key violation
// inside tx, reading the stream's last seq when it still can.
func (s *Store) conflictAfterViolation(ctx context.Context, tx *sql.Tx, stream string, expectedSeq uint64) error {
	ce := &persistence.ConflictError{Stream: stream, ExpectedSeq: expectedSeq}
	if last, err := lastSeq(ctx, tx, stream); err == nil {
		ce.ActualSeq = last
	}
	return ce
}

// checkAppend validates the arguments of Append.
func checkAppend(stream string, expectedSeq uint64, events [][]byte, snap *persistence.Snapshot) error {
	if stream == "" {
		return errors.New("sqlite: append: empty stream name")
	}
	if len(events) == 0 {
		return fmt.Errorf("sqlite: append to %q: no events", stream)
	}
	if expectedSeq > math.MaxInt64-uint64(len(events)) {
		return fmt.Errorf("sqlite: append to %q: seq %d+%d does not fit in an int64", stream, expectedSeq, len(events))
	}
	if snap != nil {
		if want := expectedSeq + uint64(len(events)); snap.Seq != want {
			return fmt.Errorf("sqlite: append to %q: snapshot seq is %d, want %d (expected seq %d + %d events)",
				stream, snap.Seq, want, expectedSeq, len(events))
		}
	}
	return nil
}

// blob makes nil data an empty BLOB (the column is NOT NULL).
func blob(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// querier is what *sql.DB and *sql.Tx share.
type querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// lastSeq returns the last seq of stream, 0 when it has none.
func lastSeq(ctx context.Context, q querier, stream string) (uint64, error) {
	var last int64
	if err := q.QueryRowContext(ctx, `SELECT COALESCE(MAX(seq), 0) FROM events WHERE stream = ?`, stream).Scan(&last); err != nil {
		return 0, err
	}
	return uint64(last), nil
}

// Load calls fn for every event of stream with Seq > afterSeq, in order. It
// reads loadChunk events per query and calls fn between queries, holding no
// connection, so fn may call the Store. Events appended while Load runs may
// be included; there is never a gap.
func (s *Store) Load(ctx context.Context, stream string, afterSeq uint64, fn func(persistence.Event) error) error {
	if afterSeq >= math.MaxInt64 {
		return nil
	}
	after := int64(afterSeq)
	for {
		chunk, err := s.loadChunk(ctx, stream, after)
		if err != nil {
			return fmt.Errorf("sqlite: load %q after %d: %w", stream, after, err)
		}
		for _, e := range chunk {
			if err := fn(e); err != nil {
				return err
			}
		}
		if len(chunk) < loadChunk {
			return nil
		}
		after = int64(chunk[len(chunk)-1].Seq)
	}
}

// loadChunk reads up to loadChunk events of stream after seq after.
func (s *Store) loadChunk(ctx context.Context, stream string, after int64) ([]persistence.Event, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT seq, data, at FROM events WHERE stream = ? AND seq > ? ORDER BY seq LIMIT ?`,
		stream, after, loadChunk)
	if err != nil {
		return nil, err
	}
	defer func() { _ = rows.Close() }()
	var chunk []persistence.Event
	for rows.Next() {
		var (
			seq, at int64
			data    []byte
		)
		if err := rows.Scan(&seq, &data, &at); err != nil {
			return nil, err
		}
		chunk = append(chunk, persistence.Event{Seq: uint64(seq), Data: data, At: fromMicros(at)})
	}
	return chunk, rows.Err()
}

// LastSeq returns the seq of the last event of stream, 0 when it has none.
func (s *Store) LastSeq(ctx context.Context, stream string) (uint64, error) {
	last, err := lastSeq(ctx, s.r, stream)
	if err != nil {
		return 0, fmt.Errorf("sqlite: last seq of %q: %w", stream, err)
	}
	return last, nil
}

// SaveSnapshot saves snap as stream's newest snapshot in one transaction on
// the writer, unless a newer one is stored (see persistence.Journal).
func (s *Store) SaveSnapshot(ctx context.Context, stream string, snap persistence.Snapshot) error {
	if snap.Seq < 1 || snap.Seq > math.MaxInt64 {
		return fmt.Errorf("sqlite: save snapshot of %q: seq %d is out of range", stream, snap.Seq)
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlite: save snapshot of %q: %w", stream, err)
	}
	defer func() { _ = tx.Rollback() }()
	var found bool
	if err := tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM events WHERE stream = ? AND seq = ?)`,
		stream, int64(snap.Seq)).Scan(&found); err != nil {
		return fmt.Errorf("sqlite: save snapshot of %q at %d: %w", stream, snap.Seq, err)
	}
	if !found {
		return fmt.Errorf("sqlite: save snapshot of %q at %d: the stream has no such event: %w", stream, snap.Seq, persistence.ErrNotFound)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO snapshots (stream, seq, data, at) VALUES (?, ?, ?, ?)
		ON CONFLICT (stream) DO UPDATE SET seq = excluded.seq, data = excluded.data, at = excluded.at
		WHERE excluded.seq > snapshots.seq`,
		stream, int64(snap.Seq), blob(snap.Data), toMicros(now())); err != nil {
		return fmt.Errorf("sqlite: save snapshot of %q at %d: %w", stream, snap.Seq, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlite: save snapshot of %q at %d: commit: %w", stream, snap.Seq, err)
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
	err := s.r.QueryRowContext(ctx, `SELECT seq, data FROM snapshots WHERE stream = ?`, stream).Scan(&seq, &data)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return persistence.Snapshot{}, false, nil
	case err != nil:
		return persistence.Snapshot{}, false, fmt.Errorf("sqlite: load snapshot of %q: %w", stream, err)
	}
	return persistence.Snapshot{Seq: uint64(seq), Data: data}, true, nil
}

// setWake sets (or, for the zero time, clears) stream's wake time inside tx.
func setWake(ctx context.Context, tx *sql.Tx, stream string, at time.Time) error {
	if at.IsZero() {
		_, err := tx.ExecContext(ctx, `DELETE FROM wakes WHERE stream = ?`, stream)
		return err
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO wakes (stream, at) VALUES (?, ?)
		ON CONFLICT (stream) DO UPDATE SET at = excluded.at`, stream, toMicros(at))
	return err
}

// DueWakes returns up to limit streams whose wake time is at or before now,
// earliest first.
func (s *Store) DueWakes(ctx context.Context, now time.Time, limit int) ([]persistence.Wake, error) {
	if limit < 1 {
		return nil, fmt.Errorf("sqlite: due wakes: limit %d, want at least 1", limit)
	}
	rows, err := s.r.QueryContext(ctx, `SELECT stream, at FROM wakes WHERE at <= ? ORDER BY at, stream LIMIT ?`, toMicros(now), limit)
	if err != nil {
		return nil, fmt.Errorf("sqlite: due wakes: %w", err)
	}
	defer rows.Close()
	var out []persistence.Wake
	for rows.Next() {
		var w persistence.Wake
		var at int64
		if err := rows.Scan(&w.Stream, &at); err != nil {
			return nil, fmt.Errorf("sqlite: due wakes: %w", err)
		}
		w.At = fromMicros(at)
		out = append(out, w)
	}
	return out, rows.Err()
}
