package resource

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/cluster"
	"google.golang.org/protobuf/proto"

	bookdv1 "github.com/bookd/bookd/messages/bookd/v1"
	"github.com/bookd/bookd/persistence"
)

// Drain asks an actor to stop taking commands, commit what it has decided,
// answer its callers and stop. The actor answers DrainDone when it is done.
type Drain struct{}

// DrainDone answers Drain.
type DrainDone struct{}

// expiryTick is sent by the actor's timer when the first hold may be due.
type expiryTick struct{}

// writeDone is sent by the batch writer when a batch write ends.
type writeDone struct {
	b   *batch
	err error
}

// snapshotDone is sent by the batch writer when the snapshot taken with a
// batch was saved, or could not be (also when the batch failed).
type snapshotDone struct {
	b   *batch
	err error
}

// waiter is a caller waiting for a batch to commit, and its answer.
type waiter struct {
	to    *actor.PID
	reply proto.Message
}

// batch is a group of decisions written in one journal append.
type batch struct {
	events [][]byte
	// buf is where the events are encoded; a batch that grew has copies of
	// its earlier events in it, and they keep the array they were made in.
	buf     []byte
	waiters []waiter
	// lastSeq is the seq of the batch's last event once decided.
	lastSeq uint64
	// snapshot, when set, is the state at lastSeq; the writer saves it
	// after the batch commits, without delaying the batch's callers.
	snapshot *bookdv1.ResourceSnapshot
	// wakeMs is when the first held hold expires once the batch is applied
	// (0: none); it is the resource's durable wake time after this batch.
	wakeMs int64
	// change is what the batch changes, for watchers (publish.go).
	change change
}

// Actor is one resource's actor. Create it with Props.
type Actor struct {
	cfg    Config
	stores Stores
	log    *slog.Logger

	id     string
	self   *actor.PID
	system *actor.ActorSystem

	// st is the state including every decision made, committed or not.
	st *state
	// committedSeq is the journal's seq as last confirmed by the store.
	committedSeq uint64
	lastSnapSeq  uint64
	// snapshotting is the batch whose snapshot is being saved.
	snapshotting *batch
	// wakeMs is the wake time the journal holds for this resource (0: none).
	wakeMs int64
	epoch  uint64
	ttl    time.Duration

	// inflight is the batch being written; pending are decided, not yet sent.
	inflight *batch
	pending  []*batch
	// bufHint is the encoded size of the last batch sent, which the next
	// batch's buffer starts with: batches under load are of a similar size.
	bufHint int

	// missing is set when the resource does not exist in the catalog.
	missing bool
	// broken is set when the actor cannot serve (load failed, fence lost).
	broken error
	// listingID is the resource's listing, read at activation (publish.go).
	listingID string

	timer   *time.Timer
	timerAt int64

	draining bool
	drainers []*actor.PID

	// stopping is set once the actor is on its way out; answers are then
	// held in afterStop and sent on *actor.Stopped. Until then protoactor
	// still routes requests to this PID, so a caller answered earlier would
	// retry into this actor again (and a request that reaches the stopped
	// mailbox gets a dead letter: cluster.StopAware).
	stopping  bool
	afterStop []stopAnswer
}

// stopAnswer is an answer held back until the actor has stopped.
type stopAnswer struct {
	to  *actor.PID
	msg any
}

// Props returns the props of resource actors for the cluster kind Kind.
func Props(cfg Config, stores Stores) *actor.Props {
	return actor.PropsFromProducer(func() actor.Actor {
		return &Actor{cfg: cfg, stores: stores, log: cfg.Logger}
	})
}

// Receive handles one message; protoactor calls it from one goroutine at a time.
func (a *Actor) Receive(ctx actor.Context) {
	a.receive(ctx)
	if a.st != nil && a.broken == nil && !a.missing {
		// Whatever the message decided (an expiry found on the way counts)
		// goes to the journal now if no write is in flight.
		a.flush(ctx)
	}
}

