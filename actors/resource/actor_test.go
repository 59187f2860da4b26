package resource

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	bookdv1 "github.com/bookd/bookd/messages/bookd/v1"
	"github.com/bookd/bookd/persistence"
)

// TestConcurrentHoldsNeverOversell is the concurrency proof: N parallel
// holds on capacity C end with exactly C successes, the rest sold out, no
// slot over capacity, and the journal rebuilds the same availability.
func TestConcurrentHoldsNeverOversell(t *testing.T) {
	e := sharedEnv(t)
	const (
		n        = 500
		capacity = 37
	)

	t.Run("single slot", func(t *testing.T) {
		id := e.addResource(t, "res-pool", persistence.SlotSingle, capacity, 10*time.Minute)
		replies := make([]*bookdv1.HoldReply, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				r, err := e.holdCmd(t.Context(), id, &bookdv1.PlaceHold{HoldId: fmt.Sprintf("h-%d", i), Quantity: 1})
				if err != nil {
					t.Errorf("PlaceHold h-%d: %v", i, err)
				}
				replies[i] = r
			})
		}
		wg.Wait()
		ok, soldOut := 0, 0
		for i, r := range replies {
			switch {
			case r.GetHold() != nil:
				ok++
				if h := r.GetHold(); h.GetStatus() != bookdv1.HoldStatus_HOLD_STATUS_HELD || h.GetHoldId() != fmt.Sprintf("h-%d", i) || h.GetQuantity() != 1 {
					t.Errorf("PlaceHold h-%d = %v, want it held", i, h)
				}
			case isCode(r, bookdv1.ErrorCode_ERROR_CODE_SOLD_OUT):
				soldOut++
			default:
				t.Errorf("PlaceHold h-%d = %v, want a hold or SOLD_OUT", i, r)
			}
		}
		if ok != capacity || soldOut != n-capacity {
			t.Fatalf("%d holds on capacity %d: %d held, %d sold out; want %d and %d", n, capacity, ok, soldOut, capacity, n-capacity)
		}
		a := e.availability(t, id, "", "")
		if len(a.Slots) != 1 || a.Slots[0].Free != 0 || a.Slots[0].Held != capacity || a.Slots[0].Confirmed != 0 {
			t.Fatalf("availability = %v, want one slot with 0 free, %d held", a.Slots, capacity)
		}
		if got := len(e.events(t, id)); got != capacity {
			t.Errorf("journal has %d events, want %d", got, capacity)
		}
		e.replay(t, id)

		e.drainAll(t)
		b := e.availability(t, id, "", "")
		if !proto.Equal(&bookdv1.Availability{Slots: a.Slots, Seq: a.Seq}, &bookdv1.Availability{Slots: b.Slots, Seq: b.Seq}) {
			t.Fatalf("after reload availability = %v, want %v", b, a)
		}
		if a.Epoch == b.Epoch {
			t.Errorf("after reload epoch is still %d, want a new one", a.Epoch)
		}
	})

	t.Run("overlapping nights", func(t *testing.T) {
		const (
			qty  = 2
			days = 8
		)
		id := e.addResource(t, "res-rooms", persistence.SlotNight, capacity, 10*time.Minute)
		type req struct{ from, to int }
		rng := rand.New(rand.NewPCG(1, 2))
		reqs := make([]req, n)
		for i := range reqs {
			from := rng.IntN(days - 1)
			reqs[i] = req{from, from + 1 + rng.IntN(min(3, days-from-1))}
		}
		replies := make([]*bookdv1.HoldReply, n)
		var wg sync.WaitGroup
		for i, r := range reqs {
			wg.Go(func() {
				rep, err := e.holdCmd(t.Context(), id, &bookdv1.PlaceHold{HoldId: fmt.Sprintf("n-%d", i), From: night(r.from), To: night(r.to), Quantity: qty})
				if err != nil {
					t.Errorf("PlaceHold n-%d: %v", i, err)
				}
				replies[i] = rep
			})
		}
		wg.Wait()

		// What the successful holds add up to, per night.
		want := make([]uint32, days)
		ok := 0
		for i, r := range replies {
			switch {
			case r.GetHold() != nil:
				ok++
				if h := r.GetHold(); h.GetFrom() != night(reqs[i].from) || h.GetTo() != night(reqs[i].to) || h.GetQuantity() != qty {
					t.Errorf("PlaceHold n-%d = %v, want %s..%s ×%d", i, h, night(reqs[i].from), night(reqs[i].to), qty)
				}
				for d := reqs[i].from; d < reqs[i].to; d++ {
					want[d] += qty
				}
			case isCode(r, bookdv1.ErrorCode_ERROR_CODE_SOLD_OUT):
			default:
				t.Errorf("PlaceHold n-%d = %v, want a hold or SOLD_OUT", i, r)
			}
		}
		// No hold was refused for nothing: units are only ever taken here,
		// so a night that lacked room when a hold was refused lacks it still.
		for i, r := range replies {
			if !isCode(r, bookdv1.ErrorCode_ERROR_CODE_SOLD_OUT) {
				continue
			}
			short := false
			for d := reqs[i].from; d < reqs[i].to; d++ {
				short = short || capacity-want[d] < qty
			}
			if !short {
				t.Errorf("PlaceHold n-%d (%s..%s) = SOLD_OUT, but every night of it has %d free", i, night(reqs[i].from), night(reqs[i].to), qty)
			}
		}
		if ok == 0 || ok == n {
			t.Fatalf("%d of %d holds succeeded: the test does not contend", ok, n)
		}
		a := e.availability(t, id, night(0), night(days))
		if len(a.Slots) != days {
			t.Fatalf("availability has %d slots, want %d", len(a.Slots), days)
		}
		for d, s := range a.Slots {
			if s.Held+s.Confirmed > capacity {
				t.Errorf("night %s: held %d + confirmed %d > capacity %d", s.Start, s.Held, s.Confirmed, capacity)
			}
			if s.Held != want[d] || s.Free != capacity-want[d] {
				t.Errorf("night %s = %v, want held %d free %d (the successful holds)", s.Start, s, want[d], capacity-want[d])
			}
		}
		e.replay(t, id)

		e.drainAll(t)
		b := e.availability(t, id, night(0), night(days))
		if !proto.Equal(&bookdv1.Availability{Slots: a.Slots, Seq: a.Seq}, &bookdv1.Availability{Slots: b.Slots, Seq: b.Seq}) {
			t.Fatalf("after reload availability = %v, want %v", b, a)
		}
	})
}

