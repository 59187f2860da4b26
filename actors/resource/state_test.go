package resource

import (
	"fmt"
	"testing"
	"time"

	bookdv1 "github.com/bookd/bookd/messages/bookd/v1"
	"github.com/bookd/bookd/persistence"
)

func newTestState(t *testing.T, capacity uint32) *state {
	t.Helper()
	slots, err := NewSlots(persistence.SlotNight, 0, "Europe/Lisbon")
	if err != nil {
		t.Fatal(err)
	}
	return newState("res", capacity, slots)
}

func evPlaced(id string, from, to int64, q uint32, expMs int64) *bookdv1.Event {
	return &bookdv1.Event{AtMs: 1, Kind: &bookdv1.Event_Placed{Placed: &bookdv1.HoldPlaced{
		HoldId: id, FromKey: baseDay + from, ToKey: baseDay + to, Quantity: q, ExpiresAtMs: expMs}}}
}

func evTo(id string, to bookdv1.HoldStatus) *bookdv1.Event {
	ev := &bookdv1.Event{AtMs: 2}
	switch to {
	case bookdv1.HoldStatus_HOLD_STATUS_CONFIRMED:
		ev.Kind = &bookdv1.Event_Confirmed{Confirmed: &bookdv1.HoldConfirmed{HoldId: id}}
	case bookdv1.HoldStatus_HOLD_STATUS_RELEASED:
		ev.Kind = &bookdv1.Event_Released{Released: &bookdv1.HoldReleased{HoldId: id}}
	case bookdv1.HoldStatus_HOLD_STATUS_CANCELLED:
		ev.Kind = &bookdv1.Event_Cancelled{Cancelled: &bookdv1.HoldCancelled{HoldId: id}}
	case bookdv1.HoldStatus_HOLD_STATUS_EXPIRED:
		ev.Kind = &bookdv1.Event_Expired{Expired: &bookdv1.HoldExpired{HoldId: id}}
	}
	return ev
}

// holdIn returns a state with hold "a" (2 units on nights 0 and 1) moved to
// status st.
func holdIn(t *testing.T, st bookdv1.HoldStatus) *state {
	t.Helper()
	s := newTestState(t, 5)
	for _, ev := range []*bookdv1.Event{evPlaced("a", 0, 2, 2, 1000), evTo("a", st)} {
		if ev.Kind == nil {
			continue // HELD: placing is enough
		}
		if err := s.apply(ev); err != nil {
			t.Fatalf("apply %v: %v", ev, err)
		}
	}
	return s
}

var allStatuses = []bookdv1.HoldStatus{
	bookdv1.HoldStatus_HOLD_STATUS_HELD, bookdv1.HoldStatus_HOLD_STATUS_CONFIRMED, bookdv1.HoldStatus_HOLD_STATUS_RELEASED,
	bookdv1.HoldStatus_HOLD_STATUS_CANCELLED, bookdv1.HoldStatus_HOLD_STATUS_EXPIRED,
}

// TestStateApplyTransitions: apply is the replay path. It refuses to move a
// hold that has no units any more (released, cancelled, expired); out of held
// or confirmed it takes any move, and the decisions (TestDecideTransitions)
// are what allow only the legal ones.
func TestStateApplyTransitions(t *testing.T) {
	held, conf := bookdv1.HoldStatus_HOLD_STATUS_HELD, bookdv1.HoldStatus_HOLD_STATUS_CONFIRMED
	for _, from := range allStatuses {
		for _, to := range allStatuses[1:] {
			t.Run(fmt.Sprintf("%s to %s", from.APIName(), to.APIName()), func(t *testing.T) {
				s := holdIn(t, from)
				seq := s.seq
				err := s.apply(evTo("a", to))
				if allowed := from == held || (from == conf && to == bookdv1.HoldStatus_HOLD_STATUS_CANCELLED); (err == nil) != allowed {
					t.Fatalf("apply(%s → %s) = %v, want allowed %v", from.APIName(), to.APIName(), err, allowed)
				}
				if err == nil {
					seq++
				}
				if s.seq != seq {
					t.Errorf("seq = %d, want %d", s.seq, seq)
				}
				want := usage{}
				switch {
				case err != nil && from == held:
					want.held = 2
				case err != nil && from == conf, err == nil && to == conf:
					want.confirmed = 2
				}
				for d := range int64(3) {
					got := usage{}
					if u := s.used[baseDay+d]; u != nil {
						got = *u
					}
					if d == 2 {
						want = usage{} // the hold ends before night 2
					}
					if got != want {
						t.Errorf("night %d usage = %+v, want %+v", d, got, want)
					}
					if f := s.free(baseDay + d); f != 5-want.held-want.confirmed {
						t.Errorf("night %d free = %d, want %d", d, f, 5-want.held-want.confirmed)
					}
				}
			})
		}
	}
}

