package conformance

import (
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/bookd/bookd/persistence"
)

// testFence races writers on one stream, the way two activations of one
// resource would after a split brain or a slow handover.
func testFence(t *testing.T, factory Factory) {
	tests := []struct {
		name    string
		writers int
		stores  int // writers are spread over this many stores on the same data
	}{
		{"2 writers", 2, 1},
		{"4 writers", 4, 1},
		{"8 writers", 8, 1},
		{"2 stores 2 writers", 2, 2},
		{"2 stores 6 writers", 6, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { testFenceRounds(t, factory, tt.writers, tt.stores) })
	}
	t.Run("retry", func(t *testing.T) { testFenceRetry(t, factory) })
}

// testFenceRounds runs rounds in which every writer appends at the same
// expected seq at once: exactly one commits, the others get conflicts, and
// the stream ends as the winners wrote it, without gaps or duplicates.
func testFenceRounds(t *testing.T, factory Factory, writers, stores int) {
	const (
		rounds = 50
		stream = "resource/fenced"
	)
	ctx := t.Context()
	open := factory(t)
	ss := make([]persistence.Store, stores)
	for i := range ss {
		ss[i], _ = start(t, open)
	}

	var won [][]byte // won[r] is the event of round r's winner
	for r := range rounds {
		expected := uint64(r)
		data := make([][]byte, writers)
		errs := make([]error, writers)
		go1 := make(chan struct{})
		var wg sync.WaitGroup
		for w := range writers {
			data[w] = fmt.Appendf(nil, "round %d writer %d", r, w)
			s := ss[w%stores]
			wg.Go(func() {
				<-go1
				errs[w] = s.Append(ctx, persistence.Batch{Stream: stream, ExpectedSeq: expected, Events: [][]byte{data[w]}})
			})
		}
		close(go1)
		wg.Wait()

		winner := -1
		for w, err := range errs {
			var ce *persistence.ConflictError
			switch {
			case err == nil:
				if winner >= 0 {
					t.Fatalf("round %d: Append(%q, %d) = nil for writers %d and %d, want nil for one only", r, stream, expected, winner, w)
				}
				winner = w
			case errors.As(err, &ce) && errors.Is(err, persistence.ErrConflict):
				// ActualSeq is the winner's seq, or 0 when the store could
				// not tell.
				if ce.Stream != stream || ce.ExpectedSeq != expected || (ce.ActualSeq != expected+1 && ce.ActualSeq != 0) {
					t.Errorf("round %d: Append(%q, %d) = %+v, want a conflict on %q at %d with ActualSeq %d", r, stream, expected, *ce, stream, expected, expected+1)
				}
			default:
				t.Fatalf("round %d: Append(%q, %d) by writer %d = %v, want nil or a *ConflictError", r, stream, expected, w, err)
			}
		}
		if winner < 0 {
			t.Fatalf("round %d: no writer's Append(%q, %d) committed, want one", r, stream, expected)
		}
		won = append(won, data[winner])
	}

	for i, s := range ss {
		checkEvents(t, loadAll(t, s, stream, 0), 0, won)
		if got, err := s.LastSeq(ctx, stream); got != rounds || err != nil {
			t.Errorf("store %d: LastSeq(%q) = %d, %v, want %d, nil", i, stream, got, err, rounds)
		}
	}
}

// testFenceRetry has writers that each must get their events in, retrying
// from LastSeq after every conflict, as an actor restarted from the journal
// would: every event ends up in the stream exactly once, without gaps.
func testFenceRetry(t *testing.T, factory Factory) {
	const (
		writers = 4
		each    = 10
		stream  = "resource/retried"
	)
	ctx := t.Context()
	open := factory(t)
	ss := []persistence.Store{}
	for range 2 {
		s, _ := start(t, open)
		ss = append(ss, s)
	}
	var wg sync.WaitGroup
	for w := range writers {
		s := ss[w%len(ss)]
		wg.Go(func() {
			for i := 0; i < each; {
				seq, err := s.LastSeq(ctx, stream)
				if err != nil {
					t.Errorf("LastSeq(%q) = %v, want nil", stream, err)
					return
				}
				err = s.Append(ctx, persistence.Batch{Stream: stream, ExpectedSeq: seq, Events: [][]byte{fmt.Appendf(nil, "writer %d event %d", w, i)}})
				switch {
				case err == nil:
					i++
				case errors.Is(err, persistence.ErrConflict):
				default:
					t.Errorf("Append(%q, %d) = %v, want nil or a conflict", stream, seq, err)
					return
				}
			}
		})
	}
	wg.Wait()

	events := loadAll(t, ss[0], stream, 0)
	if len(events) != writers*each {
		t.Errorf("Load(%q) = %d events, want %d", stream, len(events), writers*each)
	}
	seen := map[string]bool{}
	next := make([]int, writers) // each writer's events keep their order
	for i, e := range events {
		if e.Seq != uint64(i+1) {
			t.Errorf("event %d: Seq = %d, want %d", i, e.Seq, i+1)
		}
		if seen[string(e.Data)] {
			t.Errorf("event seq %d: %q is in the stream twice", e.Seq, e.Data)
		}
		seen[string(e.Data)] = true
		var w, n int
		if _, err := fmt.Sscanf(string(e.Data), "writer %d event %d", &w, &n); err != nil || w < 0 || w >= writers {
			t.Errorf("event seq %d: Data = %q, want one a writer appended", e.Seq, e.Data)
			continue
		}
		if n != next[w] {
			t.Errorf("event seq %d: %q, want writer %d's event %d", e.Seq, e.Data, w, next[w])
		}
		next[w] = n + 1
	}
}
