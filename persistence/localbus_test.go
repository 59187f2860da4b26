package persistence_test

import (
	"sync"
	"testing"

	"github.com/bookd/bookd/persistence"
	"github.com/bookd/bookd/persistence/conformance"
)

func TestLocalBusConformance(t *testing.T) {
	const queue = 64
	var mu sync.Mutex
	buses := map[string]*persistence.LocalBus{}
	conformance.RunBus(t, conformance.BusHarness{
		Queue: queue,
		// Every "node" of one test shares one in-process bus.
		Open: func(t *testing.T) persistence.Bus {
			mu.Lock()
			defer mu.Unlock()
			b := buses[t.Name()]
			if b == nil {
				b = persistence.NewLocalBus(queue)
				buses[t.Name()] = b
			}
			return b
		},
		// A handler that blocks stalls the delivery goroutine.
		Stall: func(t *testing.T, bus persistence.Bus) func() {
			entered, release := make(chan struct{}), make(chan struct{})
			s, err := bus.Subscribe(t.Context(), "stall", func(persistence.Delivery) {
				close(entered)
				<-release
			})
			if err != nil {
				t.Fatal(err)
			}
			if err := bus.Publish(t.Context(), "stall", nil); err != nil {
				t.Fatal(err)
			}
			<-entered
			return func() { s.Unsubscribe(); close(release) }
		},
	})
}

// TestLocalBusSubscribed: a topic is subscribed from the time Subscribe
// returns until its last subscription is gone.
func TestLocalBusSubscribed(t *testing.T) {
	b := persistence.NewLocalBus(0)
	t.Cleanup(func() { _ = b.Close() })
	if b.Subscribed("t") {
		t.Fatal("Subscribed(t) = true before any Subscribe")
	}
	s1, err := b.Subscribe(t.Context(), "t", func(persistence.Delivery) {})
	if err != nil {
		t.Fatal(err)
	}
	s2, err := b.Subscribe(t.Context(), "t", func(persistence.Delivery) {})
	if err != nil {
		t.Fatal(err)
	}
	if !b.Subscribed("t") || b.Subscribed("u") {
		t.Errorf("Subscribed(t), Subscribed(u) = %v, %v; want true, false", b.Subscribed("t"), b.Subscribed("u"))
	}
	s1.Unsubscribe()
	if !b.Subscribed("t") {
		t.Error("Subscribed(t) = false with one subscription left")
	}
	s2.Unsubscribe()
	if b.Subscribed("t") {
		t.Error("Subscribed(t) = true after the last Unsubscribe")
	}
}
