package persistence

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// FaultyJournal wraps a real Journal and, on command, makes its appends
// fail, fail after committing, or wait; it records every append and every
// Load (so a test can see batch sizes and where a replay started). It exists
// for tests of code that writes a journal (the resource actor's group
// commit, its error handling, its fence), so that they run against a real
// store and fake only the failure. It is safe for concurrent use.
//
// Faults are queued: each append takes the oldest one, if any, after
// passing the block. Appends outside the scope (see Scope) pass through
// untouched, except that they are recorded. Reads always go to the wrapped
// journal.
type FaultyJournal struct {
	inner Journal

	mu      sync.Mutex
	scope   string
	faults  []fault
	gate    chan struct{} // non-nil while blocking; closed by Release
	waiting int
	appends []AppendCall
	loads   []LoadCall
	snaps   []SnapshotCall
}

var _ Journal = (*FaultyJournal)(nil)

// fault is one queued failure.
type fault struct {
	err error
	// afterCommit: the append is done on the wrapped journal first and err is
	// returned only if it succeeded (the ambiguous outcome).
	afterCommit bool
}

// AppendCall is one Append that returned, as the FaultyJournal saw it.
type AppendCall struct {
	Stream      string
	ExpectedSeq uint64
	// Events is the number of events the call carried.
	Events int
	// Snapshot is set when the call carried a snapshot.
	Snapshot bool
	// Committed is set when the wrapped journal accepted the events (also
	// when the caller was then told otherwise).
	Committed bool
	// Err is what the caller got.
	Err error
}

// SnapshotCall is one SaveSnapshot that returned.
type SnapshotCall struct {
	Stream string
	Seq    uint64
	Err    error
}

// LoadCall is one Load, as the FaultyJournal saw it.
type LoadCall struct {
	Stream   string
	AfterSeq uint64
}

// NewFaultyJournal returns a FaultyJournal over j that, until told
// otherwise, passes everything through.
func NewFaultyJournal(j Journal) *FaultyJournal {
	return &FaultyJournal{inner: j}
}

// Scope limits faults and blocking to appends to stream; "" (the default)
// means every stream.
func (f *FaultyJournal) Scope(stream string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.scope = stream
}

// FailNext makes the next n appends return err and write nothing.
func (f *FaultyJournal) FailNext(n int, err error) { f.queue(n, fault{err: err}) }

// FailNextAfterCommit makes the next n appends write their events and then
// return err: the outcome a caller cannot tell from a failure (a lost
// acknowledgement, a commit whose reply timed out). An append that the
// wrapped journal refuses returns that journal's error and uses up the fault
// all the same.
func (f *FaultyJournal) FailNextAfterCommit(n int, err error) {
	f.queue(n, fault{err: err, afterCommit: true})
}

func (f *FaultyJournal) queue(n int, ft fault) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for range n {
		f.faults = append(f.faults, ft)
	}
}

// Block makes appends from now on wait, before they write anything, until
// Release or the end of their context (they then return the context's
// error and use up no fault).
func (f *FaultyJournal) Block() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.gate == nil {
		f.gate = make(chan struct{})
	}
}

// Release lets the waiting appends through and ends blocking.
func (f *FaultyJournal) Release() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.gate != nil {
		close(f.gate)
		f.gate = nil
	}
}

// Reset drops the queued faults, releases and ends blocking, and widens the
// scope to every stream again. The records are kept.
func (f *FaultyJournal) Reset() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.faults, f.scope = nil, ""
	if f.gate != nil {
		close(f.gate)
		f.gate = nil
	}
}

// Waiting returns the number of appends waiting for Release now.
func (f *FaultyJournal) Waiting() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.waiting
}

// Appends returns the appends that have returned, in the order they did.
func (f *FaultyJournal) Appends() []AppendCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]AppendCall(nil), f.appends...)
}

// Loads returns the Load calls so far, in the order they started.
func (f *FaultyJournal) Loads() []LoadCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]LoadCall(nil), f.loads...)
}

// Append waits while blocked, takes the next fault, and appends to the
// wrapped journal unless the fault says otherwise.
func (f *FaultyJournal) Append(ctx context.Context, b Batch) error {
	call := AppendCall{Stream: b.Stream, ExpectedSeq: b.ExpectedSeq, Events: len(b.Events), Snapshot: b.Snapshot != nil}
	call.Err = f.append(ctx, &call, b)
	f.mu.Lock()
	f.appends = append(f.appends, call)
	f.mu.Unlock()
	return call.Err
}

func (f *FaultyJournal) append(ctx context.Context, call *AppendCall, b Batch) error {
	f.mu.Lock()
	inScope := f.scope == "" || f.scope == call.Stream
	gate := f.gate
	if !inScope {
		gate = nil
	}
	if gate != nil {
		f.waiting++
	}
	f.mu.Unlock()

	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
		}
		f.mu.Lock()
		f.waiting--
		f.mu.Unlock()
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("faulty journal: blocked append to %q: %w", call.Stream, err)
		}
	}

	var ft *fault
	f.mu.Lock()
	if inScope && len(f.faults) > 0 {
		ft = &f.faults[0]
		f.faults = f.faults[1:]
	}
	f.mu.Unlock()

	if ft != nil && !ft.afterCommit {
		return ft.err
	}
	if err := f.inner.Append(ctx, b); err != nil {
		return err
	}
	call.Committed = true
	if ft != nil {
		return ft.err
	}
	return nil
}

// Load records the call and reads from the wrapped journal.
func (f *FaultyJournal) Load(ctx context.Context, stream string, afterSeq uint64, fn func(Event) error) error {
	f.mu.Lock()
	f.loads = append(f.loads, LoadCall{Stream: stream, AfterSeq: afterSeq})
	f.mu.Unlock()
	return f.inner.Load(ctx, stream, afterSeq, fn)
}

// LastSeq reads from the wrapped journal.
func (f *FaultyJournal) LastSeq(ctx context.Context, stream string) (uint64, error) {
	return f.inner.LastSeq(ctx, stream)
}

// DueWakes reads from the wrapped journal.
func (f *FaultyJournal) DueWakes(ctx context.Context, now time.Time, limit int) ([]Wake, error) {
	return f.inner.DueWakes(ctx, now, limit)
}

// SaveSnapshot records the call and saves to the wrapped journal; faults
// and blocks apply to appends only.
func (f *FaultyJournal) SaveSnapshot(ctx context.Context, stream string, snap Snapshot) error {
	err := f.inner.SaveSnapshot(ctx, stream, snap)
	f.mu.Lock()
	f.snaps = append(f.snaps, SnapshotCall{Stream: stream, Seq: snap.Seq, Err: err})
	f.mu.Unlock()
	return err
}

// Snapshots returns the SaveSnapshot calls that returned so far, in order.
func (f *FaultyJournal) Snapshots() []SnapshotCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]SnapshotCall(nil), f.snaps...)
}

// LoadSnapshot reads from the wrapped journal.
func (f *FaultyJournal) LoadSnapshot(ctx context.Context, stream string) (Snapshot, bool, error) {
	return f.inner.LoadSnapshot(ctx, stream)
}
