package postgres

import (
	"testing"

	"github.com/bookd/bookd/persistence"
	"github.com/bookd/bookd/persistence/conformance"
	"github.com/bookd/bookd/persistence/testserver"
)

// benchStore opens a store on a fresh database of the shared server,
// closed when b ends.
func benchStore(b *testing.B) *Store {
	b.Helper()
	url := testserver.DatabaseT(b)
	s, err := Open(b.Context(), url, Options{})
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
	b.SetParallelism(4)
	conformance.BenchAppendParallel(b, openBench)
}

// BenchmarkLoad: reading back 1,000 events, as an activation without a
// snapshot would.
func BenchmarkLoad(b *testing.B) { conformance.BenchLoad(b, openBench) }