// TestGroupCommit holds the first batch write back while 100 holds arrive:
// they are decided into the next batch, none is answered before its batch
// commits, and one append carries many events.
func TestGroupCommit(t *testing.T) {
	e := sharedEnv(t)
	const (
		n        = 100
		capacity = 1000
	)
	id := e.addResource(t, "res-hot", persistence.SlotSingle, capacity, 10*time.Minute)
	e.availability(t, id, "", "") // activate
	e.journal.Scope(Stream(id))
	e.journal.Block()

	var (
		answered atomic.Int32
		wg       sync.WaitGroup
	)
	t.Cleanup(func() { e.journal.Release(); wg.Wait() }) // also when t fails early
	for i := range n {
		wg.Go(func() {
			holdID := fmt.Sprintf("g-%d", i)
			r, err := e.holdCmd(context.Background(), id, &bookdv1.PlaceHold{HoldId: holdID, Quantity: 1})
			answered.Add(1)
			if err != nil || r.GetHold() == nil {
				t.Errorf("PlaceHold %s = %v, %v; want a hold", holdID, r, err)
				return
			}
			// Invariant 2: the yes is durable before it arrives.
			evs, err := loadEvents(context.Background(), e.store, id)
			if err != nil {
				t.Error(err)
				return
			}
			if c := countEvents(evs, holdID); c["placed"] != 1 {
				t.Errorf("PlaceHold %s answered while the journal has %d HoldPlaced for it, want 1", holdID, c["placed"])
			}
		})
	}

	waitFor(t, 10*time.Second, "the first batch write to block", func() bool { return e.journal.Waiting() == 1 })
	for i := range n {
		holdID := fmt.Sprintf("g-%d", i)
		waitFor(t, 10*time.Second, holdID+" to be decided", func() bool { return e.decided(t, id, holdID, "", "", capacity) })
	}
	if got := answered.Load(); got != 0 {
		t.Fatalf("%d callers answered while their batch was not written, want 0", got)
	}
	if got := e.journal.Waiting(); got != 1 {
		t.Fatalf("%d appends waiting, want 1 (one write in flight)", got)
	}
	if got := len(e.appends(id)); got != 0 {
		t.Fatalf("%d appends returned while blocked, want 0", got)
	}

	e.journal.Release()
	wg.Wait()

	calls := e.appends(id)
	total, biggest := 0, 0
	var expected uint64
	for i, c := range calls {
		if c.Err != nil || !c.Committed {
			t.Errorf("append %d = %+v, want committed", i, c)
		}
		if c.ExpectedSeq != expected {
			t.Errorf("append %d at expected seq %d, want %d", i, c.ExpectedSeq, expected)
		}
		expected += uint64(c.Events)
		total += c.Events
		biggest = max(biggest, c.Events)
	}
	if total != n {
		t.Errorf("appends carried %d events, want %d", total, n)
	}
	if biggest < 2 {
		t.Errorf("largest append carried %d event, want a batch of more than 1", biggest)
	}
	if len(calls) >= n {
		t.Errorf("%d appends for %d holds: no group commit", len(calls), n)
	}
	t.Logf("%d holds in %d appends; largest %d events", n, len(calls), biggest)
	if a := e.availability(t, id, "", ""); a.Slots[0].Held != n {
		t.Errorf("held = %d, want %d", a.Slots[0].Held, n)
	}
}