func TestStateApplyRefuses(t *testing.T) {
	tests := []struct {
		name string
		ev   *bookdv1.Event
	}{
		{"place twice", evPlaced("a", 0, 1, 1, 0)},
		{"unknown hold", evTo("zz", bookdv1.HoldStatus_HOLD_STATUS_CONFIRMED)},
		{"no kind", &bookdv1.Event{AtMs: 3}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := holdIn(t, bookdv1.HoldStatus_HOLD_STATUS_HELD)
			if err := s.apply(tt.ev); err == nil {
				t.Fatalf("apply(%v) = nil, want an error", tt.ev)
			}
			if u := s.used[baseDay]; u == nil || *u != (usage{held: 2}) || len(s.holds) != 1 || s.seq != 1 {
				t.Errorf("after a refused event: usage %+v, %d holds, seq %d; want unchanged", u, len(s.holds), s.seq)
			}
		})
	}
}

func TestStateFreeNeverNegative(t *testing.T) {
	s := newTestState(t, 3)
	// apply does not check capacity (decisions do); free must clamp even if
	// a journal ever over-committed a slot.
	for _, ev := range []*bookdv1.Event{evPlaced("a", 0, 1, 2, 0), evPlaced("b", 0, 1, 2, 0), evTo("b", bookdv1.HoldStatus_HOLD_STATUS_CONFIRMED)} {
		if err := s.apply(ev); err != nil {
			t.Fatal(err)
		}
	}
	if f := s.free(baseDay); f != 0 {
		t.Errorf("free with 4 of 3 taken = %d, want 0", f)
	}
	if f := s.free(baseDay + 1); f != 3 {
		t.Errorf("free of an untouched night = %d, want 3", f)
	}
	if err := s.apply(evTo("a", bookdv1.HoldStatus_HOLD_STATUS_RELEASED)); err != nil {
		t.Fatal(err)
	}
	if f := s.free(baseDay); f != 1 {
		t.Errorf("free after a release = %d, want 1", f)
	}
}

