package conformance

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/bookd/bookd/persistence"
)

// testJournal checks the Journal contract with one writer at a time (the
// races are in testFence).
func testJournal(t *testing.T, factory Factory) {
	t.Run("RoundTrip", func(t *testing.T) { testRoundTrip(t, fresh(t, factory)) })
	t.Run("LoadAfterSeq", func(t *testing.T) { testLoadAfterSeq(t, fresh(t, factory)) })
	t.Run("LoadStopsAtCallbackError", func(t *testing.T) { testLoadStops(t, fresh(t, factory)) })
	t.Run("EmptyStream", func(t *testing.T) { testEmptyStream(t, fresh(t, factory)) })
	t.Run("LastSeq", func(t *testing.T) { testLastSeq(t, fresh(t, factory)) })
	t.Run("Conflict", func(t *testing.T) { testConflict(t, fresh(t, factory)) })
	t.Run("InvalidAppend", func(t *testing.T) { testInvalidAppend(t, fresh(t, factory)) })
	t.Run("Atomicity", func(t *testing.T) { testAtomicity(t, fresh(t, factory)) })
	t.Run("DoneContext", func(t *testing.T) { testDoneContext(t, fresh(t, factory)) })
	t.Run("Snapshots", func(t *testing.T) { testSnapshots(t, fresh(t, factory)) })
	t.Run("SaveSnapshot", func(t *testing.T) { testSaveSnapshot(t, fresh(t, factory)) })
	t.Run("IndependentStreams", func(t *testing.T) { testIndependentStreams(t, fresh(t, factory)) })
	t.Run("ConcurrentStreams", func(t *testing.T) { testConcurrentStreams(t, fresh(t, factory)) })
}

// payloads returns n distinct event payloads named after prefix.
func payloads(prefix string, n int) [][]byte {
	ps := make([][]byte, n)
	for i := range ps {
		ps[i] = fmt.Appendf(nil, "%s-%d", prefix, i)
	}
	return ps
}

// mustAppend appends and fails t on error.
func mustAppend(t *testing.T, s persistence.Store, stream string, expectedSeq uint64, events [][]byte, snap *persistence.Snapshot) {
	t.Helper()
	if err := s.Append(t.Context(), persistence.Batch{Stream: stream, ExpectedSeq: expectedSeq, Events: events, Snapshot: snap}); err != nil {
		t.Fatalf("Append(%q, %d, %d events) = %v, want nil", stream, expectedSeq, len(events), err)
	}
}

// loadAll returns the events of stream after afterSeq, failing t on error.
func loadAll(t *testing.T, s persistence.Store, stream string, afterSeq uint64) []persistence.Event {
	t.Helper()
	var got []persistence.Event
	err := s.Load(t.Context(), stream, afterSeq, func(e persistence.Event) error {
		got = append(got, e)
		return nil
	})
	if err != nil {
		t.Fatalf("Load(%q, %d) = %v, want nil", stream, afterSeq, err)
	}
	return got
}

// checkEvents checks that got are the events want, numbered from afterSeq+1.
func checkEvents(t *testing.T, got []persistence.Event, afterSeq uint64, want [][]byte) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("Load(after %d) gave %d events, want %d", afterSeq, len(got), len(want))
	}
	for i := range min(len(got), len(want)) {
		if wantSeq := afterSeq + uint64(i) + 1; got[i].Seq != wantSeq {
			t.Errorf("event %d: Seq = %d, want %d", i, got[i].Seq, wantSeq)
		}
		if !bytes.Equal(got[i].Data, want[i]) {
			t.Errorf("event seq %d: Data = %q, want %q", got[i].Seq, got[i].Data, want[i])
		}
	}
}

// isConflict reports whether err is a conflict on stream at expectedSeq whose
// ActualSeq is actualSeq.
func isConflict(err error, stream string, expectedSeq, actualSeq uint64) bool {
	var ce *persistence.ConflictError
	return errors.Is(err, persistence.ErrConflict) && errors.As(err, &ce) &&
		ce.Stream == stream && ce.ExpectedSeq == expectedSeq && ce.ActualSeq == actualSeq
}