// TestWriteFailure fails one batch write: its callers and every caller
// behind it get UNAVAILABLE, nothing uncommitted is ever answered yes, the
// actor reloads what was committed and serves again.
func TestWriteFailure(t *testing.T) {
	e := sharedEnv(t)
	const capacity = 10
	id := e.addResource(t, "res-flaky", persistence.SlotSingle, capacity, 10*time.Minute)
	for _, h := range []string{"ok-1", "ok-2"} {
		e.mustHold(t, id, &bookdv1.PlaceHold{HoldId: h, Quantity: 1})
	}
	e.mustHold(t, id, &bookdv1.ConfirmHold{HoldId: "ok-2"})
	before := e.availability(t, id, "", "")
	committed := len(e.events(t, id))
	appendsBefore := len(e.appends(id))

	e.journal.Scope(Stream(id))
	e.journal.Block()
	e.journal.FailNext(1, errBoom)

	type call struct {
		msg proto.Message
		rep proto.Message
		err error
	}
	var (
		mu    sync.Mutex
		calls []*call
		wg    sync.WaitGroup
	)
	t.Cleanup(func() { e.journal.Release(); wg.Wait() }) // also when t fails early
	send := func(msg proto.Message) *call {
		c := &call{msg: msg}
		mu.Lock()
		calls = append(calls, c)
		mu.Unlock()
		wg.Go(func() {
			rep, err := e.request(context.Background(), id, msg)
			mu.Lock()
			c.rep, c.err = rep, err
			mu.Unlock()
		})
		return c
	}
	done := func(c *call) bool {
		mu.Lock()
		defer mu.Unlock()
		return c.rep != nil || c.err != nil
	}

	// The batch in flight: a confirm, held back by the journal.
	send(&bookdv1.ConfirmHold{HoldId: "ok-1"})
	waitFor(t, 10*time.Second, "the first write to block", func() bool { return e.journal.Waiting() == 1 })
	// The next batch: two holds; in memory 1 + 1 + 3 + 3 = 8 of 10 are taken.
	for _, h := range []string{"f-1", "f-2"} {
		send(&bookdv1.PlaceHold{HoldId: h, Quantity: 3})
		waitFor(t, 10*time.Second, h+" to be decided", func() bool { return e.decided(t, id, h, "", "", capacity) })
	}
	// A cancel of the confirmed ok-2. Once it is decided a hold of 3 fits;
	// until then it is refused at once.
	send(&bookdv1.CancelHold{HoldId: "ok-2"})
	for k := 0; ; k++ {
		c := send(&bookdv1.PlaceHold{HoldId: fmt.Sprintf("p-%d", k), Quantity: 3})
		for !done(c) && !e.decided(t, id, fmt.Sprintf("p-%d", k), "", "", capacity) {
			time.Sleep(time.Millisecond)
		}
		if !done(c) {
			break // decided, so the cancel before it was too
		}
		if r, _ := c.rep.(*bookdv1.HoldReply); !isCode(r, bookdv1.ErrorCode_ERROR_CODE_SOLD_OUT) {
			t.Fatalf("probe p-%d = %v, %v; want SOLD_OUT or waiting", k, c.rep, c.err)
		}
		mu.Lock()
		calls = calls[:len(calls)-1] // a settled probe, not part of the batch
		mu.Unlock()
	}
	// A read behind the batches.
	read := send(&bookdv1.GetAvailability{})
	if got := len(e.appends(id)) - appendsBefore; got != 0 {
		t.Fatalf("%d appends returned while blocked, want 0", got)
	}
	e.journal.Release()
	wg.Wait()

	for _, c := range calls {
		if c.err != nil {
			t.Errorf("%T%v: %v", c.msg, c.msg, c.err)
			continue
		}
		switch r := c.rep.(type) {
		case *bookdv1.HoldReply:
			if !isCode(r, bookdv1.ErrorCode_ERROR_CODE_UNAVAILABLE) {
				t.Errorf("%T%v = %v, want UNAVAILABLE", c.msg, c.msg, r)
			}
		case *bookdv1.AvailabilityReply:
			// The read may also have arrived after the reload; then it must
			// show what was committed, never the void decisions.
			if a := r.GetAvailability(); r.GetError().GetCode() != bookdv1.ErrorCode_ERROR_CODE_UNAVAILABLE &&
				!proto.Equal(&bookdv1.Availability{Slots: a.GetSlots(), Seq: a.GetSeq()}, &bookdv1.Availability{Slots: before.Slots, Seq: before.Seq}) {
				t.Errorf("read = %v, want UNAVAILABLE or the committed %v", r, before)
			}
			if c != read {
				t.Errorf("unexpected availability reply to %v", c.msg)
			}
		}
	}
	if got := len(calls); got != 6 {
		t.Errorf("%d calls in the failed batches, want 6", got)
	}

	after := e.availability(t, id, "", "")
	if !proto.Equal(&bookdv1.Availability{Slots: before.Slots, Seq: before.Seq}, &bookdv1.Availability{Slots: after.Slots, Seq: after.Seq}) {
		t.Errorf("after the failed write availability = %v, want what was committed: %v", after, before)
	}
	if after.Epoch == before.Epoch {
		t.Errorf("epoch %d unchanged after the reload, want a new one", after.Epoch)
	}
	if got := len(e.events(t, id)); got != committed {
		t.Errorf("journal has %d events, want the %d committed before", got, committed)
	}
	if h := e.mustHold(t, id, &bookdv1.GetHold{HoldId: "ok-1"}); h.Status != bookdv1.HoldStatus_HOLD_STATUS_HELD {
		t.Errorf("ok-1 after the failed confirm = %v, want held", h.Status)
	}
	if h := e.mustHold(t, id, &bookdv1.GetHold{HoldId: "ok-2"}); h.Status != bookdv1.HoldStatus_HOLD_STATUS_CONFIRMED {
		t.Errorf("ok-2 after the failed cancel = %v, want confirmed", h.Status)
	}
	e.mustFail(t, id, &bookdv1.GetHold{HoldId: "f-1"}, bookdv1.ErrorCode_ERROR_CODE_NOT_FOUND)

	// It serves again, and a retry of a failed command works.
	e.mustHold(t, id, &bookdv1.PlaceHold{HoldId: "f-1", Quantity: 3})
	e.mustHold(t, id, &bookdv1.ConfirmHold{HoldId: "ok-1"})
	if a := e.availability(t, id, "", ""); a.Slots[0].Held != 3 || a.Slots[0].Confirmed != 2 {
		t.Errorf("availability = %v, want 3 held 2 confirmed", a.Slots[0])
	}
	e.replay(t, id)
}

// TestWriteCommittedButFailed is the ambiguous outcome: the append commits
// but reports an error. The caller gets UNAVAILABLE; the retry with the same
// hold id finds the hold, and its units count once.
func TestWriteCommittedButFailed(t *testing.T) {
	e := sharedEnv(t)
	id := e.addResource(t, "res-ambiguous", persistence.SlotNight, 4, 10*time.Minute)
	e.journal.Scope(Stream(id))
	e.journal.FailNextAfterCommit(1, errBoom)

	place := &bookdv1.PlaceHold{HoldId: "amb", From: night(0), To: night(2), Quantity: 3}
	e.mustFail(t, id, place, bookdv1.ErrorCode_ERROR_CODE_UNAVAILABLE)
	if calls := e.appends(id); len(calls) != 1 || !calls[0].Committed {
		t.Fatalf("appends = %+v, want one committed", calls)
	}

	h := e.mustHold(t, id, place)
	if h.Status != bookdv1.HoldStatus_HOLD_STATUS_HELD || h.Quantity != 3 {
		t.Errorf("retried PlaceHold = %v, want the held hold", h)
	}
	a := e.availability(t, id, night(0), night(2))
	for _, s := range a.Slots {
		if s.Held != 3 || s.Free != 1 {
			t.Errorf("night %s = %v, want held 3 free 1 (counted once)", s.Start, s)
		}
	}
	e.mustFail(t, id, &bookdv1.PlaceHold{HoldId: "other", From: night(1), To: night(2), Quantity: 2}, bookdv1.ErrorCode_ERROR_CODE_SOLD_OUT)
	evs := e.events(t, id)
	if c := countEvents(evs, "amb"); c["placed"] != 1 || len(evs) != 1 {
		t.Errorf("journal has %d events, %d HoldPlaced for amb; want 1 and 1", len(evs), c["placed"])
	}
}