func TestDecidePlace(t *testing.T) {
	now := time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC)
	d := func(n int64) string { return dayDate(baseDay + n).Format(DateLayout) }
	tests := []struct {
		name  string
		cmd   *bookdv1.PlaceHold
		code  bookdv1.ErrorCode
		field string
		event bool
		// inFlight leaves hold "a" uncommitted (committedSeq 0).
		inFlight bool
	}{
		{"fits", &bookdv1.PlaceHold{HoldId: "n", From: d(1), To: d(3), Quantity: 3}, 0, "", true, false},
		{"fits exactly", &bookdv1.PlaceHold{HoldId: "n", From: d(0), To: d(1), Quantity: 3}, 0, "", true, false},
		{"sold out", &bookdv1.PlaceHold{HoldId: "n", From: d(1), To: d(3), Quantity: 4}, bookdv1.ErrorCode_ERROR_CODE_SOLD_OUT, "", false, false},
		{"repeat", &bookdv1.PlaceHold{HoldId: "a", From: d(0), To: d(2), Quantity: 2}, 0, "", false, false},
		{"repeat other quantity", &bookdv1.PlaceHold{HoldId: "a", From: d(0), To: d(2), Quantity: 1}, bookdv1.ErrorCode_ERROR_CODE_IDEMPOTENCY_CONFLICT, "", false, false},
		{"repeat other range", &bookdv1.PlaceHold{HoldId: "a", From: d(0), To: d(3), Quantity: 2}, bookdv1.ErrorCode_ERROR_CODE_IDEMPOTENCY_CONFLICT, "", false, false},
		{"repeat other owner", &bookdv1.PlaceHold{HoldId: "a", From: d(0), To: d(2), Quantity: 2, Owner: "u2"}, bookdv1.ErrorCode_ERROR_CODE_IDEMPOTENCY_CONFLICT, "", false, false},
		{"repeat other fingerprint", &bookdv1.PlaceHold{HoldId: "a", From: d(0), To: d(2), Quantity: 2, Fingerprint: "f2"}, bookdv1.ErrorCode_ERROR_CODE_IDEMPOTENCY_CONFLICT, "", false, false},
		{"repeat in flight", &bookdv1.PlaceHold{HoldId: "a", From: d(0), To: d(2), Quantity: 2}, bookdv1.ErrorCode_ERROR_CODE_IN_FLIGHT, "", false, true},
		{"repeat other body in flight", &bookdv1.PlaceHold{HoldId: "a", From: d(0), To: d(2), Quantity: 2, Fingerprint: "f2"}, bookdv1.ErrorCode_ERROR_CODE_IDEMPOTENCY_CONFLICT, "", false, true},
		{"no id", &bookdv1.PlaceHold{From: d(0), To: d(1), Quantity: 1}, bookdv1.ErrorCode_ERROR_CODE_INVALID_ARGUMENT, "hold_id", false, false},
		{"no quantity", &bookdv1.PlaceHold{HoldId: "n", From: d(0), To: d(1)}, bookdv1.ErrorCode_ERROR_CODE_INVALID_ARGUMENT, "quantity", false, false},
		{"above capacity", &bookdv1.PlaceHold{HoldId: "n", From: d(0), To: d(1), Quantity: 6}, bookdv1.ErrorCode_ERROR_CODE_INVALID_ARGUMENT, "quantity", false, false},
		{"empty range", &bookdv1.PlaceHold{HoldId: "n", From: d(1), To: d(1), Quantity: 1}, bookdv1.ErrorCode_ERROR_CODE_INVALID_ARGUMENT, "to", false, false},
		{"not a date", &bookdv1.PlaceHold{HoldId: "n", From: "tomorrow", To: d(1), Quantity: 1}, bookdv1.ErrorCode_ERROR_CODE_INVALID_ARGUMENT, "from", false, false},
		{"past", &bookdv1.PlaceHold{HoldId: "n", From: "2029-12-01", To: "2029-12-02", Quantity: 1}, bookdv1.ErrorCode_ERROR_CODE_INVALID_ARGUMENT, "from", false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := holdIn(t, bookdv1.HoldStatus_HOLD_STATUS_HELD) // "a": 2 of 5 on nights 0, 1
			committed := s.seq
			if tt.inFlight {
				committed = 0
			}
			got := s.decidePlace(tt.cmd, now, 10*time.Minute, committed)
			if s.seq != 1 || *s.used[baseDay] != (usage{held: 2}) {
				t.Fatalf("decidePlace changed the state")
			}
			rep, _ := got.reply.(*bookdv1.HoldReply)
			if c := rep.GetError().GetCode(); c != tt.code || rep.GetError().GetField() != tt.field {
				t.Fatalf("decidePlace(%v) = %v, want code %v field %q", tt.cmd, got.reply, tt.code, tt.field)
			}
			if (len(got.events) == 1) != tt.event {
				t.Fatalf("decidePlace(%v) events = %v, want an event: %v", tt.cmd, got.events, tt.event)
			}
			if !tt.event {
				if tt.code == 0 && rep.GetHold().GetHoldId() != tt.cmd.HoldId {
					t.Errorf("repeat = %v, want hold %s", rep, tt.cmd.HoldId)
				}
				return
			}
			p := got.events[0].GetPlaced()
			r, _ := s.slots.ParseRange(tt.cmd.From, tt.cmd.To)
			if p.GetHoldId() != tt.cmd.HoldId || p.GetFromKey() != r.From || p.GetToKey() != r.To || p.GetQuantity() != tt.cmd.Quantity ||
				p.GetExpiresAtMs() != now.Add(10*time.Minute).UnixMilli() || got.events[0].GetAtMs() != now.UnixMilli() {
				t.Errorf("decidePlace(%v) = %v", tt.cmd, got.events[0])
			}
			if err := s.apply(got.events[0]); err != nil {
				t.Errorf("apply the decision: %v", err)
			}
			checkNotOversold(t, s)
		})
	}
}