func testRoundTrip(t *testing.T, s persistence.Store) {
	const stream = "resource/round-trip"
	first := [][]byte{[]byte("hold h1"), {0, 1, 2, 0xff, 0}, []byte("")}
	before := time.Now()
	mustAppend(t, s, stream, 0, first, nil)
	after := time.Now()
	second := payloads("second", 2)
	mustAppend(t, s, stream, 3, second, nil)

	got := loadAll(t, s, stream, 0)
	checkEvents(t, got, 0, append(append([][]byte{}, first...), second...))
	for _, e := range got[:min(3, len(got))] {
		// Generous bounds: a store may take At from its server's clock.
		if e.At.Location() != time.UTC || e.At.Before(before.Add(-time.Second)) || e.At.After(after.Add(time.Second)) {
			t.Errorf("event seq %d: At = %v, want a UTC time between %v and %v", e.Seq, e.At, before, after)
		}
	}

	// The store keeps its own copy of what it was given.
	second[0][0] = 'X'
	got = loadAll(t, s, stream, 3)
	if len(got) == 0 || !bytes.Equal(got[0].Data, []byte("second-0")) {
		t.Errorf("Load(%q, 3) after the caller changed its slice = %v, want the data as appended", stream, got)
	}
}

func testLoadAfterSeq(t *testing.T, s persistence.Store) {
	const stream = "resource/after"
	events := payloads("e", 600) // more than one page of any sensible paging
	mustAppend(t, s, stream, 0, events[:5], nil)
	mustAppend(t, s, stream, 5, events[5:], nil)
	for _, afterSeq := range []uint64{0, 1, 4, 5, 6, 255, 256, 257, 599, 600, 601, 1 << 40} {
		t.Run(fmt.Sprint(afterSeq), func(t *testing.T) {
			got := loadAll(t, s, stream, afterSeq)
			var want [][]byte
			if afterSeq < uint64(len(events)) {
				want = events[afterSeq:]
			}
			checkEvents(t, got, afterSeq, want)
		})
	}
}

func testLoadStops(t *testing.T, s persistence.Store) {
	const stream = "resource/stop"
	mustAppend(t, s, stream, 0, payloads("e", 10), nil)
	errStop := errors.New("stop here")
	calls := 0
	err := s.Load(t.Context(), stream, 0, func(e persistence.Event) error {
		calls++
		if e.Seq == 3 {
			return errStop
		}
		return nil
	})
	if !errors.Is(err, errStop) {
		t.Errorf("Load(%q) with fn failing at seq 3 = %v, want %v", stream, err, errStop)
	}
	if calls != 3 {
		t.Errorf("Load(%q) with fn failing at seq 3 called fn %d times, want 3", stream, calls)
	}
}

func testEmptyStream(t *testing.T, s persistence.Store) {
	ctx := t.Context()
	const stream = "resource/nothing"
	if got := loadAll(t, s, stream, 0); len(got) != 0 {
		t.Errorf("Load(%q) = %d events, want 0", stream, len(got))
	}
	if got, err := s.LastSeq(ctx, stream); got != 0 || err != nil {
		t.Errorf("LastSeq(%q) = %d, %v, want 0, nil", stream, got, err)
	}
	if snap, ok, err := s.LoadSnapshot(ctx, stream); ok || err != nil {
		t.Errorf("LoadSnapshot(%q) = %v, %v, %v, want ok false, nil", stream, snap, ok, err)
	}
}

func testLastSeq(t *testing.T, s persistence.Store) {
	const stream = "resource/last"
	seq := uint64(0)
	for _, n := range []int{1, 2, 7, 1, 64} {
		mustAppend(t, s, stream, seq, payloads("e", n), nil)
		seq += uint64(n)
		if got, err := s.LastSeq(t.Context(), stream); got != seq || err != nil {
			t.Errorf("LastSeq(%q) after appending %d = %d, %v, want %d, nil", stream, n, got, err, seq)
		}
	}
}