// TestFence: a second writer appends to the resource's stream behind the
// actor's back. The actor's next write loses the conditional append: its
// caller gets UNAVAILABLE (retryable), the actor stops, and the next request
// is served by a new activation that sees the foreign event.
func TestFence(t *testing.T) {
	e := sharedEnv(t)
	id := e.addResource(t, "res-fenced", persistence.SlotSingle, 5, 10*time.Minute)
	e.mustHold(t, id, &bookdv1.PlaceHold{HoldId: "mine", Quantity: 1})
	a := e.availability(t, id, "", "")

	// The other writer, at the same expected seq the actor will use.
	if err := e.store.Append(t.Context(), persistence.Batch{Stream: Stream(id), ExpectedSeq: a.Seq, Events: [][]byte{foreignPlaced("theirs", 2)}}); err != nil {
		t.Fatalf("foreign Append at seq %d: %v", a.Seq, err)
	}
	e.mustFail(t, id, &bookdv1.PlaceHold{HoldId: "late", Quantity: 1}, bookdv1.ErrorCode_ERROR_CODE_UNAVAILABLE)
	calls := e.appends(id)
	if last := calls[len(calls)-1]; last.ExpectedSeq != a.Seq || last.Committed || !errors.Is(last.Err, persistence.ErrConflict) {
		t.Errorf("the actor's append = %+v, want a conflict at expected seq %d", last, a.Seq)
	}

	b := e.availability(t, id, "", "")
	if b.Epoch == a.Epoch {
		t.Errorf("epoch %d unchanged: the fenced activation still serves", b.Epoch)
	}
	if b.Seq != a.Seq+1 || b.Slots[0].Held != 3 {
		t.Errorf("new activation = seq %d held %d, want seq %d held 3 (mine + theirs, not late)", b.Seq, b.Slots[0].Held, a.Seq+1)
	}
	e.mustFail(t, id, &bookdv1.GetHold{HoldId: "late"}, bookdv1.ErrorCode_ERROR_CODE_NOT_FOUND)
	if h := e.mustHold(t, id, &bookdv1.GetHold{HoldId: "theirs"}); h.Quantity != 2 {
		t.Errorf("GetHold(theirs) = %v, want quantity 2", h)
	}
	// The retry of the refused command succeeds on the new activation.
	e.mustHold(t, id, &bookdv1.PlaceHold{HoldId: "late", Quantity: 1})
	e.replay(t, id)
}

// TestFenceSplitBrain runs a second activation of a resource next to the
// node's own, both over the same SQLite file, as a split brain or a slow
// handover would. (It lives in a plain actor system: two protoactor remotes
// in one process race on grpc's global logger.) Holds go to both and are
// retried while UNAVAILABLE: the fence refuses the stale activation's
// writes, exactly capacity holds succeed, and every yes is in the journal.
func TestFenceSplitBrain(t *testing.T) {
	e := sharedEnv(t)
	const (
		capacity = 20
		n        = 120
	)
	id := e.addResource(t, "res-split", persistence.SlotSingle, capacity, 10*time.Minute)
	rogue := newRogueActivation(t, e.cfg, Stores{Journal: e.store, Catalog: e.store}, id)
	activations := []func(context.Context, proto.Message) (any, error){
		func(ctx context.Context, m proto.Message) (any, error) { return e.node.Request(ctx, Kind, id, m) },
		rogue.request,
	}
	// Both activations load the empty journal before anything is written.
	for i, req := range activations {
		if _, err := req(t.Context(), &bookdv1.GetAvailability{}); err != nil {
			t.Fatalf("activation %d: GetAvailability: %v", i, err)
		}
	}

	var (
		mu          sync.Mutex
		yes         = map[string]bool{}
		unavailable int
		wg          sync.WaitGroup
	)
	for i := range n {
		wg.Go(func() {
			holdID := fmt.Sprintf("s-%d", i)
			for try := range 50 {
				ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
				res, err := activations[(i+try)%2](ctx, &bookdv1.PlaceHold{HoldId: holdID, Quantity: 1})
				cancel()
				if err != nil {
					t.Errorf("PlaceHold %s: %v", holdID, err)
					return
				}
				r := res.(*bookdv1.HoldReply)
				mu.Lock()
				switch {
				case r.GetHold() != nil:
					yes[holdID] = true
				case isCode(r, bookdv1.ErrorCode_ERROR_CODE_UNAVAILABLE):
					unavailable++
					mu.Unlock()
					continue
				case isCode(r, bookdv1.ErrorCode_ERROR_CODE_SOLD_OUT):
				default:
					t.Errorf("PlaceHold %s = %v", holdID, r)
				}
				mu.Unlock()
				return
			}
			t.Errorf("PlaceHold %s: UNAVAILABLE 50 times", holdID)
		})
	}
	wg.Wait()

	st := e.replay(t, id)
	if len(yes) != capacity || len(st.holds) != capacity {
		t.Errorf("%d holds answered yes and %d journaled on capacity %d, want %d", len(yes), len(st.holds), capacity, capacity)
	}
	for h := range yes {
		if st.holds[h] == nil {
			t.Errorf("hold %s was answered yes but is not in the journal", h)
		}
	}
	if unavailable == 0 {
		t.Errorf("no write was fenced: the two activations did not race")
	}
	t.Logf("split brain: %d yes, %d fenced answers, %d rogue activations", len(yes), unavailable, rogue.spawned())
}

