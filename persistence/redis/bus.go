// Package redis has the cluster profile's Redis-backed parts: the Bus over
// Redis pub/sub.
package redis

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/bookd/bookd/persistence"
)

// Frame kinds: the first byte of every message the bus puts on a channel.
const (
	frameData   byte = 0 // the rest is a payload
	frameResync byte = 1 // the publisher lost messages of this channel
)

// BusOptions tune a Bus. The zero value takes every default.
type BusOptions struct {
	// Queue bounds the publish queue, in messages. Default
	// persistence.DefaultBusQueue.
	Queue int
	// PipelineMax is the most PUBLISH commands one round trip carries.
	// Default 256.
	PipelineMax int
	// WriteTimeout bounds one pipelined write. Default 5s.
	WriteTimeout time.Duration
	// PingEvery is how long the subscription connection may be quiet
	// before it is pinged, so that a dead one is found. Default 15s.
	PingEvery time.Duration
	// Logger gets the bus's logs. Default slog.Default().
	Logger *slog.Logger
}

func (o *BusOptions) defaults() {
	if o.Queue < 1 {
		o.Queue = persistence.DefaultBusQueue
	}
	if o.PipelineMax < 1 {
		o.PipelineMax = 256
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = 5 * time.Second
	}
	if o.PingEvery <= 0 {
		o.PingEvery = 15 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
}

// Bus is a persistence.Bus over Redis pub/sub: per node, one connection
// for PUBLISH, fed in order by one goroutine that pipelines what the
// bounded queue holds, and one pub/sub connection whose reader goroutine
// calls the handlers. Every channel is a topic. Open it with OpenBus.
type Bus struct {
	opts   BusOptions
	log    *slog.Logger
	client *goredis.Client
	ps     *goredis.PubSub
	queue  chan pubMsg
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu     sync.Mutex
	closed bool
	topics map[string]*topic
	// lost are the topics this node dropped messages of; the publisher
	// sends them a resync frame once its queue is empty. It has a lock of
	// its own: mu is held across SUBSCRIBE and UNSUBSCRIBE round trips,
	// and Publish must never wait on the network.
	lostMu sync.Mutex
	lost   map[string]struct{}

	published, dropped, delivered, resyncs atomic.Uint64
}

var _ persistence.Bus = (*Bus)(nil)

type pubMsg struct {
	topic string
	frame []byte
}

// topic is one channel this node subscribes to.
type topic struct {
	subs map[*sub]struct{}
	// ready is closed at the first confirmation of the SUBSCRIBE.
	ready chan struct{}
	// live is true while the subscription is confirmed on the current
	// connection; a confirmation on a new connection signals Lost.
	live, everLive bool
}

type sub struct {
	b    *Bus
	name string
	h    func(persistence.Delivery)
}

// OpenBus connects to the Redis at url (redis://host:port/db) and starts
// the bus's goroutines.
func OpenBus(ctx context.Context, url string, opts BusOptions) (*Bus, error) {
	opts.defaults()
	o, err := goredis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("redis bus: %w", err)
	}
	o.PoolSize = 2 // the publisher's connection; the pub/sub one is apart
	client := goredis.NewClient(o)
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := client.Ping(pctx).Err(); err != nil {
		_ = client.Close()
		return nil, fmt.Errorf("redis bus: ping: %w", err)
	}
	b := &Bus{
		opts: opts, log: opts.Logger.With("subsystem", "bus"), client: client,
		queue:  make(chan pubMsg, opts.Queue),
		topics: make(map[string]*topic),
		lost:   make(map[string]struct{}),
	}
	b.ctx, b.cancel = context.WithCancel(context.Background())
	b.ps = client.Subscribe(b.ctx) // no channel yet; connects on first use
	b.wg.Add(2)
	go b.publishLoop()
	go b.receiveLoop()
	return b, nil
}

// Publish implements persistence.Publisher.
func (b *Bus) Publish(_ context.Context, topic string, payload []byte) error {
	if b.ctx.Err() != nil {
		return persistence.ErrBusClosed
	}
	frame := make([]byte, 1+len(payload))
	frame[0] = frameData
	copy(frame[1:], payload)
	select {
	case b.queue <- pubMsg{topic: topic, frame: frame}:
		b.published.Add(1)
	default:
		b.dropped.Add(1)
		b.lostMu.Lock()
		b.lost[topic] = struct{}{}
		b.lostMu.Unlock()
	}
	return nil
}

