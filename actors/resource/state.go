package resource

import (
	"container/heap"
	"fmt"
	"time"

	"google.golang.org/protobuf/proto"

	bookdv1 "github.com/bookd/bookd/messages/bookd/v1"
)

// usage is what one slot has taken.
type usage struct {
	held, confirmed uint32
}

// hold is a hold as the state keeps it.
type hold struct {
	// view is never changed once set: a transition replaces it. So replies
	// and snapshots share it without copying, also across goroutines.
	view           *bookdv1.Hold
	fromKey, toKey int64
	// placedSeq is the journal seq of the hold's HoldPlaced event (0 when
	// restored from a snapshot, which holds committed events only).
	placedSeq uint64
}

func (h *hold) active() bool {
	s := h.view.GetStatus()
	return s == bookdv1.HoldStatus_HOLD_STATUS_HELD || s == bookdv1.HoldStatus_HOLD_STATUS_CONFIRMED
}

// state is a resource's availability: every hold it has seen and, derived
// from the active ones, the units taken per slot. It is changed only by
// apply, so replaying the journal rebuilds it exactly.
type state struct {
	resourceID string
	capacity   uint32
	slots      Slots

	seq   uint64
	holds map[string]*hold
	used  map[int64]*usage
	// expiring orders held holds by expiry; entries whose hold is no longer
	// held are skipped lazily.
	expiring expiryHeap
}

func newState(resourceID string, capacity uint32, slots Slots) *state {
	return &state{
		resourceID: resourceID,
		capacity:   capacity,
		slots:      slots,
		holds:      make(map[string]*hold),
		used:       make(map[int64]*usage),
	}
}

// apply changes the state by one event, the next in the journal. An event
// that does not fit the state is refused and changes nothing, seq included.
func (s *state) apply(ev *bookdv1.Event) error {
	if err := s.applyKind(ev); err != nil {
		return err
	}
	s.seq++
	return nil
}

func (s *state) applyKind(ev *bookdv1.Event) error {
	switch k := ev.GetKind().(type) {
	case *bookdv1.Event_Placed:
		p := k.Placed
		if _, dup := s.holds[p.GetHoldId()]; dup {
			return fmt.Errorf("event %d places hold %s twice", s.seq+1, p.GetHoldId())
		}
		h := &hold{
			view: &bookdv1.Hold{
				HoldId:      p.GetHoldId(),
				ResourceId:  s.resourceID,
				Status:      bookdv1.HoldStatus_HOLD_STATUS_HELD,
				Quantity:    p.GetQuantity(),
				From:        p.GetFrom(),
				To:          p.GetTo(),
				CreatedAtMs: ev.GetAtMs(),
				ExpiresAtMs: p.GetExpiresAtMs(),
				UpdatedAtMs: ev.GetAtMs(),
				Owner:       p.GetOwner(),
				Fingerprint: p.GetFingerprint(),
			},
			fromKey:   p.GetFromKey(),
			toKey:     p.GetToKey(),
			placedSeq: s.seq + 1,
		}
		s.holds[h.view.HoldId] = h
		s.take(h, bookdv1.HoldStatus_HOLD_STATUS_HELD, +1)
		heap.Push(&s.expiring, expiryEntry{at: h.view.ExpiresAtMs, id: h.view.HoldId})
	case *bookdv1.Event_Confirmed:
		return s.transition(ev, k.Confirmed.GetHoldId(), bookdv1.HoldStatus_HOLD_STATUS_CONFIRMED)
	case *bookdv1.Event_Released:
		return s.transition(ev, k.Released.GetHoldId(), bookdv1.HoldStatus_HOLD_STATUS_RELEASED)
	case *bookdv1.Event_Cancelled:
		return s.transition(ev, k.Cancelled.GetHoldId(), bookdv1.HoldStatus_HOLD_STATUS_CANCELLED)
	case *bookdv1.Event_Expired:
		return s.transition(ev, k.Expired.GetHoldId(), bookdv1.HoldStatus_HOLD_STATUS_EXPIRED)
	default:
		return fmt.Errorf("event %d has no known kind", s.seq+1)
	}
	return nil
}

func (s *state) transition(ev *bookdv1.Event, id string, to bookdv1.HoldStatus) error {
	h, ok := s.holds[id]
	if !ok {
		return fmt.Errorf("event %d changes unknown hold %s", s.seq+1, id)
	}
	from := h.view.Status
	if !allowedTransition(from, to) {
		return fmt.Errorf("event %d moves hold %s from %v to %v", s.seq+1, id, from, to)
	}
	s.take(h, from, -1)
	view := proto.CloneOf(h.view)
	view.Status = to
	view.UpdatedAtMs = ev.GetAtMs()
	h.view = view
	if to == bookdv1.HoldStatus_HOLD_STATUS_CONFIRMED {
		s.take(h, to, +1)
	}
	return nil
}