// TestIdempotency: every state-changing command repeated by hold id gets the
// same answer and journals nothing more; PlaceHold with the same id and
// other parameters is an IDEMPOTENCY_CONFLICT.
func TestIdempotency(t *testing.T) {
	e := sharedEnv(t)
	id := e.addResource(t, "res-idem", persistence.SlotNight, 3, 10*time.Minute)
	place := func(holdID string) *bookdv1.PlaceHold {
		return &bookdv1.PlaceHold{HoldId: holdID, From: night(0), To: night(2), Quantity: 1}
	}

	first := e.mustHold(t, id, place("a"))
	if again := e.mustHold(t, id, place("a")); !proto.Equal(first, again) {
		t.Errorf("repeated PlaceHold = %v, want %v", again, first)
	}
	for _, p := range []*bookdv1.PlaceHold{
		{HoldId: "a", From: night(0), To: night(2), Quantity: 2},
		{HoldId: "a", From: night(0), To: night(3), Quantity: 1},
		{HoldId: "a", From: night(1), To: night(2), Quantity: 1},
	} {
		e.mustFail(t, id, p, bookdv1.ErrorCode_ERROR_CODE_IDEMPOTENCY_CONFLICT)
	}

	conf := e.mustHold(t, id, &bookdv1.ConfirmHold{HoldId: "a"})
	if conf.Status != bookdv1.HoldStatus_HOLD_STATUS_CONFIRMED {
		t.Errorf("ConfirmHold(a) = %v, want confirmed", conf)
	}
	if again := e.mustHold(t, id, &bookdv1.ConfirmHold{HoldId: "a"}); !proto.Equal(conf, again) {
		t.Errorf("repeated ConfirmHold = %v, want %v", again, conf)
	}
	if again := e.mustHold(t, id, place("a")); !proto.Equal(conf, again) {
		t.Errorf("PlaceHold of a confirmed hold = %v, want it as it stands %v", again, conf)
	}
	e.mustFail(t, id, &bookdv1.ReleaseHold{HoldId: "a"}, bookdv1.ErrorCode_ERROR_CODE_HOLD_NOT_ACTIVE)
	canc := e.mustHold(t, id, &bookdv1.CancelHold{HoldId: "a"})
	if canc.Status != bookdv1.HoldStatus_HOLD_STATUS_CANCELLED {
		t.Errorf("CancelHold(a) = %v, want cancelled", canc)
	}
	if again := e.mustHold(t, id, &bookdv1.CancelHold{HoldId: "a"}); !proto.Equal(canc, again) {
		t.Errorf("repeated CancelHold = %v, want %v", again, canc)
	}
	e.mustFail(t, id, &bookdv1.ConfirmHold{HoldId: "a"}, bookdv1.ErrorCode_ERROR_CODE_HOLD_NOT_ACTIVE)

	e.mustHold(t, id, place("b"))
	rel := e.mustHold(t, id, &bookdv1.ReleaseHold{HoldId: "b"})
	if rel.Status != bookdv1.HoldStatus_HOLD_STATUS_RELEASED {
		t.Errorf("ReleaseHold(b) = %v, want released", rel)
	}
	if again := e.mustHold(t, id, &bookdv1.ReleaseHold{HoldId: "b"}); !proto.Equal(rel, again) {
		t.Errorf("repeated ReleaseHold = %v, want %v", again, rel)
	}
	if again := e.mustHold(t, id, &bookdv1.CancelHold{HoldId: "b"}); !proto.Equal(rel, again) {
		t.Errorf("CancelHold of a released hold = %v, want it as it stands %v", again, rel)
	}
	e.mustFail(t, id, &bookdv1.ConfirmHold{HoldId: "b"}, bookdv1.ErrorCode_ERROR_CODE_HOLD_NOT_ACTIVE)
	for _, m := range []proto.Message{&bookdv1.ConfirmHold{HoldId: "nope"}, &bookdv1.ReleaseHold{HoldId: "nope"}, &bookdv1.CancelHold{HoldId: "nope"}, &bookdv1.GetHold{HoldId: "nope"}} {
		e.mustFail(t, id, m, bookdv1.ErrorCode_ERROR_CODE_NOT_FOUND)
	}

	evs := e.events(t, id)
	if c := countEvents(evs, "a"); c["placed"] != 1 || c["confirmed"] != 1 || c["cancelled"] != 1 || len(c) != 3 {
		t.Errorf("journal events of a = %v, want one placed, confirmed, cancelled", c)
	}
	if c := countEvents(evs, "b"); c["placed"] != 1 || c["released"] != 1 || len(c) != 2 {
		t.Errorf("journal events of b = %v, want one placed, released", c)
	}

	// The same answers from a new activation.
	e.drainAll(t)
	if again := e.mustHold(t, id, &bookdv1.CancelHold{HoldId: "a"}); !proto.Equal(canc, again) {
		t.Errorf("CancelHold after reactivation = %v, want %v", again, canc)
	}
	if again := e.mustHold(t, id, place("b")); !proto.Equal(rel, again) {
		t.Errorf("PlaceHold(b) after reactivation = %v, want %v", again, rel)
	}
	if got := len(e.events(t, id)); got != len(evs) {
		t.Errorf("journal has %d events after repeats, want %d", got, len(evs))
	}
}

