package persistence

import (
	"context"
	"sync"
	"sync/atomic"
)

// DefaultBusQueue is the default bound of a bus's publish queue, in messages.
const DefaultBusQueue = 65536

// LocalBus is a Bus inside one process: the embedded profile's. One
// goroutine takes messages from a bounded queue and calls the handlers of
// their topic. Create it with NewLocalBus.
type LocalBus struct {
	queue chan Delivery
	done  chan struct{}
	wg    sync.WaitGroup

	mu     sync.RWMutex
	closed bool
	subs   map[string]map[*localSub]struct{}
	// lost are the topics whose messages were dropped since their last
	// Lost signal.
	lost map[string]struct{}

	published, dropped, delivered, resyncs atomic.Uint64
}

var (
	_ Bus      = (*LocalBus)(nil)
	_ Audience = (*LocalBus)(nil)
)

type localSub struct {
	b     *LocalBus
	topic string
	h     func(Delivery)
}

// NewLocalBus returns a running in-process bus whose publish queue holds
// queueLen messages (DefaultBusQueue when queueLen < 1).
func NewLocalBus(queueLen int) *LocalBus {
	if queueLen < 1 {
		queueLen = DefaultBusQueue
	}
	b := &LocalBus{
		queue: make(chan Delivery, queueLen),
		done:  make(chan struct{}),
		subs:  make(map[string]map[*localSub]struct{}),
		lost:  make(map[string]struct{}),
	}
	b.wg.Add(1)
	go b.run()
	return b
}

// Publish implements Publisher.
func (b *LocalBus) Publish(_ context.Context, topic string, payload []byte) error {
	select {
	case <-b.done:
		return ErrBusClosed
	default:
	}
	select {
	case b.queue <- Delivery{Topic: topic, Payload: payload}:
		b.published.Add(1)
	default:
		b.dropped.Add(1)
		b.mu.Lock()
		b.lost[topic] = struct{}{}
		b.mu.Unlock()
	}
	return nil
}

// Subscribed implements Audience.
func (b *LocalBus) Subscribed(topic string) bool {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return len(b.subs[topic]) > 0
}

// Subscribe implements Bus; the subscription is active when it returns.
func (b *LocalBus) Subscribe(_ context.Context, topic string, h func(Delivery)) (Subscription, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil, ErrBusClosed
	}
	s := &localSub{b: b, topic: topic, h: h}
	m := b.subs[topic]
	if m == nil {
		m = make(map[*localSub]struct{})
		b.subs[topic] = m
	}
	m[s] = struct{}{}
	return s, nil
}

// Unsubscribe implements Subscription.
func (s *localSub) Unsubscribe() {
	b := s.b
	b.mu.Lock()
	defer b.mu.Unlock()
	if m := b.subs[s.topic]; m != nil {
		delete(m, s)
		if len(m) == 0 {
			delete(b.subs, s.topic)
		}
	}
}

// Stats implements Bus.
func (b *LocalBus) Stats() BusStats {
	return BusStats{Published: b.published.Load(), Dropped: b.dropped.Load(), Delivered: b.delivered.Load(), Resyncs: b.resyncs.Load()}
}

// Close implements Bus.
func (b *LocalBus) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	close(b.done)
	b.mu.Unlock()
	b.wg.Wait()
	return nil
}

func (b *LocalBus) run() {
	defer b.wg.Done()
	var hs []func(Delivery)
	for {
		select {
		case <-b.done:
			return
		case d := <-b.queue:
			hs = b.handlers(d.Topic, hs[:0])
			for _, h := range hs {
				h(d)
			}
			b.delivered.Add(uint64(len(hs)))
			if len(b.queue) == 0 {
				b.signalLost()
			}
		}
	}
}

// handlers appends the handlers of topic to hs.
func (b *LocalBus) handlers(topic string, hs []func(Delivery)) []func(Delivery) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	for s := range b.subs[topic] {
		hs = append(hs, s.h)
	}
	return hs
}

// signalLost sends Lost to the subscribers of every topic that dropped a
// message; it runs when the queue is empty, so the signal follows every
// message that was queued before the drop.
func (b *LocalBus) signalLost() {
	b.mu.Lock()
	if len(b.lost) == 0 {
		b.mu.Unlock()
		return
	}
	lost := b.lost
	b.lost = make(map[string]struct{})
	b.mu.Unlock()
	for topic := range lost {
		hs := b.handlers(topic, nil)
		for _, h := range hs {
			h(Delivery{Topic: topic, Lost: true})
		}
		b.delivered.Add(uint64(len(hs)))
		b.resyncs.Add(uint64(len(hs)))
	}
}