func testConflict(t *testing.T, s persistence.Store) {
	ctx := t.Context()
	const stream = "resource/conflict"
	events := payloads("e", 3)
	snap := &persistence.Snapshot{Seq: 3, Data: []byte("state 3")}
	mustAppend(t, s, stream, 0, events, snap)

	tests := []struct {
		name        string
		expectedSeq uint64
		n           int
		snap        bool
	}{
		{"behind", 2, 1, false},
		{"start", 0, 1, false},
		{"ahead", 4, 1, false},
		{"far ahead", 1000, 1, false},
		{"behind batch", 1, 5, false},
		{"behind with snapshot", 2, 2, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var sn *persistence.Snapshot
			if tt.snap {
				sn = &persistence.Snapshot{Seq: tt.expectedSeq + uint64(tt.n), Data: []byte("lost")}
			}
			err := s.Append(ctx, persistence.Batch{Stream: stream, ExpectedSeq: tt.expectedSeq, Events: payloads("lost", tt.n), Snapshot: sn})
			if !errors.Is(err, persistence.ErrConflict) {
				t.Fatalf("Append(%q, %d) = %v, want an error matching ErrConflict", stream, tt.expectedSeq, err)
			}
			var ce *persistence.ConflictError
			if !errors.As(err, &ce) {
				t.Fatalf("Append(%q, %d) = %v (%T), want a *ConflictError", stream, tt.expectedSeq, err, err)
			}
			want := persistence.ConflictError{Stream: stream, ExpectedSeq: tt.expectedSeq, ActualSeq: 3}
			if *ce != want {
				t.Errorf("Append(%q, %d) = %+v, want %+v", stream, tt.expectedSeq, *ce, want)
			}
			checkEvents(t, loadAll(t, s, stream, 0), 0, events)
			if got, ok, err := s.LoadSnapshot(ctx, stream); err != nil || !ok || got.Seq != 3 || string(got.Data) != "state 3" {
				t.Errorf("LoadSnapshot(%q) after a conflict = %d %q, %v, %v, want 3 %q, true, nil", stream, got.Seq, got.Data, ok, err, "state 3")
			}
		})
	}

	// An empty stream is at 0.
	const empty = "resource/conflict-empty"
	if err := s.Append(ctx, persistence.Batch{Stream: empty, ExpectedSeq: 1, Events: payloads("e", 1)}); !isConflict(err, empty, 1, 0) {
		t.Errorf("Append(%q, 1) on an empty stream = %v, want a conflict with ActualSeq 0", empty, err)
	}
	if got := loadAll(t, s, empty, 0); len(got) != 0 {
		t.Errorf("Load(%q) after a conflict = %d events, want 0", empty, len(got))
	}
}

func testInvalidAppend(t *testing.T, s persistence.Store) {
	ctx := t.Context()
	if err := s.Append(ctx, persistence.Batch{Stream: "", ExpectedSeq: 0, Events: payloads("e", 1)}); err == nil || errors.Is(err, persistence.ErrConflict) {
		t.Errorf("Append(\"\", 0) = %v, want an error that is not a conflict", err)
	}
	const stream = "resource/invalid"
	mustAppend(t, s, stream, 0, payloads("e", 2), &persistence.Snapshot{Seq: 2, Data: []byte("state 2")})

	tests := []struct {
		name   string
		events [][]byte
		snap   *persistence.Snapshot
	}{
		{"nil events", nil, nil},
		{"no events", [][]byte{}, nil},
		{"no events with snapshot", [][]byte{}, &persistence.Snapshot{Seq: 2, Data: []byte("x")}},
		{"snapshot behind", payloads("x", 2), &persistence.Snapshot{Seq: 3, Data: []byte("x")}},
		{"snapshot at expected seq", payloads("x", 1), &persistence.Snapshot{Seq: 2, Data: []byte("x")}},
		{"snapshot ahead", payloads("x", 1), &persistence.Snapshot{Seq: 4, Data: []byte("x")}},
		{"snapshot at zero", payloads("x", 1), &persistence.Snapshot{Seq: 0, Data: []byte("x")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := s.Append(ctx, persistence.Batch{Stream: stream, ExpectedSeq: 2, Events: tt.events, Snapshot: tt.snap})
			if err == nil || errors.Is(err, persistence.ErrConflict) {
				t.Errorf("Append(%q, 2, %d events, %+v) = %v, want an error that is not a conflict", stream, len(tt.events), tt.snap, err)
			}
			if got, err := s.LastSeq(ctx, stream); got != 2 || err != nil {
				t.Errorf("LastSeq(%q) after a rejected Append = %d, %v, want 2, nil", stream, got, err)
			}
			if got, ok, err := s.LoadSnapshot(ctx, stream); err != nil || !ok || got.Seq != 2 || string(got.Data) != "state 2" {
				t.Errorf("LoadSnapshot(%q) after a rejected Append = %d %q, %v, %v, want 2 %q, true, nil", stream, got.Seq, got.Data, ok, err, "state 2")
			}
		})
	}
}