func (a *Actor) receive(ctx actor.Context) {
	switch msg := ctx.Message().(type) {
	case *actor.Started:
		a.self = ctx.Self()
		a.system = ctx.ActorSystem()
	case *cluster.ClusterInit:
		a.id = msg.Identity.GetIdentity()
		a.log = a.cfg.Logger.With("subsystem", "resource", "resource_id", a.id)
		a.activate()
		if a.cfg.IdleTimeout > 0 {
			ctx.SetReceiveTimeout(a.cfg.IdleTimeout)
		}
	case *actor.ReceiveTimeout:
		a.passivate(ctx)
	case *actor.Stopping:
		a.stopping = true
		a.stopTimer()
		if a.inflight != nil || len(a.pending) > 0 {
			// Not reached by Drain or a lost fence; a plain stop voids what is
			// not committed and its callers retry.
			a.failAll(ctx, "the resource actor stopped")
		}
	case *actor.Stopped:
		for _, s := range a.afterStop {
			a.tell(s.to, s.msg)
		}
		a.afterStop = nil
	case *bookdv1.PlaceHold, *bookdv1.ConfirmHold, *bookdv1.ReleaseHold, *bookdv1.CancelHold,
		*bookdv1.GetHold, *bookdv1.GetAvailability, *bookdv1.Wake:
		if a.refuse(ctx) {
			return
		}
		// One instant per message: holds due by now expire before the
		// command is decided, so nothing is decided against a stale hold.
		now := a.now()
		a.expire(now)
		if a.refuse(ctx) { // the expiry broke the actor
			return
		}
		a.handle(ctx, now)
	case expiryTick:
		a.timer = nil
		if a.st != nil && a.broken == nil && !a.missing {
			a.expire(a.now())
			a.armTimer()
		}
	case *writeDone:
		a.written(ctx, msg)
	case *snapshotDone:
		a.snapshotSaved(msg)
	case *Drain:
		a.draining = true
		a.drainers = append(a.drainers, ctx.Sender())
		a.maybeStop(ctx)
	}
}

// handle decides one command at now.
func (a *Actor) handle(ctx actor.Context, now time.Time) {
	switch msg := ctx.Message().(type) {
	case *bookdv1.PlaceHold:
		a.command(ctx, a.st.decidePlace(msg, now, a.ttl, a.committedSeq), msg.GetHoldId())
	case *bookdv1.ConfirmHold:
		a.command(ctx, a.st.decideConfirm(msg.GetHoldId(), msg.GetOwner(), now), msg.GetHoldId())
	case *bookdv1.ReleaseHold:
		a.command(ctx, a.st.decideRelease(msg.GetHoldId(), msg.GetOwner(), now), msg.GetHoldId())
	case *bookdv1.CancelHold:
		a.command(ctx, a.st.decideCancel(msg.GetHoldId(), msg.GetOwner(), now), msg.GetHoldId())
	case *bookdv1.GetHold:
		h, rej := a.st.lookup(msg.GetHoldId(), msg.GetOwner())
		if rej != nil {
			a.answer(ctx.Sender(), rej)
			return
		}
		a.read(ctx, holdReply(h))
	case *bookdv1.Wake:
		// The due holds were expired on the way in; answer once committed.
		a.read(ctx, &bookdv1.WakeReply{Seq: a.st.seq})
	case *bookdv1.GetAvailability:
		r := a.st.availability(msg, now)
		if r.Availability != nil {
			r.Availability.Epoch = a.epoch
		}
		a.read(ctx, r)
	}
}

func (a *Actor) now() time.Time { return a.cfg.Now() }