// publishLoop sends the queue in order, as many messages per round trip
// as are waiting (up to PipelineMax).
func (b *Bus) publishLoop() {
	defer b.wg.Done()
	batch := make([]pubMsg, 0, b.opts.PipelineMax)
	for {
		select {
		case <-b.ctx.Done():
			return
		case m := <-b.queue:
			batch = append(batch[:0], m)
		}
	more:
		for len(batch) < b.opts.PipelineMax {
			select {
			case m := <-b.queue:
				batch = append(batch, m)
			default:
				break more
			}
		}
		if err := b.send(batch); err != nil {
			b.lose(batch, err)
		}
		if len(b.queue) == 0 {
			b.sendResyncs()
		}
	}
}

// send writes one pipeline of PUBLISH commands.
func (b *Bus) send(batch []pubMsg) error {
	ctx, cancel := context.WithTimeout(b.ctx, b.opts.WriteTimeout)
	defer cancel()
	pipe := b.client.Pipeline()
	for _, m := range batch {
		pipe.Publish(ctx, m.topic, m.frame)
	}
	_, err := pipe.Exec(ctx)
	return err
}

// lose records that batch may not have reached Redis.
func (b *Bus) lose(batch []pubMsg, err error) {
	if b.ctx.Err() != nil {
		return
	}
	b.log.Warn("publish failed; subscribers will resync", "messages", len(batch), "error", err)
	b.dropped.Add(uint64(len(batch)))
	b.lostMu.Lock()
	for _, m := range batch {
		if m.frame[0] == frameData {
			b.lost[m.topic] = struct{}{}
		}
	}
	b.lostMu.Unlock()
	// Do not spin against a server that is down.
	t := time.NewTimer(100 * time.Millisecond)
	select {
	case <-t.C:
	case <-b.ctx.Done():
		t.Stop()
	}
}

// sendResyncs tells the subscribers of every topic that lost messages to
// resync; topics whose resync frame fails stay for the next try.
func (b *Bus) sendResyncs() {
	b.lostMu.Lock()
	if len(b.lost) == 0 {
		b.lostMu.Unlock()
		return
	}
	batch := make([]pubMsg, 0, len(b.lost))
	for t := range b.lost {
		batch = append(batch, pubMsg{topic: t, frame: []byte{frameResync}})
	}
	b.lost = make(map[string]struct{})
	b.lostMu.Unlock()
	for i := 0; i < len(batch); i += b.opts.PipelineMax {
		part := batch[i:min(i+b.opts.PipelineMax, len(batch))]
		if err := b.send(part); err != nil {
			b.lose(part, err)
			b.lostMu.Lock()
			for _, m := range batch[i:] {
				b.lost[m.topic] = struct{}{}
			}
			b.lostMu.Unlock()
			return
		}
	}
}

// Subscribe implements persistence.Bus: it waits for Redis to confirm the
// channel's SUBSCRIBE (at once when the node already has it).
func (b *Bus) Subscribe(ctx context.Context, name string, h func(persistence.Delivery)) (persistence.Subscription, error) {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil, persistence.ErrBusClosed
	}
	s := &sub{b: b, name: name, h: h}
	t := b.topics[name]
	if t == nil {
		t = &topic{subs: make(map[*sub]struct{}), ready: make(chan struct{})}
		b.topics[name] = t
		// Under b.mu, so that SUBSCRIBE and UNSUBSCRIBE of one channel go
		// out in the order of the map's changes.
		if err := b.ps.Subscribe(ctx, name); err != nil {
			delete(b.topics, name)
			b.mu.Unlock()
			return nil, fmt.Errorf("redis bus: subscribe %s: %w", name, err)
		}
	}
	t.subs[s] = struct{}{}
	b.mu.Unlock()
	select {
	case <-t.ready:
		return s, nil
	case <-ctx.Done():
		s.Unsubscribe()
		return nil, fmt.Errorf("redis bus: subscribe %s: %w", name, ctx.Err())
	case <-b.ctx.Done():
		return nil, persistence.ErrBusClosed
	}
}