// testAtomicity checks from the outside that a multi-event Append is all or
// nothing: a reader racing a writer of 8-event batches only ever sees whole
// batches.
func testAtomicity(t *testing.T, s persistence.Store) {
	ctx := t.Context()
	const (
		stream  = "resource/atomic"
		batches = 30
		size    = 8
	)
	var wg sync.WaitGroup
	done := make(chan struct{})
	wg.Go(func() {
		defer close(done)
		for i := range batches {
			if err := s.Append(ctx, persistence.Batch{Stream: stream, ExpectedSeq: uint64(i * size), Events: payloads(fmt.Sprint("b", i), size)}); err != nil {
				t.Errorf("Append(%q, %d, %d events) = %v, want nil", stream, i*size, size, err)
				return
			}
		}
	})
	for finished := false; !finished; {
		select {
		case <-done:
			finished = true // one more look after the last commit
		default:
		}
		last, err := s.LastSeq(ctx, stream)
		if err != nil {
			t.Errorf("LastSeq(%q) = %v, want nil", stream, err)
			break
		}
		if last%size != 0 {
			t.Errorf("LastSeq(%q) = %d while %d-event batches are appended, want a multiple of %d", stream, last, size, size)
		}
		n := 0
		if err := s.Load(ctx, stream, 0, func(persistence.Event) error { n++; return nil }); err != nil {
			t.Errorf("Load(%q) = %v, want nil", stream, err)
			break
		}
		if n%size != 0 {
			t.Errorf("Load(%q) gave %d events while %d-event batches are appended, want a multiple of %d", stream, n, size, size)
		}
	}
	wg.Wait()
	if got := len(loadAll(t, s, stream, 0)); got != batches*size {
		t.Errorf("Load(%q) = %d events, want %d", stream, got, batches*size)
	}
}

// testDoneContext checks that an Append whose context is done fails and
// writes nothing.
func testDoneContext(t *testing.T, s persistence.Store) {
	const stream = "resource/done"
	mustAppend(t, s, stream, 0, payloads("e", 1), nil)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := s.Append(ctx, persistence.Batch{Stream: stream, ExpectedSeq: 1, Events: payloads("late", 4), Snapshot: &persistence.Snapshot{Seq: 5}}); err == nil {
		t.Errorf("Append(%q) with a canceled context = nil, want an error", stream)
	}
	if got, err := s.LastSeq(t.Context(), stream); got != 1 || err != nil {
		t.Errorf("LastSeq(%q) after a canceled Append = %d, %v, want 1, nil", stream, got, err)
	}
	if _, ok, err := s.LoadSnapshot(t.Context(), stream); ok || err != nil {
		t.Errorf("LoadSnapshot(%q) after a canceled Append = ok %v, %v, want false, nil", stream, ok, err)
	}
}

