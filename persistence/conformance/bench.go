package conformance

import (
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/bookd/bookd/persistence"
)

// The journal benchmarks every store runs, so that their numbers compare.
// open returns a fresh store that it closes when b ends.

// benchEvents returns n events of a typical size (a marshalled Hold).
func benchEvents(n int) [][]byte {
	evs := make([][]byte, n)
	for i := range evs {
		evs[i] = fmt.Appendf(nil, "%064d", i)
	}
	return evs
}

// BenchAppend measures one durable Append to one stream: a single event, and the batch of 64 a hot resource's group commit
// writes. Compare events/s between the two: that ratio is what group commit
// buys.
func BenchAppend(b *testing.B, open func(b *testing.B) persistence.Store) {
	for _, n := range []int{1, 64} {
		b.Run(fmt.Sprintf("events=%d", n), func(b *testing.B) {
			s := open(b)
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

// BenchAppendParallel measures single-event Appends from many goroutines,
// each on its own stream, as many resource actors of one node do.
func BenchAppendParallel(b *testing.B, open func(b *testing.B) persistence.Store) {
	s := open(b)
	ctx := b.Context()
	events := benchEvents(1)
	var next atomic.Int64
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

// BenchLoad measures reading back 1,000 events, as an activation
// without a snapshot would.
func BenchLoad(b *testing.B, open func(b *testing.B) persistence.Store) {
	s := open(b)
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