// TestExpiry: a held hold expires by itself, exactly once; a confirmed one
// does not.
func TestExpiry(t *testing.T) {
	e := sharedEnv(t)
	id := e.addResource(t, "res-ttl", persistence.SlotSingle, 2, time.Second)
	x := e.mustHold(t, id, &bookdv1.PlaceHold{HoldId: "x", Quantity: 1})
	if d := x.ExpiresAtMs - x.CreatedAtMs; d != 1000 {
		t.Errorf("hold lasts %dms, want the resource's TTL of 1000ms", d)
	}
	e.mustHold(t, id, &bookdv1.PlaceHold{HoldId: "y", Quantity: 1})
	e.mustHold(t, id, &bookdv1.ConfirmHold{HoldId: "y"})

	var got *bookdv1.Hold
	waitFor(t, 5*time.Second, "x to expire", func() bool {
		got = e.mustHold(t, id, &bookdv1.GetHold{HoldId: "x"})
		return got.Status == bookdv1.HoldStatus_HOLD_STATUS_EXPIRED
	})
	if late := got.UpdatedAtMs - x.ExpiresAtMs; late < 0 {
		t.Errorf("x expired %dms before its expiry", -late)
	}
	if a := e.availability(t, id, "", ""); a.Slots[0].Free != 1 || a.Slots[0].Held != 0 || a.Slots[0].Confirmed != 1 {
		t.Errorf("availability = %v, want 1 free, 0 held, 1 confirmed", a.Slots[0])
	}
	e.mustFail(t, id, &bookdv1.ConfirmHold{HoldId: "x"}, bookdv1.ErrorCode_ERROR_CODE_HOLD_EXPIRED)
	for _, m := range []proto.Message{&bookdv1.ReleaseHold{HoldId: "x"}, &bookdv1.CancelHold{HoldId: "x"}} {
		if h := e.mustHold(t, id, m); h.Status != bookdv1.HoldStatus_HOLD_STATUS_EXPIRED {
			t.Errorf("%T(x) = %v, want the expired hold as it stands", m, h)
		}
	}
	time.Sleep(300 * time.Millisecond) // room for a second expiry, if there were one
	if h := e.mustHold(t, id, &bookdv1.GetHold{HoldId: "y"}); h.Status != bookdv1.HoldStatus_HOLD_STATUS_CONFIRMED {
		t.Errorf("confirmed y = %v after its hold's TTL, want still confirmed", h.Status)
	}
	evs := e.events(t, id)
	if c := countEvents(evs, "x"); c["expired"] != 1 || len(c) != 2 {
		t.Errorf("journal events of x = %v, want placed and exactly one expired", c)
	}
	if c := countEvents(evs, "y"); c["expired"] != 0 {
		t.Errorf("journal events of y = %v, want no expiry", c)
	}
}

// TestExpiredWhileDown: a hold whose TTL passes while no node runs is freed
// by the next activation, before its first answer, exactly once.
func TestExpiredWhileDown(t *testing.T) {
	e := newEnv(t)
	id := e.addResource(t, "res-down", persistence.SlotSingle, 1, time.Second)
	d := e.mustHold(t, id, &bookdv1.PlaceHold{HoldId: "d", Quantity: 1})
	if a := e.availability(t, id, "", ""); a.Slots[0].Free != 0 {
		t.Fatalf("availability = %v, want 0 free", a.Slots[0])
	}
	e.stop(t)
	time.Sleep(time.Until(time.UnixMilli(d.ExpiresAtMs)) + 100*time.Millisecond)
	if c := countEvents(e.events(t, id), "d"); c["expired"] != 0 {
		t.Fatalf("journal events of d = %v while no node ran, want no expiry", c)
	}
	e.reopen(t)

	if a := e.availability(t, id, "", ""); a.Slots[0].Free != 1 || a.Slots[0].Held != 0 {
		t.Errorf("first availability after restart = %v, want 1 free 0 held", a.Slots[0])
	}
	if h := e.mustHold(t, id, &bookdv1.GetHold{HoldId: "d"}); h.Status != bookdv1.HoldStatus_HOLD_STATUS_EXPIRED {
		t.Errorf("GetHold(d) = %v, want expired", h.Status)
	}
	if c := countEvents(e.events(t, id), "d"); c["expired"] != 1 {
		t.Errorf("journal events of d = %v, want exactly one expiry", c)
	}
	// Once more: the expiry is not repeated by a later activation.
	e.drainAll(t)
	e.mustHold(t, id, &bookdv1.PlaceHold{HoldId: "e", Quantity: 1})
	if c := countEvents(e.events(t, id), "d"); c["expired"] != 1 {
		t.Errorf("journal events of d = %v after another activation, want exactly one expiry", c)
	}
}

// TestExpiryDecidedBeforeCommands: with a clock that has passed a hold's
// expiry before its timer fired, commands see the hold expired, not held.
func TestExpiryDecidedBeforeCommands(t *testing.T) {
	var clk clock
	e := newEnv(t, func(c *Config) { c.Now = clk.Now })
	id := e.addResource(t, "res-clock", persistence.SlotSingle, 3, time.Minute)
	for _, h := range []string{"c", "r", "k"} {
		e.mustHold(t, id, &bookdv1.PlaceHold{HoldId: h, Quantity: 1})
	}
	epoch := e.availability(t, id, "", "").Epoch
	clk.Advance(2 * time.Minute)

	e.mustFail(t, id, &bookdv1.ConfirmHold{HoldId: "c"}, bookdv1.ErrorCode_ERROR_CODE_HOLD_EXPIRED)
	for _, m := range []proto.Message{&bookdv1.ReleaseHold{HoldId: "r"}, &bookdv1.CancelHold{HoldId: "k"}, &bookdv1.GetHold{HoldId: "c"}} {
		if h := e.mustHold(t, id, m); h.Status != bookdv1.HoldStatus_HOLD_STATUS_EXPIRED {
			t.Errorf("%T%v = %v, want the expired hold", m, m, h)
		}
	}
	// The sold-out pool is free again for a new hold.
	e.mustHold(t, id, &bookdv1.PlaceHold{HoldId: "n", Quantity: 3})
	if a := e.availability(t, id, "", ""); a.Epoch != epoch || a.Slots[0].Held != 3 {
		t.Errorf("availability = %v (epoch %d), want held 3 in the same epoch %d", a.Slots[0], a.Epoch, epoch)
	}
	evs := e.events(t, id)
	for _, h := range []string{"c", "r", "k"} {
		if c := countEvents(evs, h); c["expired"] != 1 || len(c) != 2 {
			t.Errorf("journal events of %s = %v, want placed and expired", h, c)
		}
	}
	e.replay(t, id)
}

