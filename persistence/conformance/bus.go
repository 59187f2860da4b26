package conformance

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/bookd/bookd/persistence"
)

// BusHarness is how RunBus reaches a bus implementation.
type BusHarness struct {
	// Open opens a new bus, as one node of a cluster would: every bus one
	// harness opens shares the backend, so a message published on one
	// reaches the subscribers of all. Its queue holds Queue messages. The
	// suite closes it.
	Open func(t *testing.T) persistence.Bus
	// Queue is the publish queue bound Open gives its buses.
	Queue int
	// Stall makes publishing on bus stall (the delivery goroutine of an
	// in-process bus, the server of a networked one) until the returned
	// function is called, so that the publish queue overflows.
	Stall func(t *testing.T, bus persistence.Bus) (resume func())
}

// RunBus runs the bus suite as subtests of t.
func RunBus(t *testing.T, h BusHarness) {
	t.Helper()
	t.Run("OrderAcrossNodes", func(t *testing.T) { testBusOrder(t, h) })
	t.Run("FanOut", func(t *testing.T) { testBusFanOut(t, h) })
	t.Run("Unsubscribe", func(t *testing.T) { testBusUnsubscribe(t, h) })
	t.Run("OverflowSignalsLost", func(t *testing.T) { testBusOverflow(t, h) })
	t.Run("Closed", func(t *testing.T) { testBusClosed(t, h) })
}

// recorder collects deliveries; its handler never blocks for long.
type recorder struct {
	mu  sync.Mutex
	got []persistence.Delivery
}

func (r *recorder) handle(d persistence.Delivery) {
	r.mu.Lock()
	r.got = append(r.got, d)
	r.mu.Unlock()
}

func (r *recorder) snapshot() []persistence.Delivery {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]persistence.Delivery(nil), r.got...)
}