// refuse answers a command that the actor cannot take now and reports
// whether it did. Reads are still served while draining.
func (a *Actor) refuse(ctx actor.Context) bool {
	changes := true
	switch ctx.Message().(type) {
	case *bookdv1.GetHold, *bookdv1.GetAvailability, *bookdv1.Wake:
		changes = false
	}
	var reply proto.Message
	switch {
	case a.missing:
		reply = errorReply(ctx.Message(), bookdv1.ErrorCode_ERROR_CODE_NOT_FOUND, "resource %s does not exist", a.id)
		// Stop, so that a resource created later is found by a new activation.
		a.stop(ctx)
	case a.broken != nil:
		reply = errorReply(ctx.Message(), bookdv1.ErrorCode_ERROR_CODE_UNAVAILABLE, "resource %s is unavailable: %v", a.id, a.broken)
	case a.stopping:
		reply = errorReply(ctx.Message(), bookdv1.ErrorCode_ERROR_CODE_UNAVAILABLE, "resource %s is moving; retry", a.id)
	case a.draining && changes:
		reply = errorReply(ctx.Message(), bookdv1.ErrorCode_ERROR_CODE_UNAVAILABLE, "resource %s is moving; retry", a.id)
	default:
		return false
	}
	a.answer(ctx.Sender(), reply)
	return true
}

// errorReply builds the error reply of the message's reply type.
func errorReply(msg any, code bookdv1.ErrorCode, format string, args ...any) proto.Message {
	e := &bookdv1.Error{Code: code, Detail: fmt.Sprintf(format, args...)}
	switch msg.(type) {
	case *bookdv1.GetAvailability, *bookdv1.AvailabilityReply:
		return &bookdv1.AvailabilityReply{Error: e}
	case *bookdv1.Wake, *bookdv1.WakeReply:
		return &bookdv1.WakeReply{Error: e}
	}
	return &bookdv1.HoldReply{Error: e}
}

func (a *Actor) answer(to *actor.PID, reply any) {
	switch {
	case to == nil:
	case a.stopping:
		a.afterStop = append(a.afterStop, stopAnswer{to: to, msg: reply})
	default:
		a.tell(to, reply)
	}
}

// tell sends msg to a caller as Root.Send does (the system's root has no
// sender middleware), without PID.ref: a caller's reply PID is new for each
// request, and ref caches the process it finds in the PID, an allocation
// per answer.
func (a *Actor) tell(to *actor.PID, msg any) {
	proc, _ := a.system.ProcessRegistry.Get(to)
	proc.SendUserMessage(to, msg)
}

// stop stops the actor after the messages already in its mailbox, which are
// refused (a plain ctx.Stop would drop them unanswered); answers wait for
// *actor.Stopped.
func (a *Actor) stop(ctx actor.Context) {
	if !a.stopping {
		a.stopping = true
		ctx.Poison(a.self)
	}
}

// command takes a decision: a rejection or a repeat is answered once every
// earlier decision is committed (at once when nothing is pending); new events
// are applied, batched, and answered after their batch commits.
func (a *Actor) command(ctx actor.Context, d decision, holdID string) {
	if len(d.events) == 0 {
		if rep, ok := d.reply.(*bookdv1.HoldReply); ok && rep.Error != nil {
			// A rejection changes nothing and promises nothing: answer now.
			a.answer(ctx.Sender(), d.reply)
			return
		}
		a.read(ctx, d.reply)
		return
	}
	for _, ev := range d.events {
		if err := a.decide(ev); err != nil {
			a.answer(ctx.Sender(), errorReply(ctx.Message(), bookdv1.ErrorCode_ERROR_CODE_UNAVAILABLE,
				"resource %s could not decide; retry with the same id", a.id))
			return
		}
	}
	a.wait(ctx.Sender(), holdReply(a.st.holds[holdID]))
}

// read answers with reply once everything decided so far is committed.
func (a *Actor) read(ctx actor.Context, reply proto.Message) {
	if a.inflight == nil && len(a.pending) == 0 {
		a.answer(ctx.Sender(), reply)
		return
	}
	a.wait(ctx.Sender(), reply)
}

// wait queues an answer behind the newest batch.
func (a *Actor) wait(to *actor.PID, reply proto.Message) {
	if to == nil {
		return
	}
	b := a.inflight
	if n := len(a.pending); n > 0 {
		b = a.pending[n-1]
	}
	if b == nil {
		b = &batch{lastSeq: a.st.seq}
		a.pending = append(a.pending, b)
	}
	b.waiters = append(b.waiters, waiter{to: to, reply: reply})
}