// TestExpiryTimerFiresEarly: when the expiry timer fires before the actor's
// clock has reached the expiry (the wall clock stepped back, or the clock is
// not time.Now), the actor re-arms it instead of forgetting the hold.
func TestExpiryTimerFiresEarly(t *testing.T) {
	var clk clock
	clk.Advance(-700 * time.Millisecond)
	e := newEnv(t, func(c *Config) { c.Now = clk.Now })
	id := e.addResource(t, "res-early", persistence.SlotSingle, 1, time.Second)
	z := e.mustHold(t, id, &bookdv1.PlaceHold{HoldId: "z", Quantity: 1})
	var got *bookdv1.Hold
	waitFor(t, 5*time.Second, "z to expire", func() bool {
		got = e.mustHold(t, id, &bookdv1.GetHold{HoldId: "z"})
		return got.Status == bookdv1.HoldStatus_HOLD_STATUS_EXPIRED
	})
	if got.UpdatedAtMs < z.ExpiresAtMs {
		t.Errorf("z expired at %d, before its expiry %d on the actor's clock", got.UpdatedAtMs, z.ExpiresAtMs)
	}
}

// TestSnapshots: with SnapshotEvery 5, 23 events leave snapshots at seq 5
// (5 holds) and 15 (10 events later, as many as the 10 holds then kept;
// see snapshotDue) and none at 20 (only 5 events after 15 with 10 holds)
// or 23; a new process rebuilds exactly the same holds and availability
// from the snapshot at 15 and the 8 events after it.
func TestSnapshots(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.SnapshotEvery = 5 })
	id := e.addResource(t, "res-snap", persistence.SlotNight, 10, 10*time.Minute)
	var ids []string
	seq := 0
	// savedAt waits until the snapshot taken with the batch of seq is saved,
	// so that the next one is not skipped for being in flight.
	savedAt := func(want uint64) {
		t.Helper()
		waitFor(t, 10*time.Second, fmt.Sprintf("snapshot at %d", want), func() bool {
			for _, c := range e.journal.Snapshots() {
				if c.Stream == Stream(id) && c.Seq == want && c.Err == nil {
					return true
				}
			}
			return false
		})
	}
	step := func(msg proto.Message) {
		t.Helper()
		e.mustHold(t, id, msg)
		seq++
		if seq == 5 || seq == 15 {
			savedAt(uint64(seq))
		}
	}
	place := func(i int) {
		h := fmt.Sprintf("h%02d", i)
		ids = append(ids, h)
		step(&bookdv1.PlaceHold{HoldId: h, From: night(i % 6), To: night(i%6 + 2), Quantity: 1})
	}
	for i := range 10 {
		place(i) // 10 events
	}
	for _, h := range ids[:5] {
		step(&bookdv1.ConfirmHold{HoldId: h}) // 15
	}
	for _, h := range []string{"h00", "h01", "h05"} {
		step(&bookdv1.CancelHold{HoldId: h}) // 18
	}
	for _, h := range []string{"h06", "h07"} {
		step(&bookdv1.ReleaseHold{HoldId: h}) // 20
	}
	for i := 10; i < 13; i++ {
		place(i) // 23
	}

	if n := len(e.events(t, id)); n != 23 {
		t.Fatalf("journal has %d events, want 23", n)
	}
	snap, ok, err := e.store.LoadSnapshot(t.Context(), Stream(id))
	if err != nil || !ok || snap.Seq != 15 {
		t.Fatalf("LoadSnapshot = seq %d, %v, %v; want seq 15", snap.Seq, ok, err)
	}
	for _, c := range e.appends(id) {
		if c.Snapshot {
			t.Errorf("append at %d carried a snapshot; snapshots are saved on their own", c.ExpectedSeq)
		}
	}

	// The snapshot plus the tail is the state the whole journal replays to.
	var s bookdv1.ResourceSnapshot
	if err := proto.Unmarshal(snap.Data, &s); err != nil {
		t.Fatal(err)
	}
	full := e.replay(t, id)
	fromSnap := newState(id, full.capacity, full.slots)
	fromSnap.restore(&s)
	for i, ev := range e.events(t, id)[15:] {
		if err := fromSnap.apply(ev); err != nil {
			t.Fatalf("apply event %d after the snapshot: %v", 16+i, err)
		}
	}
	checkSameState(t, fromSnap, full)

	read := func() (*bookdv1.Availability, []*bookdv1.Hold) {
		a := e.availability(t, id, night(0), night(8))
		var holds []*bookdv1.Hold
		for _, h := range ids {
			holds = append(holds, e.mustHold(t, id, &bookdv1.GetHold{HoldId: h}))
		}
		return a, holds
	}
	a1, h1 := read()
	before := e.journal // the node's drain waits for snapshots being saved
	e.restart(t)
	a2, h2 := read()
	if loads := e.journal.Loads(); len(loads) != 1 || loads[0].AfterSeq != 15 {
		t.Errorf("new activation loaded %+v, want the events after the snapshot at 15", loads)
	}
	var saved []uint64
	for _, c := range before.Snapshots() {
		saved = append(saved, c.Seq)
	}
	if !slices.Equal(saved, []uint64{5, 15}) {
		t.Errorf("snapshots saved at %v, want [5 15]", saved)
	}
	if !proto.Equal(&bookdv1.Availability{Slots: a1.Slots, Seq: a1.Seq}, &bookdv1.Availability{Slots: a2.Slots, Seq: a2.Seq}) {
		t.Errorf("availability after restart = %v, want %v", a2, a1)
	}
	for i := range h1 {
		if !proto.Equal(h1[i], h2[i]) {
			t.Errorf("hold after restart = %v, want %v", h2[i], h1[i])
		}
	}
}

// State-level tests: the state and its decisions, without an actor.

// baseDay is the night key tests put holds on (2030-01-10).
var baseDay = dayNumber(2030, 1, 10)