func testSnapshots(t *testing.T, s persistence.Store) {
	ctx := t.Context()
	const stream = "resource/snap"
	check := func(wantSeq uint64, wantData string) {
		t.Helper()
		checkSnapshot(t, s, stream, wantSeq, wantData)
	}
	if _, ok, err := s.LoadSnapshot(ctx, stream); ok || err != nil {
		t.Errorf("LoadSnapshot(%q) before any = ok %v, %v, want false, nil", stream, ok, err)
	}
	mustAppend(t, s, stream, 0, payloads("e", 3), &persistence.Snapshot{Seq: 3, Data: []byte("state 3")})
	check(3, "state 3")
	mustAppend(t, s, stream, 3, payloads("f", 2), nil)
	check(3, "state 3") // an Append without one keeps the last

	big := bytes.Repeat([]byte{0, 1, 2, 3, 4, 5, 6, 7}, 64<<10) // 512 KiB
	mustAppend(t, s, stream, 5, payloads("g", 1), &persistence.Snapshot{Seq: 6, Data: big})
	if got, ok, err := s.LoadSnapshot(ctx, stream); err != nil || !ok || got.Seq != 6 || !bytes.Equal(got.Data, big) {
		t.Errorf("LoadSnapshot(%q) = %d (%d bytes), %v, %v, want 6 (%d bytes), true, nil", stream, got.Seq, len(got.Data), ok, err, len(big))
	}
	mustAppend(t, s, stream, 6, payloads("h", 4), &persistence.Snapshot{Seq: 10, Data: []byte("state 10")})
	check(10, "state 10")

	// Activation: the snapshot, then the events after it.
	mustAppend(t, s, stream, 10, payloads("i", 2), nil)
	checkEvents(t, loadAll(t, s, stream, 10), 10, payloads("i", 2))
}

// checkSnapshot fails t unless stream's newest snapshot is wantData at wantSeq.
func checkSnapshot(t *testing.T, s persistence.Store, stream string, wantSeq uint64, wantData string) {
	t.Helper()
	got, ok, err := s.LoadSnapshot(t.Context(), stream)
	if err != nil || !ok || got.Seq != wantSeq || string(got.Data) != wantData {
		t.Errorf("LoadSnapshot(%q) = %d %q, %v, %v, want %d %q, true, nil", stream, got.Seq, got.Data, ok, err, wantSeq, wantData)
	}
}

// testSaveSnapshot: a snapshot saved on its own must describe an event the
// stream has, and never replaces a newer one.
func testSaveSnapshot(t *testing.T, s persistence.Store) {
	ctx := t.Context()
	const stream = "resource/save-snap"
	check := func(wantSeq uint64, wantData string) {
		t.Helper()
		checkSnapshot(t, s, stream, wantSeq, wantData)
	}
	save := func(seq uint64, data string) error {
		return s.SaveSnapshot(ctx, stream, persistence.Snapshot{Seq: seq, Data: []byte(data)})
	}

	// Nothing to describe yet.
	if err := save(1, "early"); !errors.Is(err, persistence.ErrNotFound) {
		t.Errorf("SaveSnapshot(%q, 1) on an empty stream = %v, want ErrNotFound", stream, err)
	}
	if _, ok, err := s.LoadSnapshot(ctx, stream); ok || err != nil {
		t.Errorf("LoadSnapshot(%q) after a refused save = ok %v, %v, want false, nil", stream, ok, err)
	}

	mustAppend(t, s, stream, 0, payloads("e", 4), nil)
	if err := save(2, "state 2"); err != nil {
		t.Fatalf("SaveSnapshot(%q, 2) = %v, want nil", stream, err)
	}
	check(2, "state 2")
	if err := save(5, "ahead"); !errors.Is(err, persistence.ErrNotFound) {
		t.Errorf("SaveSnapshot(%q, 5) past the last event 4 = %v, want ErrNotFound", stream, err)
	}
	if err := save(0, "zero"); err == nil {
		t.Errorf("SaveSnapshot(%q, 0) = nil, want an error", stream)
	}
	check(2, "state 2")

	if err := save(4, "state 4"); err != nil {
		t.Fatalf("SaveSnapshot(%q, 4) = %v, want nil", stream, err)
	}
	// A slow writer's older snapshot, or the same seq again, keeps the newer.
	for _, seq := range []uint64{3, 4} {
		if err := save(seq, "stale"); err != nil {
			t.Errorf("SaveSnapshot(%q, %d) behind the stored 4 = %v, want nil (kept the newer)", stream, seq, err)
		}
	}
	check(4, "state 4")

	// An Append's snapshot and a saved one share the one newest slot.
	mustAppend(t, s, stream, 4, payloads("f", 2), &persistence.Snapshot{Seq: 6, Data: []byte("state 6")})
	check(6, "state 6")
	if err := save(5, "stale"); err != nil {
		t.Errorf("SaveSnapshot(%q, 5) behind the stored 6 = %v, want nil", stream, err)
	}
	check(6, "state 6")

	// Streams do not mix: another stream's events do not make a seq exist.
	if err := s.SaveSnapshot(ctx, stream+"-other", persistence.Snapshot{Seq: 1, Data: []byte("x")}); !errors.Is(err, persistence.ErrNotFound) {
		t.Errorf("SaveSnapshot of a stream without events = %v, want ErrNotFound", err)
	}
}

