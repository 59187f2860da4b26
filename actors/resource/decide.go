package resource

import (
	"errors"
	"fmt"
	"time"

	"google.golang.org/protobuf/proto"

	bookdv1 "github.com/bookd/bookd/messages/bookd/v1"
	"github.com/bookd/bookd/persistence"
)

// A decision is what a command comes to: events to journal (none for a
// rejection or a repeat) and the reply to send once they are durable.
type decision struct {
	events []*bookdv1.Event
	reply  proto.Message
}

// holdReply shares h's view, which never changes (see hold).
func holdReply(h *hold) *bookdv1.HoldReply {
	return &bookdv1.HoldReply{Hold: h.view}
}

func holdError(code bookdv1.ErrorCode, field, format string, args ...any) *bookdv1.HoldReply {
	return &bookdv1.HoldReply{Error: &bookdv1.Error{Code: code, Field: field, Detail: fmt.Sprintf(format, args...)}}
}

func invalid(err error) *bookdv1.Error {
	var fe *FieldError
	if errors.As(err, &fe) {
		return &bookdv1.Error{Code: bookdv1.ErrorCode_ERROR_CODE_INVALID_ARGUMENT, Field: fe.Field, Detail: fe.Detail}
	}
	return &bookdv1.Error{Code: bookdv1.ErrorCode_ERROR_CODE_INVALID_ARGUMENT, Detail: err.Error()}
}

// decidePlace decides a PlaceHold at now with holds lasting ttl. A repeat
// of a hold (same hold_id) is answered with the hold as it stands when the
// owner, fingerprint, range and quantity all match and the hold's placement
// is committed (journal seq <= committedSeq); with other parameters it is an
// IDEMPOTENCY_CONFLICT, and before its commit it is IN_FLIGHT, so that a
// client retrying too early learns that the first request is still running.
func (s *state) decidePlace(cmd *bookdv1.PlaceHold, now time.Time, ttl time.Duration, committedSeq uint64) decision {
	if cmd.GetHoldId() == "" {
		return decision{reply: holdError(bookdv1.ErrorCode_ERROR_CODE_INVALID_ARGUMENT, "hold_id", "is required")}
	}
	if cmd.GetQuantity() < 1 {
		return decision{reply: holdError(bookdv1.ErrorCode_ERROR_CODE_INVALID_ARGUMENT, "quantity", "must be at least 1")}
	}
	r, err := s.slots.ParseRange(cmd.GetFrom(), cmd.GetTo())
	if err != nil {
		return decision{reply: &bookdv1.HoldReply{Error: invalid(err)}}
	}
	if h, ok := s.holds[cmd.GetHoldId()]; ok {
		if h.fromKey != r.From || h.toKey != r.To || h.view.Quantity != cmd.GetQuantity() ||
			h.view.Owner != cmd.GetOwner() || h.view.Fingerprint != cmd.GetFingerprint() {
			return decision{reply: holdError(bookdv1.ErrorCode_ERROR_CODE_IDEMPOTENCY_CONFLICT, "",
				"hold %s was placed with other parameters", cmd.GetHoldId())}
		}
		if h.placedSeq > committedSeq {
			return decision{reply: holdError(bookdv1.ErrorCode_ERROR_CODE_IN_FLIGHT, "",
				"hold %s is still being placed; retry with the same Idempotency-Key", cmd.GetHoldId())}
		}
		return decision{reply: holdReply(h)}
	}
	if cmd.GetQuantity() > s.capacity {
		return decision{reply: holdError(bookdv1.ErrorCode_ERROR_CODE_INVALID_ARGUMENT, "quantity",
			"must be at most the resource's capacity of %d", s.capacity)}
	}
	if s.slots.Unit != persistence.SlotSingle && !s.slots.End(r.From).After(now) {
		return decision{reply: holdError(bookdv1.ErrorCode_ERROR_CODE_INVALID_ARGUMENT, "from", "%s is in the past", cmd.GetFrom())}
	}
	var short error
	s.slots.Each(r, func(k int64) bool {
		if f := s.free(k); f < cmd.GetQuantity() {
			short = fmt.Errorf("%s has %d free, %d asked", s.slotName(k), f, cmd.GetQuantity())
			return false
		}
		return true
	})
	if short != nil {
		return decision{reply: holdError(bookdv1.ErrorCode_ERROR_CODE_SOLD_OUT, "", "%v", short)}
	}
	// The event, its kind and the placement in one allocation: a sale
	// places a hold per request.
	e := new(placedEvent)
	e.placed.HoldId = cmd.GetHoldId()
	e.placed.From = s.slots.Format(r.From)
	e.placed.To = s.slots.Format(r.To)
	e.placed.FromKey = r.From
	e.placed.ToKey = r.To
	e.placed.Quantity = cmd.GetQuantity()
	e.placed.ExpiresAtMs = now.Add(ttl).UnixMilli()
	e.placed.Owner = cmd.GetOwner()
	e.placed.Fingerprint = cmd.GetFingerprint()
	e.kind.Placed = &e.placed
	e.ev.AtMs = now.UnixMilli()
	e.ev.Kind = &e.kind
	e.events[0] = &e.ev
	return decision{events: e.events[:]}
}