// allowedTransition is the hold life cycle: a held hold is confirmed,
// released, cancelled or expires; a confirmed one can only be cancelled. The
// journal is replayed through it, so a confirmed booking can never be lost to
// a stray event.
func allowedTransition(from, to bookdv1.HoldStatus) bool {
	switch from {
	case bookdv1.HoldStatus_HOLD_STATUS_HELD:
		return to != bookdv1.HoldStatus_HOLD_STATUS_HELD
	case bookdv1.HoldStatus_HOLD_STATUS_CONFIRMED:
		return to == bookdv1.HoldStatus_HOLD_STATUS_CANCELLED
	}
	return false
}

// take adds (sign +1) or removes (sign -1) a hold's units in the given
// status on every slot of its range.
func (s *state) take(h *hold, status bookdv1.HoldStatus, sign int) {
	q := h.view.Quantity
	s.slots.Each(Range{From: h.fromKey, To: h.toKey}, func(k int64) bool {
		u := s.used[k]
		if u == nil {
			u = &usage{}
			s.used[k] = u
		}
		switch {
		case status == bookdv1.HoldStatus_HOLD_STATUS_HELD && sign > 0:
			u.held += q
		case status == bookdv1.HoldStatus_HOLD_STATUS_HELD:
			u.held -= q
		case sign > 0:
			u.confirmed += q
		default:
			u.confirmed -= q
		}
		if u.held == 0 && u.confirmed == 0 {
			delete(s.used, k)
		}
		return true
	})
}

// free returns the free units of slot k.
func (s *state) free(k int64) uint32 { return s.usage(k).free(s.capacity) }

// usage is slot k's usage (zero when nothing holds it).
func (s *state) usage(k int64) usage {
	if u := s.used[k]; u != nil {
		return *u
	}
	return usage{}
}

// free is what is left of capacity when u is taken.
func (u usage) free(capacity uint32) uint32 {
	if taken := u.held + u.confirmed; taken < capacity {
		return capacity - taken
	}
	return 0
}

// slotAvailability is slot k's availability when its usage is u.
func (s *state) slotAvailability(k int64, u usage) *bookdv1.SlotAvailability {
	return &bookdv1.SlotAvailability{Start: s.slots.Format(k), Free: u.free(s.capacity), Held: u.held, Confirmed: u.confirmed}
}

// nextExpiry returns the expiry of the held hold that expires first.
func (s *state) nextExpiry() (atMs int64, ok bool) {
	for s.expiring.Len() > 0 {
		e := s.expiring[0]
		if h := s.holds[e.id]; h != nil && h.view.Status == bookdv1.HoldStatus_HOLD_STATUS_HELD && h.view.ExpiresAtMs == e.at {
			return e.at, true
		}
		heap.Pop(&s.expiring)
	}
	return 0, false
}

// dueHolds returns the ids of held holds whose expiry is at or before now.
func (s *state) dueHolds(now time.Time) []string {
	nowMs := now.UnixMilli()
	var due []string
	for {
		at, ok := s.nextExpiry()
		if !ok || at > nowMs {
			return due
		}
		due = append(due, s.expiring[0].id)
		heap.Pop(&s.expiring)
	}
}

// snapshot returns the state as a snapshot message. The message shares the
// holds' views, which never change, so it may be marshalled on another
// goroutine while the state moves on.
func (s *state) snapshot() *bookdv1.ResourceSnapshot {
	snap := &bookdv1.ResourceSnapshot{Seq: s.seq, Holds: make([]*bookdv1.HoldRecord, 0, len(s.holds))}
	for _, h := range s.holds {
		snap.Holds = append(snap.Holds, &bookdv1.HoldRecord{Hold: h.view, FromKey: h.fromKey, ToKey: h.toKey})
	}
	return snap
}

// restore replaces the state by a snapshot.
func (s *state) restore(snap *bookdv1.ResourceSnapshot) {
	*s = *newState(s.resourceID, s.capacity, s.slots)
	s.seq = snap.GetSeq()
	for _, r := range snap.GetHolds() {
		h := &hold{view: r.GetHold(), fromKey: r.GetFromKey(), toKey: r.GetToKey()}
		h.view.ResourceId = s.resourceID
		s.holds[h.view.HoldId] = h
		if h.active() {
			s.take(h, h.view.Status, +1)
		}
		if h.view.Status == bookdv1.HoldStatus_HOLD_STATUS_HELD {
			heap.Push(&s.expiring, expiryEntry{at: h.view.ExpiresAtMs, id: h.view.HoldId})
		}
	}
}

type expiryEntry struct {
	at int64
	id string
}

type expiryHeap []expiryEntry

func (h expiryHeap) Len() int           { return len(h) }
func (h expiryHeap) Less(i, j int) bool { return h[i].at < h[j].at }
func (h expiryHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *expiryHeap) Push(x any)        { *h = append(*h, x.(expiryEntry)) }
func (h *expiryHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	*h = old[:len(old)-1]
	return e
}