func TestDecideTransitions(t *testing.T) {
	const (
		event = iota + 1
		asItStands
	)
	notActive, expired := bookdv1.ErrorCode_ERROR_CODE_HOLD_NOT_ACTIVE, bookdv1.ErrorCode_ERROR_CODE_HOLD_EXPIRED
	// want[from][command]: event, asItStands, or an error code (as int).
	want := map[bookdv1.HoldStatus][3]int{
		bookdv1.HoldStatus_HOLD_STATUS_HELD:      {event, event, event},
		bookdv1.HoldStatus_HOLD_STATUS_CONFIRMED: {asItStands, -int(notActive), event},
		bookdv1.HoldStatus_HOLD_STATUS_RELEASED:  {-int(notActive), asItStands, asItStands},
		bookdv1.HoldStatus_HOLD_STATUS_CANCELLED: {-int(notActive), asItStands, asItStands},
		bookdv1.HoldStatus_HOLD_STATUS_EXPIRED:   {-int(expired), asItStands, asItStands},
	}
	names := [3]string{"confirm", "release", "cancel"}
	targets := [3]bookdv1.HoldStatus{bookdv1.HoldStatus_HOLD_STATUS_CONFIRMED, bookdv1.HoldStatus_HOLD_STATUS_RELEASED, bookdv1.HoldStatus_HOLD_STATUS_CANCELLED}
	now := time.UnixMilli(500)
	for _, from := range allStatuses {
		for c := range 3 {
			t.Run(names[c]+" "+from.APIName(), func(t *testing.T) {
				s := holdIn(t, from)
				decide := [3]func(string, string, time.Time) decision{s.decideConfirm, s.decideRelease, s.decideCancel}[c]
				if rep, _ := decide("a", "another-user", now).reply.(*bookdv1.HoldReply); rep.GetError().GetCode() != bookdv1.ErrorCode_ERROR_CODE_NOT_FOUND {
					t.Errorf("%s of another owner's hold = %v, want NOT_FOUND", names[c], rep)
				}
				for _, id := range []string{"", "zz"} {
					rep, _ := decide(id, "", now).reply.(*bookdv1.HoldReply)
					if code := rep.GetError().GetCode(); code != map[string]bookdv1.ErrorCode{"": bookdv1.ErrorCode_ERROR_CODE_INVALID_ARGUMENT, "zz": bookdv1.ErrorCode_ERROR_CODE_NOT_FOUND}[id] {
						t.Errorf("%s(%q) = %v", names[c], id, rep)
					}
				}
				got := decide("a", "", now)
				rep, _ := got.reply.(*bookdv1.HoldReply)
				switch w := want[from][c]; {
				case w == event:
					if len(got.events) != 1 || got.reply != nil {
						t.Fatalf("%s of a %s hold = %v, want one event", names[c], from.APIName(), got)
					}
					if err := s.apply(got.events[0]); err != nil || s.holds["a"].view.Status != targets[c] {
						t.Errorf("apply the decision = %v, status %v; want %v", err, s.holds["a"].view.Status, targets[c])
					}
				case w == asItStands:
					if len(got.events) != 0 || rep.GetHold().GetStatus() != from {
						t.Errorf("%s of a %s hold = %v, want the hold as it stands", names[c], from.APIName(), got)
					}
				default:
					if len(got.events) != 0 || rep.GetError().GetCode() != bookdv1.ErrorCode(-w) {
						t.Errorf("%s of a %s hold = %v, want %v", names[c], from.APIName(), got, bookdv1.ErrorCode(-w))
					}
				}
			})
		}
	}
}

func TestDecideExpiry(t *testing.T) {
	s := newTestState(t, 10)
	for _, ev := range []*bookdv1.Event{
		evPlaced("b", 0, 1, 1, 200), evPlaced("a", 0, 1, 1, 100), evPlaced("c", 0, 1, 1, 150),
		evPlaced("d", 0, 1, 1, 50), evTo("c", bookdv1.HoldStatus_HOLD_STATUS_CONFIRMED), evTo("d", bookdv1.HoldStatus_HOLD_STATUS_RELEASED),
	} {
		if err := s.apply(ev); err != nil {
			t.Fatal(err)
		}
	}
	for _, step := range []struct {
		atMs int64
		want []string
	}{{99, nil}, {160, []string{"a"}}, {160, nil}, {1000, []string{"b"}}, {2000, nil}} {
		var got []string
		for _, ev := range s.decideExpiry(time.UnixMilli(step.atMs)) {
			got = append(got, ev.GetExpired().GetHoldId())
			if err := s.apply(ev); err != nil {
				t.Fatal(err)
			}
		}
		if fmt.Sprint(got) != fmt.Sprint(step.want) {
			t.Errorf("decideExpiry(%d) = %v, want %v", step.atMs, got, step.want)
		}
	}
	if u := s.used[baseDay]; *u != (usage{confirmed: 1}) {
		t.Errorf("usage after expiry = %+v, want only c confirmed", u)
	}
}

// TestSnapshotDue: snapshots come every SnapshotEvery events, and never more
// often than the state is large, so their total cost stays linear in the
// events however many holds a resource keeps.
func TestSnapshotDue(t *testing.T) {
	tests := []struct {
		since        uint64
		holds, every int
		want         bool
	}{
		{0, 0, 500, false},
		{499, 10, 500, false},
		{500, 10, 500, true},
		{500, 499, 500, true},
		{500, 501, 500, false},
		{20000, 20000, 500, true},
		{19999, 20000, 500, false},
		{1, 0, 1, true},
	}
	for _, tt := range tests {
		if got := snapshotDue(tt.since, tt.holds, tt.every); got != tt.want {
			t.Errorf("snapshotDue(%d, %d, %d) = %v, want %v", tt.since, tt.holds, tt.every, got, tt.want)
		}
	}
	// Over a sale that only adds holds, the records written stay within a
	// small multiple of the events.
	const events = 100000
	written, last := 0, 0
	for seq := 1; seq <= events; seq++ {
		if snapshotDue(uint64(seq-last), seq, 500) {
			written += seq
			last = seq
		}
	}
	if written > 2*events {
		t.Errorf("a sale of %d holds wrote %d hold records in snapshots, want at most %d", events, written, 2*events)
	}
}