// decide applies one new event to the state and adds it to the open batch.
func (a *Actor) decide(ev *bookdv1.Event) error {
	var b *batch
	n := len(a.pending)
	open := n > 0 && len(a.pending[n-1].events) < a.cfg.BatchMax
	if open {
		b = a.pending[n-1]
	} else {
		// Its buffer starts at the size of the last batch sent: batches
		// under load are of a similar size.
		b = &batch{buf: make([]byte, 0, a.bufHint+a.bufHint/4)}
	}
	// The batch's events are encoded one after another into its buffer,
	// not each into an allocation of its own. Each event is a full slice
	// of its bytes, which nothing writes again: a buffer that grows is
	// copied to a new array, and the events before keep the old one.
	start := len(b.buf)
	buf, err := appendEvent(b.buf, ev)
	if err != nil {
		return fmt.Errorf("marshal event: %w", err)
	}
	if err := a.st.apply(ev); err != nil {
		// The decision was made against this very state, so this is a bug.
		// What was decided since the last commit cannot be trusted: start
		// over from the journal in a new activation.
		a.fail(fmt.Errorf("apply own decision: %w", err))
		return err
	}
	if !open {
		a.pending = append(a.pending, b)
	}
	b.buf = buf
	b.events = append(b.events, buf[start:len(buf):len(buf)])
	if a.stores.Events != nil { // nobody to tell otherwise
		b.change.record(a.st, ev)
	}
	b.lastSeq = a.st.seq
	b.wakeMs, _ = a.st.nextExpiry()
	a.armTimer()
	return nil
}

// expire decides the expiry of every hold that is due at now.
func (a *Actor) expire(now time.Time) {
	for _, ev := range a.st.decideExpiry(now) {
		if err := a.decide(ev); err != nil {
			return
		}
	}
}

// flush starts writing the next batch when none is in flight.
func (a *Actor) flush(ctx actor.Context) {
	for a.inflight == nil && len(a.pending) > 0 {
		b := a.pending[0]
		a.pending = a.pending[1:]
		if len(b.events) == 0 {
			// Only waiters: everything before them is committed.
			for _, w := range b.waiters {
				a.answer(w.to, w.reply)
			}
			continue
		}
		a.inflight = b
		a.bufHint = len(b.buf)
		if a.snapshotting == nil && len(a.pending) == 0 && snapshotDue(b.lastSeq-a.lastSnapSeq, len(a.st.holds), a.cfg.SnapshotEvery) {
			// The state is exactly the state after this batch.
			b.snapshot = a.st.snapshot()
			a.snapshotting = b
		}
		var wake *time.Time
		if b.wakeMs != a.wakeMs {
			w := time.Time{} // no held hold left: clear the wake time
			if b.wakeMs != 0 {
				w = time.UnixMilli(b.wakeMs)
			}
			wake = &w
		}
		go a.write(b, a.committedSeq, wake)
	}
	a.maybeStop(ctx)
}

// snapshotDue reports whether a state that has taken since events after its
// last snapshot and keeps holds holds should be saved again: after every
// events, and never more often than the snapshot is large, so that saving
// snapshots costs O(1) per event however many holds a resource keeps.
func snapshotDue(since uint64, holds, every int) bool {
	return since >= uint64(max(every, holds))
}

// write runs on its own goroutine: it appends one batch and reports back,
// then saves the batch's snapshot, if it has one, and reports that.
func (a *Actor) write(b *batch, expectedSeq uint64, wake *time.Time) {
	ctx, cancel := context.WithTimeout(context.Background(), a.cfg.WriteTimeout)
	err := a.stores.Journal.Append(ctx, persistence.Batch{Stream: Stream(a.id), ExpectedSeq: expectedSeq, Events: b.events, Wake: wake})
	cancel()
	a.system.Root.Send(a.self, &writeDone{b: b, err: err})
	if b.snapshot == nil {
		return
	}
	if err == nil {
		err = a.saveSnapshot(b)
	} else {
		err = fmt.Errorf("its batch was not written: %w", err)
	}
	a.system.Root.Send(a.self, &snapshotDone{b: b, err: err})
}

