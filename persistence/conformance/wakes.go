package conformance

import (
	"errors"
	"testing"
	"time"

	"github.com/bookd/bookd/persistence"
)

// testWakes checks the durable timers: a wake time is set, moved and cleared
// only with an append, in its transaction, and DueWakes lists what is due,
// earliest first.
func testWakes(t *testing.T, factory Factory) {
	s := fresh(t, factory)
	ctx := t.Context()
	base := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	at := func(d time.Duration) *time.Time { w := base.Add(d); return &w }
	appendWake := func(stream string, seq uint64, wake *time.Time) error {
		return s.Append(ctx, persistence.Batch{Stream: stream, ExpectedSeq: seq, Events: payloads(stream, 1), Wake: wake})
	}
	due := func(now time.Time, limit int) []persistence.Wake {
		t.Helper()
		w, err := s.DueWakes(ctx, now, limit)
		if err != nil {
			t.Fatalf("DueWakes(%v, %d) = %v", now, limit, err)
		}
		return w
	}

	if got := due(base.Add(time.Hour), 10); len(got) != 0 {
		t.Fatalf("DueWakes on a fresh store = %v, want none", got)
	}
	for i, w := range []struct {
		stream string
		wake   *time.Time
	}{{"wake/b", at(2 * time.Second)}, {"wake/a", at(time.Second)}, {"wake/c", at(time.Minute)}, {"wake/none", nil}} {
		if err := appendWake(w.stream, 0, w.wake); err != nil {
			t.Fatalf("append %d with wake: %v", i, err)
		}
	}
	got := due(base.Add(2*time.Second), 10)
	if len(got) != 2 || got[0].Stream != "wake/a" || got[1].Stream != "wake/b" || !got[0].At.Equal(*at(time.Second)) {
		t.Fatalf("DueWakes(base+2s) = %v, want wake/a at base+1s then wake/b", got)
	}
	if got := due(base.Add(time.Hour), 1); len(got) != 1 || got[0].Stream != "wake/a" {
		t.Errorf("DueWakes(limit 1) = %v, want only the earliest, wake/a", got)
	}
	if got := due(base, 10); len(got) != 0 {
		t.Errorf("DueWakes(before any) = %v, want none", got)
	}

	// Moving later, leaving alone (nil), clearing (zero time).
	if err := appendWake("wake/a", 1, at(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := appendWake("wake/b", 1, nil); err != nil {
		t.Fatal(err)
	}
	if err := appendWake("wake/c", 1, &time.Time{}); err != nil {
		t.Fatal(err)
	}
	got = due(base.Add(2*time.Hour), 10)
	if len(got) != 2 || got[0].Stream != "wake/b" || got[1].Stream != "wake/a" {
		t.Errorf("after moving a, keeping b, clearing c: DueWakes = %v, want wake/b then wake/a", got)
	}

	// A conflicting append changes no wake time.
	err := appendWake("wake/b", 0, &time.Time{})
	if !errors.Is(err, persistence.ErrConflict) {
		t.Fatalf("append at a stale seq = %v, want a conflict", err)
	}
	if got := due(base.Add(2*time.Second), 10); len(got) != 1 || got[0].Stream != "wake/b" {
		t.Errorf("after a conflicting append that would clear wake/b: DueWakes = %v, want wake/b still there", got)
	}

	if _, err := s.DueWakes(ctx, base, 0); err == nil {
		t.Errorf("DueWakes(limit 0) = nil error, want an error")
	}
}
