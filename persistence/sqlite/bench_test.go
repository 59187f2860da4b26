package sqlite

import (
	"path/filepath"
	"testing"

	"github.com/bookd/bookd/persistence"
	"github.com/bookd/bookd/persistence/conformance"
)

// benchStore opens a store in b's temp folder, closed when b ends.
func benchStore(b *testing.B) *Store {
	b.Helper()
	s, err := Open(b.Context(), filepath.Join(b.TempDir(), "bench.db"), Options{})
	if err != nil {
		b.Fatalf("Open = %v", err)
	}
	b.Cleanup(func() {
		if err := s.Close(); err != nil {
			b.Errorf("Close() = %v", err)
		}
	})
	return s
}

func openBench(b *testing.B) persistence.Store { return benchStore(b) }

// BenchmarkAppend: one event and the batch of 64 a hot resource's group
// commit writes; the events/s ratio is what group commit buys.
func BenchmarkAppend(b *testing.B) { conformance.BenchAppend(b, openBench) }

// BenchmarkAppendParallel: single-event appends from many streams at once.
func BenchmarkAppendParallel(b *testing.B) {
	conformance.BenchAppendParallel(b, openBench)
}

// BenchmarkLoad: reading back 1,000 events, as an activation without a
// snapshot would.
func BenchmarkLoad(b *testing.B) { conformance.BenchLoad(b, openBench) }