// saveSnapshot marshals and saves b's snapshot; it runs on the writer's
// goroutine, off the actor's.
func (a *Actor) saveSnapshot(b *batch) error {
	data, err := proto.Marshal(b.snapshot)
	if err != nil {
		return fmt.Errorf("marshal: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), a.cfg.WriteTimeout)
	defer cancel()
	return a.stores.Journal.SaveSnapshot(ctx, Stream(a.id), persistence.Snapshot{Seq: b.lastSeq, Data: data})
}

// snapshotSaved handles the end of a snapshot save. A failed one is taken
// again at the next batch that is due one.
func (a *Actor) snapshotSaved(done *snapshotDone) {
	if done.b != a.snapshotting {
		return // from before a reload
	}
	a.snapshotting = nil
	if done.err != nil {
		a.log.Warn("snapshot not saved", "seq", done.b.lastSeq, "error", done.err)
		return
	}
	a.lastSnapSeq = max(a.lastSnapSeq, done.b.lastSeq)
}

// written handles the end of a batch write.
func (a *Actor) written(ctx actor.Context, done *writeDone) {
	if done.b != a.inflight {
		return // a write from before a reload; its callers were answered
	}
	a.inflight = nil
	if done.err == nil {
		a.committedSeq = done.b.lastSeq
		a.wakeMs = done.b.wakeMs
		a.publish(done.b)
		for _, w := range done.b.waiters {
			a.answer(w.to, w.reply)
		}
		a.flush(ctx)
		return
	}
	if errors.Is(done.err, persistence.ErrConflict) {
		// Another activation committed first: this one's history is void.
		a.log.Warn("journal fence lost; stopping", "error", done.err)
		a.broken = done.err
		a.stop(ctx)
		a.failBatch(done.b)
		a.failAll(ctx, "the resource moved")
		return
	}
	a.log.Error("batch write failed; reloading from the journal", "error", done.err)
	a.failBatch(done.b)
	a.failAll(ctx, "a write failed")
	a.load()
}

func (a *Actor) failBatch(b *batch) {
	for _, w := range b.waiters {
		a.answer(w.to, errorReply(w.reply, bookdv1.ErrorCode_ERROR_CODE_UNAVAILABLE,
			"resource %s could not commit; retry with the same id", a.id))
	}
}

// failAll answers every pending caller with a retryable error and voids
// the decisions that are not committed.
func (a *Actor) failAll(ctx actor.Context, why string) {
	for _, b := range a.pending {
		for _, w := range b.waiters {
			a.answer(w.to, errorReply(w.reply, bookdv1.ErrorCode_ERROR_CODE_UNAVAILABLE,
				"resource %s: %s; retry with the same id", a.id, why))
		}
	}
	a.pending = nil
	if a.inflight != nil {
		a.failBatch(a.inflight)
		a.inflight = nil
	}
}

// passivate stops an idle actor unless it has work left: held holds to
// expire on time, a write or a snapshot in flight.
func (a *Actor) passivate(ctx actor.Context) {
	if a.stopping || a.busy() {
		return
	}
	if a.st != nil && a.broken == nil {
		if _, held := a.st.nextExpiry(); held {
			return
		}
	}
	a.log.Debug("resource idle; passivating")
	a.stop(ctx)
}

// busy reports whether the actor has writes to finish: a batch in flight
// or pending, or a snapshot being saved.
func (a *Actor) busy() bool {
	return a.inflight != nil || len(a.pending) > 0 || a.snapshotting != nil
}

// maybeStop finishes a drain once the actor is not busy.
func (a *Actor) maybeStop(ctx actor.Context) {
	if !a.draining || a.busy() {
		return
	}
	a.stop(ctx)
	for _, d := range a.drainers {
		a.answer(d, &DrainDone{})
	}
	a.drainers = nil
}

// activate loads the resource's settings and state.
func (a *Actor) activate() {
	ctx, cancel := context.WithTimeout(context.Background(), a.cfg.LoadTimeout)
	defer cancel()
	res, err := a.stores.Catalog.GetResource(ctx, a.id)
	if errors.Is(err, persistence.ErrNotFound) {
		a.missing = true
		return
	}
	if err != nil {
		a.fail(fmt.Errorf("read resource: %w", err))
		return
	}
	l, err := a.stores.Catalog.GetListing(ctx, res.ListingID)
	if err != nil {
		a.fail(fmt.Errorf("read listing %s: %w", res.ListingID, err))
		return
	}
	slots, err := NewSlots(res.Unit, res.SlotMinutes, l.TimeZone)
	if err != nil {
		a.fail(fmt.Errorf("slot settings: %w", err))
		return
	}
	a.listingID = res.ListingID
	a.ttl = res.HoldTTL
	if a.ttl <= 0 {
		a.ttl = DefaultHoldTTL
	}
	a.st = newState(a.id, uint32(res.Capacity), slots)
	a.load()
}

// load rebuilds the state from the newest snapshot and the events after it,
// starts a new epoch and expires what came due while the actor was away.
func (a *Actor) load() {
	ctx, cancel := context.WithTimeout(context.Background(), a.cfg.LoadTimeout)
	defer cancel()
	st := newState(a.id, a.st.capacity, a.st.slots)
	snap, ok, err := a.stores.Journal.LoadSnapshot(ctx, Stream(a.id))
	if err != nil {
		a.fail(fmt.Errorf("load snapshot: %w", err))
		return
	}
	if ok {
		var s bookdv1.ResourceSnapshot
		if err := proto.Unmarshal(snap.Data, &s); err != nil {
			a.fail(fmt.Errorf("decode snapshot %d: %w", snap.Seq, err))
			return
		}
		st.restore(&s)
	}
	err = a.stores.Journal.Load(ctx, Stream(a.id), st.seq, func(e persistence.Event) error {
		var ev bookdv1.Event
		if err := proto.Unmarshal(e.Data, &ev); err != nil {
			return fmt.Errorf("decode event %d: %w", e.Seq, err)
		}
		if e.Seq != st.seq+1 {
			return fmt.Errorf("event %d follows %d", e.Seq, st.seq)
		}
		return st.apply(&ev)
	})
	if err != nil {
		a.fail(fmt.Errorf("replay: %w", err))
		return
	}
	a.st = st
	a.committedSeq = st.seq
	a.lastSnapSeq = snap.Seq
	a.snapshotting = nil // a save still running reports to nobody
	// Wake times are written with the events that change them, so the
	// journal's equals the loaded state's.
	a.wakeMs, _ = st.nextExpiry()
	a.epoch = rand.Uint64()
	a.broken = nil
	a.expire(a.now())
	a.armTimer()
	a.log.Debug("resource loaded", "seq", st.seq, "holds", len(st.holds), "epoch", a.epoch)
}

func (a *Actor) fail(err error) {
	a.log.Error("resource unavailable", "error", err)
	a.broken = err
	// Stop soon so that the next command activates afresh.
	a.stopping = true
	a.system.Root.Poison(a.self)
}

// armTimer makes sure a tick comes when the first held hold is due.
func (a *Actor) armTimer() {
	at, ok := a.st.nextExpiry()
	if !ok {
		a.stopTimer()
		return
	}
	if a.timer != nil && a.timerAt == at {
		return
	}
	a.stopTimer()
	d := time.UnixMilli(at).Sub(a.now()) // on the clock decisions use
	self, root := a.self, a.system.Root
	a.timer = time.AfterFunc(max(d, 0), func() { root.Send(self, expiryTick{}) })
	a.timerAt = at
}

func (a *Actor) stopTimer() {
	if a.timer != nil {
		a.timer.Stop()
		a.timer = nil
	}
}