// placedEvent is a HoldPlaced event with its wrappers and the decision's
// list of it, allocated together.
type placedEvent struct {
	ev     bookdv1.Event
	kind   bookdv1.Event_Placed
	placed bookdv1.HoldPlaced
	events [1]*bookdv1.Event
}

func (s *state) slotName(k int64) string {
	if n := s.slots.Format(k); n != "" {
		return "slot " + n
	}
	return "the slot"
}

// lookup finds hold id; when owner is not empty, a hold of another owner
// is answered as missing, so that its existence does not leak.
func (s *state) lookup(id, owner string) (*hold, *bookdv1.HoldReply) {
	if id == "" {
		return nil, holdError(bookdv1.ErrorCode_ERROR_CODE_INVALID_ARGUMENT, "hold_id", "is required")
	}
	h, ok := s.holds[id]
	if !ok || (owner != "" && h.view.Owner != owner) {
		return nil, holdError(bookdv1.ErrorCode_ERROR_CODE_NOT_FOUND, "", "hold %s does not exist", id)
	}
	return h, nil
}

// decideConfirm: held → confirmed; a repeat is answered as it stands.
func (s *state) decideConfirm(id, owner string, now time.Time) decision {
	h, rej := s.lookup(id, owner)
	if rej != nil {
		return decision{reply: rej}
	}
	switch h.view.Status {
	case bookdv1.HoldStatus_HOLD_STATUS_HELD:
		ev := &bookdv1.Event{AtMs: now.UnixMilli(), Kind: &bookdv1.Event_Confirmed{Confirmed: &bookdv1.HoldConfirmed{HoldId: id}}}
		return decision{events: []*bookdv1.Event{ev}}
	case bookdv1.HoldStatus_HOLD_STATUS_CONFIRMED:
		return decision{reply: holdReply(h)}
	case bookdv1.HoldStatus_HOLD_STATUS_EXPIRED:
		return decision{reply: holdError(bookdv1.ErrorCode_ERROR_CODE_HOLD_EXPIRED, "",
			"hold %s expired at %s", id, time.UnixMilli(h.view.ExpiresAtMs).UTC().Format(time.RFC3339))}
	}
	return decision{reply: holdError(bookdv1.ErrorCode_ERROR_CODE_HOLD_NOT_ACTIVE, "",
		"hold %s is %s and cannot be confirmed", id, h.view.Status.APIName())}
}

// decideRelease: held → released; a hold already without units is answered
// as it stands; a confirmed one must be cancelled instead.
func (s *state) decideRelease(id, owner string, now time.Time) decision {
	h, rej := s.lookup(id, owner)
	if rej != nil {
		return decision{reply: rej}
	}
	switch h.view.Status {
	case bookdv1.HoldStatus_HOLD_STATUS_HELD:
		ev := &bookdv1.Event{AtMs: now.UnixMilli(), Kind: &bookdv1.Event_Released{Released: &bookdv1.HoldReleased{HoldId: id}}}
		return decision{events: []*bookdv1.Event{ev}}
	case bookdv1.HoldStatus_HOLD_STATUS_CONFIRMED:
		return decision{reply: holdError(bookdv1.ErrorCode_ERROR_CODE_HOLD_NOT_ACTIVE, "",
			"hold %s is confirmed: cancel it instead", id)}
	}
	return decision{reply: holdReply(h)}
}

// decideCancel: held or confirmed → cancelled; a hold already without units
// is answered as it stands.
func (s *state) decideCancel(id, owner string, now time.Time) decision {
	h, rej := s.lookup(id, owner)
	if rej != nil {
		return decision{reply: rej}
	}
	if !h.active() {
		return decision{reply: holdReply(h)}
	}
	ev := &bookdv1.Event{AtMs: now.UnixMilli(), Kind: &bookdv1.Event_Cancelled{Cancelled: &bookdv1.HoldCancelled{HoldId: id}}}
	return decision{events: []*bookdv1.Event{ev}}
}

// decideExpiry returns the events that expire every held hold due at now.
func (s *state) decideExpiry(now time.Time) []*bookdv1.Event {
	var evs []*bookdv1.Event
	for _, id := range s.dueHolds(now) {
		evs = append(evs, &bookdv1.Event{AtMs: now.UnixMilli(), Kind: &bookdv1.Event_Expired{Expired: &bookdv1.HoldExpired{HoldId: id}}})
	}
	return evs
}

// availability reads the slots of [from, to) as they stand.
func (s *state) availability(cmd *bookdv1.GetAvailability, now time.Time) *bookdv1.AvailabilityReply {
	var r Range
	if cmd.GetFrom() == "" && cmd.GetTo() == "" {
		r = s.slots.DefaultRange(now)
	} else {
		var err error
		if r, err = s.slots.ParseRange(cmd.GetFrom(), cmd.GetTo()); err != nil {
			return &bookdv1.AvailabilityReply{Error: invalid(err)}
		}
	}
	a := &bookdv1.Availability{ResourceId: s.resourceID, Capacity: s.capacity, Seq: s.seq}
	s.slots.Each(r, func(k int64) bool {
		a.Slots = append(a.Slots, s.slotAvailability(k, s.usage(k)))
		return true
	})
	return &bookdv1.AvailabilityReply{Availability: a}
}
