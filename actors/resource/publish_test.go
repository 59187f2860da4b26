package resource

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	bookdv1 "github.com/bookd/bookd/messages/bookd/v1"
	"github.com/bookd/bookd/persistence"
)

// testBus is the bus every test node publishes availability changes on.
var testBus = persistence.NewLocalBus(0)

// watcher collects the availability changes of one topic.
type watcher struct {
	mu      sync.Mutex
	changes []*bookdv1.AvailabilityChange
	lost    int
	bad     error
}

func watch(t *testing.T, topic string) *watcher {
	t.Helper()
	w := &watcher{}
	s, err := testBus.Subscribe(t.Context(), topic, func(d persistence.Delivery) {
		w.mu.Lock()
		defer w.mu.Unlock()
		if d.Lost {
			w.lost++
			return
		}
		var c bookdv1.AvailabilityChange
		if err := proto.Unmarshal(d.Payload, &c); err != nil {
			w.bad = err
			return
		}
		w.changes = append(w.changes, &c)
	})
	if err := err; err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Unsubscribe)
	return w
}

// upTo waits until the watcher has seen seq and returns its changes.
func (w *watcher) upTo(t *testing.T, seq uint64) []*bookdv1.AvailabilityChange {
	t.Helper()
	var out []*bookdv1.AvailabilityChange
	waitFor(t, 10*time.Second, fmt.Sprintf("a change with seq %d", seq), func() bool {
		w.mu.Lock()
		defer w.mu.Unlock()
		out = append(out[:0], w.changes...)
		return len(out) > 0 && out[len(out)-1].GetSeq() >= seq
	})
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.bad != nil || w.lost > 0 {
		t.Fatalf("watcher: decode error %v, %d Lost signals", w.bad, w.lost)
	}
	return out
}

// replayChanges applies changes in order to a copy of start's slots, and
// fails t on a gap or an epoch that changes.
func replayChanges(t *testing.T, start *bookdv1.Availability, changes []*bookdv1.AvailabilityChange) map[string]*bookdv1.SlotAvailability {
	t.Helper()
	slots := map[string]*bookdv1.SlotAvailability{}
	for _, s := range start.GetSlots() {
		slots[s.GetStart()] = s
	}
	seq := start.GetSeq()
	for _, c := range changes {
		if c.GetEpoch() != start.GetEpoch() || c.GetPrevSeq() != seq || c.GetSeq() <= seq {
			t.Fatalf("change (epoch %d, %d..%d) after (epoch %d, seq %d): want the next one", c.GetEpoch(), c.GetPrevSeq(), c.GetSeq(), start.GetEpoch(), seq)
		}
		seq = c.GetSeq()
		for _, s := range c.GetSlots() {
			if _, ok := slots[s.GetStart()]; ok {
				slots[s.GetStart()] = s
			}
		}
	}
	return slots
}

// TestPublishReproducesAvailability: concurrent holds, confirmations,
// releases and cancels (so batches of several events) publish changes on
// the resource and listing topics whose seqs chain without a gap, and that
// turn the availability before them into the availability after them.
func TestPublishReproducesAvailability(t *testing.T) {
	e := sharedEnv(t)
	id := e.addResource(t, "pub", persistence.SlotNight, 3, time.Hour)
	start := e.availability(t, id, night(0), night(10))
	byRes, byListing := watch(t, persistence.ResourceTopic(id)), watch(t, persistence.ListingTopic(listingNights))

	var wg sync.WaitGroup
	for i := range 40 {
		wg.Go(func() {
			hid := fmt.Sprintf("h%d", i)
			r, err := e.holdCmd(t.Context(), id, &bookdv1.PlaceHold{HoldId: hid, From: night(i % 7), To: night(i%7 + 1 + i%3), Quantity: 1})
			if err != nil || r.GetHold() == nil {
				return // sold out: fine
			}
			var next proto.Message
			switch i % 4 {
			case 0:
				next = &bookdv1.ConfirmHold{HoldId: hid}
			case 1:
				next = &bookdv1.ReleaseHold{HoldId: hid}
			case 2:
				next = &bookdv1.CancelHold{HoldId: hid}
			default:
				return
			}
			if _, err := e.holdCmd(t.Context(), id, next); err != nil {
				t.Errorf("%T: %v", next, err)
			}
		})
	}
	wg.Wait()
	end := e.availability(t, id, night(0), night(10))
	if end.GetSeq() == start.GetSeq() {
		t.Fatal("nothing changed")
	}
	got := replayChanges(t, start, byRes.upTo(t, end.GetSeq()))
	for _, s := range end.GetSlots() {
		if g := got[s.GetStart()]; !proto.Equal(g, s) {
			t.Errorf("slot %s from changes = %v, want %v", s.GetStart(), g, s)
		}
	}
	var listing []*bookdv1.AvailabilityChange
	for _, c := range byListing.upTo(t, end.GetSeq()) {
		if c.GetResourceId() == id {
			listing = append(listing, c)
		}
	}
	resource := byRes.upTo(t, end.GetSeq())
	if len(listing) != len(resource) {
		t.Fatalf("listing topic has %d changes of %s, resource topic %d", len(listing), id, len(resource))
	}
	for i := range listing {
		if !proto.Equal(listing[i], resource[i]) {
			t.Errorf("change %d differs between the topics: %v vs %v", i, listing[i], resource[i])
		}
		if listing[i].GetListingId() != listingNights || listing[i].GetCapacity() != 3 || len(listing[i].GetHolds()) != 0 {
			t.Errorf("change %d = %v, want listing %s, capacity 3, no holds", i, listing[i], listingNights)
		}
	}
}

