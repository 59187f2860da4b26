// Package conformance is the test suite every persistence.Store must pass.
// A store package runs it from its own tests:
//
//	func TestConformance(t *testing.T) {
//		conformance.Run(t, func(t *testing.T) conformance.Opener {
//			path := filepath.Join(t.TempDir(), "bookd.db")
//			return func(t *testing.T) persistence.Store {
//				s, err := sqlite.Open(t.Context(), path, sqlite.Options{})
//				if err != nil {
//					t.Fatalf("Open(%q) = %v", path, err)
//				}
//				return s
//			}
//		})
//	}
//
// The suite checks the contracts written in package persistence, and pins a
// few things they leave open so that every store behaves alike:
//   - times (Event.At, CreatedAt) come back in UTC with at least millisecond
//     precision;
//   - an empty and a nil Listing.Attributes are the same;
//   - ListResources of an unknown listing is empty, not an error;
//   - ListListings with Limit < 1 is an error;
//   - Append with a done context fails and writes nothing;
//   - a ConflictError from a plain (not racing) Append carries ActualSeq.
//
// It is a non-test package so that every store package can import it; it
// imports nothing but package persistence and the standard library.
package conformance

import (
	"sync"
	"testing"
	"time"

	"github.com/bookd/bookd/persistence"
)

// Factory prepares a new, empty place for data that only the calling test
// uses — a file in t.TempDir(), a fresh PostgreSQL database — registers its
// removal with t.Cleanup, and returns an Opener for it. The suite calls it
// once per subtest, so subtests never see each other's data.
type Factory func(t *testing.T) Opener

// Opener opens a new Store over the place its Factory prepared; it fails t
// (t.Fatal) when it cannot. Every call returns a distinct Store over the same
// data: the suite reopens a closed store to check durability, and holds two
// open at once to play two nodes that share one database. The suite closes
// every Store it opens, once, before the Factory's cleanup runs; an Opener
// must not register Close itself.
type Opener func(t *testing.T) persistence.Store

// Run runs the whole suite as subtests of t: Journal, Fence, Catalog, Ping
// and Reopen. Subtests do not call t.Parallel.
func Run(t *testing.T, factory Factory) {
	t.Helper()
	t.Run("Journal", func(t *testing.T) { testJournal(t, factory) })
	t.Run("Fence", func(t *testing.T) { testFence(t, factory) })
	t.Run("Wakes", func(t *testing.T) { testWakes(t, factory) })
	t.Run("Catalog", func(t *testing.T) { testCatalog(t, factory) })
	t.Run("Accounts", func(t *testing.T) { testAccounts(t, factory) })
	t.Run("Ping", func(t *testing.T) {
		s := fresh(t, factory)
		if err := s.Ping(t.Context()); err != nil {
			t.Errorf("Ping() = %v, want nil", err)
		}
	})
	t.Run("Reopen", func(t *testing.T) { testReopen(t, factory) })
}

// start opens a store with open and closes it when t ends, unless the
// returned stop closed it before. A Close error fails t.
func start(t *testing.T, open Opener) (s persistence.Store, stop func()) {
	t.Helper()
	s = open(t)
	if s == nil {
		t.Fatal("Opener returned a nil Store")
	}
	var once sync.Once
	stop = func() {
		once.Do(func() {
			if err := s.Close(); err != nil {
				t.Errorf("Close() = %v, want nil", err)
			}
		})
	}
	t.Cleanup(stop)
	return s, stop
}

// fresh returns an open store over new, empty data, closed when t ends.
func fresh(t *testing.T, factory Factory) persistence.Store {
	t.Helper()
	s, _ := start(t, factory(t))
	return s
}

// timeTolerance is how far a stored time may be from the one given: the
// suite asks for millisecond precision.
const timeTolerance = time.Millisecond

// sameTime reports whether got is want to the millisecond, in UTC.
func sameTime(got, want time.Time) bool {
	return got.Location() == time.UTC && got.Sub(want).Abs() < timeTolerance
}

// testReopen checks that everything written survives Close and a new Open.
func testReopen(t *testing.T, factory Factory) {
	ctx := t.Context()
	open := factory(t)
	s, stop := start(t, open)

	const stream = "resource/reopen"
	events := payloads("reopen", 5)
	mustAppend(t, s, stream, 0, events[:3], nil)
	mustAppend(t, s, stream, 3, events[3:], &persistence.Snapshot{Seq: 5, Data: []byte("state at 5")})
	p, l, r := sampleCatalog()
	if err := s.CreateProvider(ctx, p); err != nil {
		t.Fatalf("CreateProvider(%q) = %v, want nil", p.ID, err)
	}
	if err := s.CreateListing(ctx, l); err != nil {
		t.Fatalf("CreateListing(%q) = %v, want nil", l.ID, err)
	}
	if err := s.CreateResource(ctx, r); err != nil {
		t.Fatalf("CreateResource(%q) = %v, want nil", r.ID, err)
	}
	stop()

	s, _ = start(t, open)
	checkEvents(t, loadAll(t, s, stream, 0), 0, events)
	if got, err := s.LastSeq(ctx, stream); err != nil || got != 5 {
		t.Errorf("LastSeq(%q) after reopen = %d, %v, want 5, nil", stream, got, err)
	}
	snap, ok, err := s.LoadSnapshot(ctx, stream)
	if err != nil || !ok || snap.Seq != 5 || string(snap.Data) != "state at 5" {
		t.Errorf("LoadSnapshot(%q) after reopen = %d %q, %v, %v, want 5 %q, true, nil", stream, snap.Seq, snap.Data, ok, err, "state at 5")
	}
	if gp, err := s.GetProvider(ctx, p.ID); err != nil {
		t.Errorf("GetProvider(%q) after reopen = %v, want nil", p.ID, err)
	} else {
		checkProvider(t, gp, p)
	}
	if gl, err := s.GetListing(ctx, l.ID); err != nil {
		t.Errorf("GetListing(%q) after reopen = %v, want nil", l.ID, err)
	} else {
		checkListing(t, gl, l)
	}
	if gr, err := s.GetResource(ctx, r.ID); err != nil {
		t.Errorf("GetResource(%q) after reopen = %v, want nil", r.ID, err)
	} else {
		checkResource(t, gr, r)
	}
	if empty, err := s.IsEmpty(ctx); err != nil || empty {
		t.Errorf("IsEmpty() after reopen = %v, %v, want false, nil", empty, err)
	}

	// The fence holds across the restart: the old position conflicts, the
	// reloaded one appends.
	if err := s.Append(ctx, persistence.Batch{Stream: stream, ExpectedSeq: 3, Events: payloads("stale", 1)}); !isConflict(err, stream, 3, 5) {
		t.Errorf("Append(%q, 3) after reopen = %v, want a conflict at 5", stream, err)
	}
	mustAppend(t, s, stream, 5, payloads("after", 1), nil)
}