func testIndependentStreams(t *testing.T, s persistence.Store) {
	ctx := t.Context()
	// Names that share prefixes and differ in case must not mix.
	streams := []string{"resource/1", "resource/10", "resource/1/x", "Resource/1", "booking/1"}
	for round := range 3 {
		for i, stream := range streams {
			n := i + 1
			mustAppend(t, s, stream, uint64(round*n), payloads(fmt.Sprint(stream, round), n), nil)
		}
	}
	if err := s.Append(ctx, persistence.Batch{Stream: streams[0], ExpectedSeq: 0, Events: payloads("x", 1)}); !isConflict(err, streams[0], 0, 3) {
		t.Errorf("Append(%q, 0) = %v, want a conflict at 3", streams[0], err)
	}
	mustAppend(t, s, streams[1], 6, payloads("snap", 1), &persistence.Snapshot{Seq: 7, Data: []byte("only 10")})
	for i, stream := range streams {
		n := i + 1
		var want [][]byte
		for round := range 3 {
			want = append(want, payloads(fmt.Sprint(stream, round), n)...)
		}
		if i == 1 {
			want = append(want, payloads("snap", 1)...)
		}
		checkEvents(t, loadAll(t, s, stream, 0), 0, want)
		if got, err := s.LastSeq(ctx, stream); got != uint64(len(want)) || err != nil {
			t.Errorf("LastSeq(%q) = %d, %v, want %d, nil", stream, got, err, len(want))
		}
		_, ok, err := s.LoadSnapshot(ctx, stream)
		if err != nil || ok != (i == 1) {
			t.Errorf("LoadSnapshot(%q) = ok %v, %v, want %v, nil", stream, ok, err, i == 1)
		}
	}
}

// testConcurrentStreams checks that many writers on different streams all
// succeed: the store queues or retries, it never fails a write for being
// busy.
func testConcurrentStreams(t *testing.T, s persistence.Store) {
	ctx := t.Context()
	const (
		writers = 16
		appends = 20
	)
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			stream := fmt.Sprintf("resource/concurrent-%d", w)
			for i := range appends {
				var snap *persistence.Snapshot
				if i%5 == 4 {
					snap = &persistence.Snapshot{Seq: uint64(i + 1), Data: fmt.Appendf(nil, "state %d", i+1)}
				}
				if err := s.Append(ctx, persistence.Batch{Stream: stream, ExpectedSeq: uint64(i), Events: payloads(stream, 1), Snapshot: snap}); err != nil {
					t.Errorf("Append(%q, %d) = %v, want nil", stream, i, err)
					return
				}
				if _, err := s.LastSeq(ctx, stream); err != nil {
					t.Errorf("LastSeq(%q) = %v, want nil", stream, err)
					return
				}
			}
		})
	}
	wg.Wait()
	for w := range writers {
		stream := fmt.Sprintf("resource/concurrent-%d", w)
		if got, err := s.LastSeq(ctx, stream); got != appends || err != nil {
			t.Errorf("LastSeq(%q) = %d, %v, want %d, nil", stream, got, err, appends)
		}
		if got, ok, err := s.LoadSnapshot(ctx, stream); got.Seq != appends || !ok || err != nil {
			t.Errorf("LoadSnapshot(%q) = seq %d, %v, %v, want %d, true, nil", stream, got.Seq, ok, err, appends)
		}
	}
}