// Unsubscribe implements persistence.Subscription.
func (s *sub) Unsubscribe() {
	b := s.b
	b.mu.Lock()
	defer b.mu.Unlock()
	t := b.topics[s.name]
	if t == nil {
		return
	}
	if _, ok := t.subs[s]; !ok {
		return
	}
	delete(t.subs, s)
	if len(t.subs) == 0 && !b.closed {
		delete(b.topics, s.name)
		ctx, cancel := context.WithTimeout(b.ctx, b.opts.WriteTimeout)
		defer cancel()
		if err := b.ps.Unsubscribe(ctx, s.name); err != nil && b.ctx.Err() == nil {
			b.log.Warn("unsubscribe failed", "topic", s.name, "error", err)
		}
	}
}

// receiveLoop reads the pub/sub connection and calls the handlers; go-redis
// makes the connection again after an error and subscribes its channels
// anew, and each channel's new confirmation signals Lost.
func (b *Bus) receiveLoop() {
	defer b.wg.Done()
	var hs []func(persistence.Delivery)
	for {
		msg, err := b.ps.ReceiveTimeout(b.ctx, b.opts.PingEvery)
		if b.ctx.Err() != nil {
			return
		}
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				_ = b.ps.Ping(b.ctx) // an error here shows at the next receive
				continue
			}
			b.disconnected(err)
			continue
		}
		switch m := msg.(type) {
		case *goredis.Subscription:
			if m.Kind == "subscribe" {
				b.confirmed(m.Channel)
			}
		case *goredis.Message:
			d := persistence.Delivery{Topic: m.Channel}
			if len(m.Payload) == 0 {
				continue
			}
			switch m.Payload[0] {
			case frameData:
				d.Payload = []byte(m.Payload[1:])
			case frameResync:
				d.Lost = true
			default:
				continue
			}
			hs = b.deliver(d, hs[:0])
		}
	}
}

// disconnected marks every channel as not live after a connection error.
func (b *Bus) disconnected(err error) {
	b.log.Warn("pub/sub connection lost; subscribers will resync", "error", err)
	b.mu.Lock()
	for _, t := range b.topics {
		t.live = false
	}
	b.mu.Unlock()
	t := time.NewTimer(50 * time.Millisecond)
	select {
	case <-t.C:
	case <-b.ctx.Done():
		t.Stop()
	}
}

// confirmed handles Redis's confirmation of a channel's subscription.
func (b *Bus) confirmed(name string) {
	b.mu.Lock()
	t := b.topics[name]
	if t == nil || t.live {
		b.mu.Unlock()
		return
	}
	t.live = true
	again := t.everLive
	if !t.everLive {
		t.everLive = true
		close(t.ready)
	}
	b.mu.Unlock()
	if again {
		b.deliver(persistence.Delivery{Topic: name, Lost: true}, nil)
	}
}

// deliver calls the handlers of d's topic (outside b.mu).
func (b *Bus) deliver(d persistence.Delivery, hs []func(persistence.Delivery)) []func(persistence.Delivery) {
	b.mu.Lock()
	if t := b.topics[d.Topic]; t != nil {
		for s := range t.subs {
			hs = append(hs, s.h)
		}
	}
	b.mu.Unlock()
	for _, h := range hs {
		h(d)
	}
	b.delivered.Add(uint64(len(hs)))
	if d.Lost {
		b.resyncs.Add(uint64(len(hs)))
	}
	return hs
}

// Stats implements persistence.Bus.
func (b *Bus) Stats() persistence.BusStats {
	return persistence.BusStats{Published: b.published.Load(), Dropped: b.dropped.Load(), Delivered: b.delivered.Load(), Resyncs: b.resyncs.Load()}
}

// Close implements persistence.Bus.
func (b *Bus) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	b.mu.Unlock()
	b.cancel()
	err := b.ps.Close() // ends a receive in progress
	b.wg.Wait()
	return errors.Join(err, b.client.Close())
}
