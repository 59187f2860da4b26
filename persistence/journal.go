package persistence

import (
	"context"
	"time"
)

// Event is one entry of a stream. Data is opaque to the store (the actors
// write marshalled protobuf); Seq starts at 1 and has no gaps.
type Event struct {
	Seq  uint64
	Data []byte
	// At is when the store accepted the event (set by the store on append).
	At time.Time
}

// Snapshot is the state of a stream's owner after the event Seq.
type Snapshot struct {
	Seq  uint64
	Data []byte
}

// Journal stores event streams, one per actor (for example "resource/<id>").
//
// The conditional append is the fence that keeps two activations of one actor
// from both committing: Append succeeds only when the last event of the
// stream has sequence number expectedSeq. Everything else returns a
// *ConflictError and writes nothing.
type Journal interface {
	// Append writes events as seq expectedSeq+1, expectedSeq+2, … in one
	// transaction: all of them or none. events must not be empty. When snap is
	// not nil it is saved in the same transaction; snap.Seq must then be
	// expectedSeq+len(events).
	// It returns a *ConflictError when the stream's last seq is not expectedSeq;
	// then nothing was written. Once Append returns nil the events are
	// durable. Any other error leaves the outcome unknown (the commit may have
	// happened and its acknowledgement been lost): the caller must reload the
	// stream before it decides anything more.
	Append(ctx context.Context, stream string, expectedSeq uint64, events [][]byte, snap *Snapshot) error

	// Load calls fn for every event of stream with Seq > afterSeq, in order.
	// It stops at and returns the first error fn returns.
	Load(ctx context.Context, stream string, afterSeq uint64, fn func(Event) error) error

	// LastSeq returns the seq of the last event of stream, 0 when it has none.
	LastSeq(ctx context.Context, stream string) (uint64, error)

	// LoadSnapshot returns the newest snapshot of stream; ok is false when the
	// stream has none.
	LoadSnapshot(ctx context.Context, stream string) (snap Snapshot, ok bool, err error)
}