// TestPublishNewEpochAfterReload: after a failed write the actor reloads
// from the journal and publishes in a new epoch, chained on the journal's
// seq; the failed batch publishes nothing.
func TestPublishNewEpochAfterReload(t *testing.T) {
	e := sharedEnv(t)
	id := e.addResource(t, "epoch", persistence.SlotSingle, 5, time.Hour)
	w := watch(t, persistence.ResourceTopic(id))
	e.mustHold(t, id, &bookdv1.PlaceHold{HoldId: "a", Quantity: 1})
	before := e.availability(t, id, "", "")
	e.journal.Scope(Stream(id))
	e.journal.FailNext(1, errors.New("boom"))
	e.mustFail(t, id, &bookdv1.PlaceHold{HoldId: "lost", Quantity: 1}, bookdv1.ErrorCode_ERROR_CODE_UNAVAILABLE)
	e.mustHold(t, id, &bookdv1.PlaceHold{HoldId: "b", Quantity: 2})
	after := e.availability(t, id, "", "")
	got := w.upTo(t, after.GetSeq())
	if len(got) != 2 {
		t.Fatalf("got %d changes, want 2: %v", len(got), got)
	}
	if got[0].GetEpoch() != before.GetEpoch() || got[1].GetEpoch() != after.GetEpoch() || before.GetEpoch() == after.GetEpoch() {
		t.Errorf("epochs %d, %d; availability epochs %d, %d: want the activations' epochs, different", got[0].GetEpoch(), got[1].GetEpoch(), before.GetEpoch(), after.GetEpoch())
	}
	if got[1].GetPrevSeq() != 1 || got[1].GetSeq() != 2 || got[1].GetSlots()[0].GetHeld() != 3 {
		t.Errorf("second change = %v, want seq 1..2 with 3 held", got[1])
	}
}

// TestPublishUserTopic: each owner's topic carries the changes of its own
// holds, and only those, without the slots (they say nothing about others).
func TestPublishUserTopic(t *testing.T) {
	e := sharedEnv(t)
	id := e.addResource(t, "res-owners", persistence.SlotNight, 5, 10*time.Minute)
	ann, bob := watch(t, persistence.UserTopic("u-ann")), watch(t, persistence.UserTopic("u-bob"))
	e.mustHold(t, id, &bookdv1.PlaceHold{HoldId: "a1", From: night(0), To: night(1), Quantity: 1, Owner: "u-ann"})
	e.mustHold(t, id, &bookdv1.PlaceHold{HoldId: "b1", From: night(0), To: night(1), Quantity: 1, Owner: "u-bob"})
	e.mustHold(t, id, &bookdv1.ConfirmHold{HoldId: "a1", Owner: "u-ann"})

	annSaw := ann.upTo(t, 3)
	var statuses []bookdv1.HoldStatus
	for _, c := range annSaw {
		if len(c.GetSlots()) != 0 {
			t.Errorf("a change on u-ann's topic carries slots %v, want none", c.GetSlots())
		}
		for _, h := range c.GetHolds() {
			if h.GetOwner() != "u-ann" || h.GetHoldId() != "a1" {
				t.Errorf("u-ann's topic carries hold %s of %q", h.GetHoldId(), h.GetOwner())
			}
			statuses = append(statuses, h.GetStatus())
		}
	}
	if want := []bookdv1.HoldStatus{bookdv1.HoldStatus_HOLD_STATUS_HELD, bookdv1.HoldStatus_HOLD_STATUS_CONFIRMED}; !slices.Equal(statuses, want) {
		t.Errorf("u-ann saw her hold go %v, want %v", statuses, want)
	}
	for _, c := range bob.upTo(t, 2) {
		for _, h := range c.GetHolds() {
			if h.GetOwner() != "u-bob" || h.GetHoldId() != "b1" {
				t.Errorf("u-bob's topic carries hold %s of %q", h.GetHoldId(), h.GetOwner())
			}
		}
	}
}

// TestPublishOnlyToListeners: on a bus that knows its subscribers (a
// node's own), a batch's change goes only to the topics someone listens
// to: with a watcher on the resource alone, one message a batch; once the
// owner is watched too, two.
func TestPublishOnlyToListeners(t *testing.T) {
	e := sharedEnv(t)
	id := e.addResource(t, "res-quiet", persistence.SlotNight, 5, 10*time.Minute)
	res := watch(t, persistence.ResourceTopic(id))
	before := testBus.Stats().Published
	e.mustHold(t, id, &bookdv1.PlaceHold{HoldId: "q1", From: night(0), To: night(1), Quantity: 1, Owner: "u-quiet"})
	res.upTo(t, 1)
	if got := testBus.Stats().Published - before; got != 1 {
		t.Errorf("a batch watched on its resource only was published %d times, want 1", got)
	}
	owner := watch(t, persistence.UserTopic("u-quiet"))
	e.mustHold(t, id, &bookdv1.PlaceHold{HoldId: "q2", From: night(1), To: night(2), Quantity: 1, Owner: "u-quiet"})
	res.upTo(t, 2)
	if saw := owner.upTo(t, 2); len(saw) != 1 || len(saw[0].GetHolds()) != 1 || saw[0].GetHolds()[0].GetHoldId() != "q2" {
		t.Errorf("the owner's topic carried %v, want one change with hold q2", saw)
	}
	if got := testBus.Stats().Published - before; got != 3 {
		t.Errorf("after a second batch, watched on its owner too, the bus has published %d messages, want 3", got)
	}
}