// waitFor polls until cond holds of the deliveries, or fails t after 10s.
func (r *recorder) waitFor(t *testing.T, what string, cond func([]persistence.Delivery) bool) []persistence.Delivery {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := r.snapshot()
		if cond(got) {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 10s, %s: not yet; got %d deliveries", what, len(got))
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func subscribe(t *testing.T, b persistence.Bus, topic string, r *recorder) persistence.Subscription {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	s, err := b.Subscribe(ctx, topic, r.handle)
	if err != nil {
		t.Fatalf("Subscribe(%q) = %v", topic, err)
	}
	return s
}

func openBus(t *testing.T, h BusHarness) persistence.Bus {
	t.Helper()
	b := h.Open(t)
	t.Cleanup(func() {
		if err := b.Close(); err != nil {
			t.Errorf("Close() = %v", err)
		}
	})
	return b
}

// count returns how many data deliveries of topic got has.
func count(got []persistence.Delivery, topic string) int {
	n := 0
	for _, d := range got {
		if d.Topic == topic && !d.Lost {
			n++
		}
	}
	return n
}

// testBusOrder: what one node publishes on two topics, interleaved, reaches
// a subscriber of both on another node completely and in order; a message
// published right after Subscribe returned is delivered.
func testBusOrder(t *testing.T, h BusHarness) {
	pub, subBus := openBus(t, h), openBus(t, h)
	var r recorder
	subscribe(t, subBus, "order:a", &r)
	subscribe(t, subBus, "order:b", &r)
	// In chunks that fit the queue, each delivered before the next.
	const n = 500
	chunk := max(h.Queue/2, 1)
	var got []persistence.Delivery
	for start := 0; start < n; start += chunk {
		end := min(start+chunk, n)
		for i := start; i < end; i++ {
			topic := "order:a"
			if i%3 == 0 {
				topic = "order:b"
			}
			if err := pub.Publish(t.Context(), topic, []byte(strconv.Itoa(i))); err != nil {
				t.Fatalf("Publish(%d) = %v", i, err)
			}
		}
		got = r.waitFor(t, fmt.Sprintf("messages 0..%d delivered", end-1), func(got []persistence.Delivery) bool { return len(got) >= end })
	}
	for i, d := range got {
		if d.Lost {
			t.Fatalf("delivery %d is Lost; nothing overflowed", i)
		}
		want := "order:a"
		if i%3 == 0 {
			want = "order:b"
		}
		if string(d.Payload) != strconv.Itoa(i) || d.Topic != want {
			t.Fatalf("delivery %d = %s %q, want %s %q", i, d.Topic, d.Payload, want, strconv.Itoa(i))
		}
	}
	if len(got) != n {
		t.Errorf("got %d deliveries, want %d", len(got), n)
	}
	if st := pub.Stats(); st.Published < n || st.Dropped != 0 {
		t.Errorf("publisher Stats() = %+v, want Published >= %d and Dropped 0", st, n)
	}
}

// testBusFanOut: two subscriptions on one node and one on another all get
// every message; one node's own messages reach it too.
func testBusFanOut(t *testing.T, h BusHarness) {
	a, b := openBus(t, h), openBus(t, h)
	var r1, r2, r3 recorder
	subscribe(t, a, "fan", &r1)
	subscribe(t, a, "fan", &r2)
	subscribe(t, b, "fan", &r3)
	for i := range 10 {
		if err := a.Publish(t.Context(), "fan", []byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
	}
	for i, r := range []*recorder{&r1, &r2, &r3} {
		got := r.waitFor(t, fmt.Sprintf("subscriber %d has 10 messages", i+1), func(got []persistence.Delivery) bool { return len(got) >= 10 })
		for j, d := range got {
			if len(d.Payload) != 1 || d.Payload[0] != byte(j) {
				t.Errorf("subscriber %d delivery %d = %v, want [%d]", i+1, j, d.Payload, j)
			}
		}
	}
}

// testBusUnsubscribe: after Unsubscribe, a handler gets nothing more while
// the topic's other subscribers go on.
func testBusUnsubscribe(t *testing.T, h BusHarness) {
	a, b := openBus(t, h), openBus(t, h)
	var gone, stays, later recorder
	s := subscribe(t, b, "unsub", &gone)
	subscribe(t, b, "unsub", &stays)
	if err := a.Publish(t.Context(), "unsub", []byte("1")); err != nil {
		t.Fatal(err)
	}
	gone.waitFor(t, "first message", func(got []persistence.Delivery) bool { return len(got) == 1 })
	s.Unsubscribe()
	s.Unsubscribe() // idempotent
	if err := a.Publish(t.Context(), "unsub", []byte("2")); err != nil {
		t.Fatal(err)
	}
	stays.waitFor(t, "the other subscriber has both", func(got []persistence.Delivery) bool { return len(got) == 2 })
	// Deliveries on one bus are in order: once a new subscription of the
	// topic sees a third message, the second was handled long ago.
	sub3 := subscribe(t, b, "unsub", &later)
	if err := a.Publish(t.Context(), "unsub", []byte("3")); err != nil {
		t.Fatal(err)
	}
	later.waitFor(t, "third message", func(got []persistence.Delivery) bool { return count(got, "unsub") >= 1 })
	sub3.Unsubscribe()
	if got := gone.snapshot(); len(got) != 1 {
		t.Errorf("unsubscribed handler got %d deliveries, want 1", len(got))
	}
}

// testBusOverflow: a publisher whose queue overflows drops messages but
// never reorders them, counts the drops, and its topic's subscribers get
// Lost after the last message that got through.
func testBusOverflow(t *testing.T, h BusHarness) {
	a, b := openBus(t, h), openBus(t, h)
	var r recorder
	subscribe(t, b, "over", &r)
	resume := h.Stall(t, a)
	n := h.Queue*2 + 10
	for i := range n {
		if err := a.Publish(t.Context(), "over", []byte(strconv.Itoa(i))); err != nil {
			t.Fatal(err)
		}
	}
	resume()
	got := r.waitFor(t, "a Lost signal", func(got []persistence.Delivery) bool {
		return len(got) > 0 && got[len(got)-1].Lost
	})
	last := -1
	for _, d := range got {
		if d.Lost {
			continue
		}
		i, err := strconv.Atoi(string(d.Payload))
		if err != nil || i <= last {
			t.Fatalf("delivery %q after %d: want increasing numbers", d.Payload, last)
		}
		last = i
	}
	if st := a.Stats(); st.Dropped == 0 {
		t.Errorf("Stats() = %+v after overflowing the queue, want Dropped > 0", st)
	}
	if st := b.Stats(); st.Resyncs == 0 {
		t.Errorf("subscriber Stats() = %+v after a Lost signal, want Resyncs > 0", st)
	}
}

// testBusClosed: a closed bus refuses Publish and Subscribe.
func testBusClosed(t *testing.T, h BusHarness) {
	b := h.Open(t)
	if err := b.Close(); err != nil {
		t.Fatalf("Close() = %v", err)
	}
	if err := b.Close(); err != nil {
		t.Errorf("second Close() = %v", err)
	}
	if err := b.Publish(t.Context(), "x", nil); !errors.Is(err, persistence.ErrBusClosed) {
		t.Errorf("Publish after Close = %v, want ErrBusClosed", err)
	}
	if _, err := b.Subscribe(t.Context(), "x", func(persistence.Delivery) {}); !errors.Is(err, persistence.ErrBusClosed) {
		t.Errorf("Subscribe after Close = %v, want ErrBusClosed", err)
	}
}
