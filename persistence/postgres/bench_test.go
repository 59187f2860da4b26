package postgres

import (
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/bookd/bookd/persistence"
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

// benchEvents returns n events of a typical size (a marshalled Hold).
func benchEvents(n int) [][]byte {
	evs := make([][]byte, n)
	for i := range evs {
		evs[i] = fmt.Appendf(nil, "%064d", i)
	}
	return evs
}

// BenchmarkAppend measures one durable Append (fsync on, synchronous
// commit) to one stream: a single event, and the batch of 64 a hot
// resource's group commit writes. Compare events/s between the two: that
// ratio is what group commit buys.
func BenchmarkAppend(b *testing.B) {
	for _, n := range []int{1, 64} {
		b.Run(fmt.Sprintf("events=%d", n), func(b *testing.B) {
			s := benchStore(b)
			events := benchEvents(n)
			ctx := b.Context()
			seq := uint64(0)
			for b.Loop() {
				if err := s.Append(ctx, persistence.Batch{Stream: "resource/bench", ExpectedSeq: seq, Events: events}); err != nil {
					b.Fatalf("Append(%d) = %v", seq, err)
				}
				seq += uint64(n)
			}
			b.ReportMetric(float64(seq)/b.Elapsed().Seconds(), "events/s")
		})
	}
}

// BenchmarkAppendParallel measures single-event Appends from many goroutines,
// each on its own stream, as many resource actors of one node do: their
// commits share the pool and the server's WAL flushes.
func BenchmarkAppendParallel(b *testing.B) {
	s := benchStore(b)
	ctx := b.Context()
	events := benchEvents(1)
	var next atomic.Int64
	b.SetParallelism(4)
	b.RunParallel(func(pb *testing.PB) {
		stream := fmt.Sprintf("resource/bench-%d", next.Add(1))
		seq := uint64(0)
		for pb.Next() {
			if err := s.Append(ctx, persistence.Batch{Stream: stream, ExpectedSeq: seq, Events: events}); err != nil {
				b.Errorf("Append(%q, %d) = %v", stream, seq, err)
				return
			}
			seq++
		}
	})
}

// BenchmarkLoad measures reading back 1,000 events, as an activation
// without a snapshot would.
func BenchmarkLoad(b *testing.B) {
	s := benchStore(b)
	ctx := b.Context()
	const n = 1000
	if err := s.Append(ctx, persistence.Batch{Stream: "resource/bench", ExpectedSeq: 0, Events: benchEvents(n), Snapshot: &persistence.Snapshot{Seq: n, Data: []byte("s")}}); err != nil {
		b.Fatalf("Append = %v", err)
	}
	for b.Loop() {
		got := 0
		if err := s.Load(ctx, "resource/bench", 0, func(persistence.Event) error { got++; return nil }); err != nil || got != n {
			b.Fatalf("Load = %d events, %v, want %d, nil", got, err, n)
		}
	}
}
