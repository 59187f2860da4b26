package resource

import (
	"context"
	"sync"
	"testing"
	"time"

	bookdv1 "github.com/bookd/bookd/messages/bookd/v1"
	"github.com/bookd/bookd/persistence"
)

// startSweeper runs a sweeper over e's store and node, as serve does, until
// the returned stop is called (stop is also called when t ends).
func startSweeper(t *testing.T, e *env) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	s := &Sweeper{Journal: e.store, Actors: nodeRequester{e}, Interval: 50 * time.Millisecond, Logger: testLogger()}
	go func() { defer wg.Done(); s.Run(ctx) }()
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); wg.Wait() }) }
	t.Cleanup(stop)
	return stop
}

// nodeRequester sends to whatever node e runs now.
type nodeRequester struct{ e *env }

func (r nodeRequester) Request(ctx context.Context, kind, id string, msg any) (any, error) {
	return r.e.node.Request(ctx, kind, id, msg)
}

// expiredAt waits, reading only the journal (a request to the resource would
// itself expire the hold), for the hold's expiry event and returns when the
// actor decided it.
func expiredAt(t *testing.T, e *env, id, holdID string, within time.Duration) time.Time {
	t.Helper()
	var at time.Time
	waitFor(t, within, "the expiry of "+holdID+" in the journal", func() bool {
		evs, err := loadEvents(t.Context(), e.store, id)
		if err != nil {
			t.Fatal(err)
		}
		for _, ev := range evs {
			if x := ev.GetExpired(); x != nil && x.GetHoldId() == holdID {
				at = time.UnixMilli(ev.GetAtMs())
				return true
			}
		}
		return false
	})
	return at
}

// TestDurableExpiry: a hold expires within a second of its time with no
// traffic to its resource — while its actor is active, after the actor was
// drained away, and after a restart of the whole node — and the resource's
// wake time is cleared once no hold is left; on SQLite and on PostgreSQL.
func TestDurableExpiry(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) { durableExpiry(t, newEnv(t)) })
	t.Run("postgres", func(t *testing.T) { durableExpiry(t, newPostgresEnv(t)) })
}

func durableExpiry(t *testing.T, e *env) {
	stopSweeper := startSweeper(t, e)
	id := e.addResource(t, "sweep", persistence.SlotSingle, 5, time.Second)

	cases := []struct {
		name  string
		after func() // what happens between the hold and its expiry
	}{
		{"active actor", func() {}},
		{"actor drained away", func() { e.drainAll(t) }},
		{"node restarted", func() {
			stopSweeper()
			e.restart(t)
			stopSweeper = startSweeper(t, e)
		}},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := e.mustHold(t, id, &bookdv1.PlaceHold{HoldId: id + "." + tc.name, Quantity: 1})
			if got, _ := e.store.DueWakes(t.Context(), time.UnixMilli(h.GetExpiresAtMs()), 10); len(got) != 1 {
				t.Errorf("wake times due at the hold's expiry = %v, want the resource's", got)
			}
			tc.after()
			at := expiredAt(t, e, id, h.GetHoldId(), 10*time.Second)
			if late := at.Sub(time.UnixMilli(h.GetExpiresAtMs())); late < 0 || late > time.Second {
				t.Errorf("case %d: hold expired %v after its time, want within a second", i, late)
			}
		})
	}
	waitFor(t, 5*time.Second, "the wake time to be cleared", func() bool {
		got, err := e.store.DueWakes(t.Context(), time.Now().Add(time.Hour), 10)
		return err == nil && len(got) == 0
	})
	if a := e.availability(t, id, "", ""); a.GetSlots()[0].GetFree() != 5 {
		t.Errorf("availability after every hold expired = %v, want 5 free", a.GetSlots())
	}
}