// BenchmarkHoldHotResource: holds from 64 callers on one resource through
// the node: throughput on one hot resource (group commit on a real SQLite
// file). Run with -benchtime=1x in CI.
func BenchmarkHoldHotResource(b *testing.B) {
	e := newEnv(b)
	const (
		callers = 64
	)
	id := e.addResource(b, "res-bench", persistence.SlotSingle, 1<<30, time.Hour)
	e.availability(b, id, "", "") // activate
	before := len(e.appends(id))
	var next, failed atomic.Int64
	b.ResetTimer()
	var wg sync.WaitGroup
	for range callers {
		wg.Go(func() {
			for i := next.Add(1); i <= int64(b.N); i = next.Add(1) {
				r, err := e.holdCmd(context.Background(), id, &bookdv1.PlaceHold{HoldId: fmt.Sprintf("b-%d", i), Quantity: 1})
				if err != nil || r.GetHold() == nil {
					failed.Add(1)
				}
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	if n := failed.Load(); n > 0 {
		b.Fatalf("%d of %d holds failed", n, b.N)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "holds/s")
	calls := e.appends(id)[before:]
	b.ReportMetric(float64(b.N)/float64(max(len(calls), 1)), "events/append")
}

// TestPassivation: an idle actor without held holds stops and comes back
// from the journal on the next message, with its bookings; one with a held
// hold stays active so that the hold expires on time.
func TestPassivation(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.IdleTimeout = 150 * time.Millisecond })
	idle := e.addResource(t, "res-idle", persistence.SlotNight, 2, 10*time.Minute)
	busy := e.addResource(t, "res-busy", persistence.SlotNight, 2, 10*time.Minute)
	e.mustHold(t, idle, &bookdv1.PlaceHold{HoldId: "c1", From: night(0), To: night(1), Quantity: 1})
	e.mustHold(t, idle, &bookdv1.ConfirmHold{HoldId: "c1"})
	e.mustHold(t, busy, &bookdv1.PlaceHold{HoldId: "h1", From: night(0), To: night(1), Quantity: 1})

	loads := func(id string) int {
		n := 0
		for _, l := range e.journal.Loads() {
			if l.Stream == Stream(id) {
				n++
			}
		}
		return n
	}
	// Each read resets the idle timer, so wait longer than it between reads.
	deadline := time.Now().Add(10 * time.Second)
	for loads(idle) < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("%s was loaded %d times in 10s with IdleTimeout 150ms, want a passivation and a second load", idle, loads(idle))
		}
		time.Sleep(400 * time.Millisecond)
		if got := e.mustHold(t, idle, &bookdv1.GetHold{HoldId: "c1"}); got.Status != bookdv1.HoldStatus_HOLD_STATUS_CONFIRMED {
			t.Fatalf("GetHold(c1) = %v, want confirmed also after a passivation", got.Status)
		}
	}
	if got := e.availability(t, idle, night(0), night(1)).Slots[0].Confirmed; got != 1 {
		t.Errorf("confirmed units of %s after passivation = %d, want 1", idle, got)
	}
	// Had it passivated, this read would load it again.
	if got := e.mustHold(t, busy, &bookdv1.GetHold{HoldId: "h1"}); got.Status != bookdv1.HoldStatus_HOLD_STATUS_HELD {
		t.Errorf("GetHold(h1) = %v, want held", got.Status)
	}
	if n := loads(busy); n != 1 {
		t.Errorf("%s, with a held hold, was loaded %d times, want 1: it must not passivate", busy, n)
	}
}

// TestPlaceInFlight: a PlaceHold repeated while its batch is not committed
// is IN_FLIGHT (the edge's 409), or IDEMPOTENCY_CONFLICT (422) with another
// fingerprint; once committed the repeat gets the hold, which keeps its
// owner: another owner does not see it.
func TestPlaceInFlight(t *testing.T) {
	e := sharedEnv(t)
	id := e.addResource(t, "res-inflight", persistence.SlotSingle, 5, 10*time.Minute)
	e.availability(t, id, "", "") // activate
	e.journal.Scope(Stream(id))
	e.journal.Block()
	var wg sync.WaitGroup
	t.Cleanup(func() { e.journal.Release(); wg.Wait() }) // also when t fails early
	place := &bookdv1.PlaceHold{HoldId: "k", Quantity: 1, Owner: "usr-a", Fingerprint: "f1"}
	first := make(chan *bookdv1.HoldReply, 1)
	wg.Go(func() {
		r, err := e.holdCmd(context.Background(), id, place)
		if err != nil {
			t.Errorf("the first PlaceHold = %v", err)
		}
		first <- r
	})
	waitFor(t, 10*time.Second, "the first write to block", func() bool { return e.journal.Waiting() == 1 })
	tests := []struct {
		name string
		msg  *bookdv1.PlaceHold
		code bookdv1.ErrorCode
	}{
		{"same request", place, bookdv1.ErrorCode_ERROR_CODE_IN_FLIGHT},
		{"another body", &bookdv1.PlaceHold{HoldId: "k", Quantity: 1, Owner: "usr-a", Fingerprint: "f2"}, bookdv1.ErrorCode_ERROR_CODE_IDEMPOTENCY_CONFLICT},
		{"another quantity", &bookdv1.PlaceHold{HoldId: "k", Quantity: 2, Owner: "usr-a", Fingerprint: "f1"}, bookdv1.ErrorCode_ERROR_CODE_IDEMPOTENCY_CONFLICT},
	}
	for _, tt := range tests {
		e.mustFail(t, id, tt.msg, tt.code)
	}
	e.journal.Release()
	if r := <-first; r.GetHold().GetOwner() != "usr-a" {
		t.Fatalf("the first PlaceHold = %v, want the hold of usr-a", r)
	}
	if h := e.mustHold(t, id, place); h.GetHoldId() != "k" || h.GetStatus() != bookdv1.HoldStatus_HOLD_STATUS_HELD {
		t.Errorf("the repeat after the commit = %v, want hold k, held", h)
	}
	e.mustFail(t, id, &bookdv1.GetHold{HoldId: "k", Owner: "usr-b"}, bookdv1.ErrorCode_ERROR_CODE_NOT_FOUND)
	e.mustFail(t, id, &bookdv1.ConfirmHold{HoldId: "k", Owner: "usr-b"}, bookdv1.ErrorCode_ERROR_CODE_NOT_FOUND)
	if a := e.availability(t, id, "", ""); a.Slots[0].Held != 1 {
		t.Errorf("held = %d, want 1: one hold for all the repeats", a.Slots[0].Held)
	}
}
