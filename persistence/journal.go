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

// Batch is one conditional append to a stream.
type Batch struct {
	Stream string
	// ExpectedSeq is the seq of the stream's last event as the writer knows it.
	ExpectedSeq uint64
	// Events are appended as ExpectedSeq+1, ExpectedSeq+2, …; at least one.
	Events [][]byte
	// Snapshot, when not nil, is saved in the same transaction; its Seq must
	// be ExpectedSeq+len(Events).
	Snapshot *Snapshot
	// Wake, when not nil, sets in the same transaction when the stream's
	// owner must be woken even if nobody sends it anything (a hold's expiry);
	// the zero time clears it. Nil leaves the wake time as it is.
	Wake *time.Time
}

// Wake is a stream whose owner asked to be woken at At.
type Wake struct {
	Stream string
	At     time.Time
}

// Journal stores event streams, one per actor (for example "resource/<id>"),
// and the wake times of their owners (durable timers).
//
// The conditional append is the fence that keeps two activations of one actor
// from both committing: Append succeeds only when the last event of the
// stream has sequence number b.ExpectedSeq; at any other seq it returns a
// *ConflictError and writes nothing.
type Journal interface {
	// Append writes b's events, snapshot and wake time in one transaction:
	// all of them or none.
	// It returns a *ConflictError when the stream's last seq is not
	// b.ExpectedSeq, or when the store could not tell because another writer
	// raced it (a serialization failure); either way nothing was written and
	// the writer must reload before it decides anything more. Once Append returns nil the
	// batch is durable. Any other error leaves the outcome unknown (the commit
	// may have happened and its acknowledgement been lost): the caller must
	// reload the stream before it decides anything more.
	Append(ctx context.Context, b Batch) error

	// Load calls fn for every event of stream with Seq > afterSeq, in order.
	// It stops at and returns the first error fn returns.
	Load(ctx context.Context, stream string, afterSeq uint64, fn func(Event) error) error

	// LastSeq returns the seq of the last event of stream, 0 when it has none.
	LastSeq(ctx context.Context, stream string) (uint64, error)

	// SaveSnapshot saves snap as the newest snapshot of stream on its own,
	// outside any batch, so that a large snapshot does not delay the callers
	// of a batch. snap.Seq must be the seq of an event the stream has: a
	// snapshot describes committed history only. A stored snapshot with a
	// higher seq is kept (a slow writer never replaces a newer snapshot);
	// saving at the stored seq again changes nothing. It returns an error
	// matching ErrNotFound, having saved nothing, when the stream has no
	// event snap.Seq.
	SaveSnapshot(ctx context.Context, stream string, snap Snapshot) error

	// LoadSnapshot returns the newest snapshot of stream; ok is false when the
	// stream has none.
	LoadSnapshot(ctx context.Context, stream string) (snap Snapshot, ok bool, err error)

	// DueWakes returns up to limit streams whose wake time is at or before
	// now, earliest first.
	DueWakes(ctx context.Context, now time.Time, limit int) ([]Wake, error)
}
