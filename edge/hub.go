package edge

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/protobuf/proto"

	bookdv1 "github.com/bookd/bookd/messages/bookd/v1"
	"github.com/bookd/bookd/persistence"
)

// LiveConfig tunes the WebSocket hub. Start from DefaultLiveConfig.
type LiveConfig struct {
	// SendQueue bounds each connection's queue of messages not yet
	// written; a client whose queue overflows is closed with
	// CloseSlowConsumer. Default 256.
	SendQueue int
	// Ring is how many deltas each topic keeps for clients that resume.
	// Default 1024.
	Ring int
	// Linger is how long a topic without subscribers stays subscribed to
	// the bus, keeping its ring for clients that come back. Default 1m.
	Linger time.Duration
	// MaxTopics bounds the topics of one connection. Default 64.
	MaxTopics int
	// WriteWait bounds one write to a client. Default 10s.
	WriteWait time.Duration
	// PingEvery is how often the server pings; a client that answers no
	// ping within twice that is closed. Default 20s.
	PingEvery time.Duration
	// DrainSpread is the window over which a draining node closes its
	// connections (each at a random point), so that clients do not all
	// reconnect at once. Default 2s.
	DrainSpread time.Duration
	// AllowedOrigins are the browser origins ("https://app.example.com")
	// that may open a WebSocket besides the node's own host; "*" allows
	// any. Requests without Origin (non-browser clients) are allowed.
	AllowedOrigins []string
}

// DefaultLiveConfig returns the defaults documented on LiveConfig.
func DefaultLiveConfig() LiveConfig {
	return LiveConfig{SendQueue: 256, Ring: 1024, Linger: time.Minute, MaxTopics: 64,
		WriteWait: 10 * time.Second, PingEvery: 20 * time.Second, DrainSpread: 2 * time.Second}
}

// Validate reports the first field that is out of range.
func (c LiveConfig) Validate() error {
	switch {
	case c.SendQueue < 1:
		return fmt.Errorf("edge: Live.SendQueue must be positive, got %d", c.SendQueue)
	case c.Ring < 1:
		return fmt.Errorf("edge: Live.Ring must be positive, got %d", c.Ring)
	case c.Linger < 0:
		return fmt.Errorf("edge: Live.Linger must not be negative, got %v", c.Linger)
	case c.MaxTopics < 1:
		return fmt.Errorf("edge: Live.MaxTopics must be positive, got %d", c.MaxTopics)
	case c.WriteWait <= 0 || c.PingEvery <= 0:
		return fmt.Errorf("edge: Live.WriteWait and Live.PingEvery must be positive, got %v and %v", c.WriteWait, c.PingEvery)
	case c.DrainSpread < 0:
		return fmt.Errorf("edge: Live.DrainSpread must not be negative, got %v", c.DrainSpread)
	}
	return nil
}

// LiveStats are the hub's counters.
type LiveStats struct {
	Connections  int    `json:"connections"`
	Topics       int    `json:"topics"`
	SlowClosed   uint64 `json:"slow_closed"`
	Snapshots    uint64 `json:"snapshots"`
	Resumes      uint64 `json:"resumes"`
	Deltas       uint64 `json:"deltas_sent"`
	BusResyncs   uint64 `json:"bus_resyncs"`
	BusDropped   uint64 `json:"bus_dropped"`
	BusPublished uint64 `json:"bus_published"`
}

// hub fans the bus out to WebSocket connections: one bus subscription
// per topic per node, a ring of recent deltas per topic for resumes, and
// per subscription the position of each resource, so that every client
// gets a snapshot and then every delta once, in order.
type hub struct {
	cfg     LiveConfig
	log     *slog.Logger
	bus     persistence.Bus
	actors  Actors
	catalog persistence.Catalog
	timeout time.Duration

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu       sync.Mutex
	topics   map[string]*hubTopic // by bus topic
	conns    map[*wsConn]struct{}
	draining bool
	drained  chan struct{} // closed when draining and the last conn left

	slowClosed, snapshots, resumes, deltas, busResyncs atomic.Uint64
}

// pos is a position in one resource's history.
type pos struct{ epoch, seq uint64 }

// hubDelta is one change as a topic keeps it.
type hubDelta struct {
	c *bookdv1.AvailabilityChange
	// json is the delta message for the topic's clients, made once.
	json []byte
}

// hubTopic is one bus topic this node subscribes to.
type hubTopic struct {
	h    *hub
	name string      // the bus topic
	ct   clientTopic // what clients call it
	// refs counts subscriptions and subscribes in progress (under h.mu).
	refs      int
	idleSince time.Time
	ready     chan struct{} // closed once the bus subscription is made
	err       error         // why it could not be made
	busSub    persistence.Subscription

	mu    sync.Mutex
	subs  map[*subscription]struct{}
	ring  []*hubDelta // circular, ringN entries from ringStart
	start int
	n     int
	// heads is the newest position seen per resource since the last Lost.
	heads map[string]pos
}

// subscription is one connection's subscription to one topic. Its fields
// are guarded by its topic's mu.
type subscription struct {
	c        *wsConn
	t        *hubTopic
	from, to string
	cursors  map[string]pos
	// syncing are the resources whose snapshot is being read; all means
	// the whole topic's.
	syncing map[string]bool
	all     bool
	closed  bool
}

func newHub(cfg LiveConfig, log *slog.Logger, bus persistence.Bus, actors Actors, catalog persistence.Catalog, timeout time.Duration) *hub {
	h := &hub{cfg: cfg, log: log.With("subsystem", "live"), bus: bus, actors: actors, catalog: catalog, timeout: timeout,
		topics: make(map[string]*hubTopic), conns: make(map[*wsConn]struct{})}
	h.ctx, h.cancel = context.WithCancel(context.Background())
	h.wg.Add(1)
	go h.janitor()
	return h
}

// stats returns the counters.
func (h *hub) stats() LiveStats {
	h.mu.Lock()
	st := LiveStats{Connections: len(h.conns), Topics: len(h.topics)}
	h.mu.Unlock()
	st.SlowClosed, st.Snapshots, st.Resumes, st.Deltas = h.slowClosed.Load(), h.snapshots.Load(), h.resumes.Load(), h.deltas.Load()
	bs := h.bus.Stats()
	st.BusResyncs, st.BusDropped, st.BusPublished = bs.Resyncs, bs.Dropped, bs.Published
	return st
}

// janitor unsubscribes topics that have had no subscriber for Linger.
func (h *hub) janitor() {
	defer h.wg.Done()
	tick := time.NewTicker(max(h.cfg.Linger/4, 100*time.Millisecond))
	defer tick.Stop()
	for {
		select {
		case <-h.ctx.Done():
			return
		case now := <-tick.C:
			var gone []*hubTopic
			h.mu.Lock()
			for name, t := range h.topics {
				if t.refs == 0 && now.Sub(t.idleSince) >= h.cfg.Linger {
					delete(h.topics, name)
					gone = append(gone, t)
				}
			}
			h.mu.Unlock()
			for _, t := range gone {
				if t.busSub != nil {
					t.busSub.Unsubscribe()
				}
			}
		}
	}
}

// acquire returns the topic, subscribing the node to it on the bus when it
// is new, with one more reference; release it with release.
func (h *hub) acquire(ctx context.Context, name string, ct clientTopic) (*hubTopic, error) {
	h.mu.Lock()
	t := h.topics[name]
	if t == nil {
		t = &hubTopic{h: h, name: name, ct: ct, ready: make(chan struct{}), subs: make(map[*subscription]struct{}),
			ring: make([]*hubDelta, h.cfg.Ring), heads: make(map[string]pos)}
		h.topics[name] = t
		t.refs++
		h.mu.Unlock()
		t.busSub, t.err = h.bus.Subscribe(ctx, name, t.onDelivery)
		close(t.ready)
	} else {
		t.refs++
		h.mu.Unlock()
		select {
		case <-t.ready:
		case <-ctx.Done():
			h.release(t)
			return nil, ctx.Err()
		}
	}
	if t.err != nil {
		h.mu.Lock()
		if h.topics[name] == t {
			delete(h.topics, name) // the next subscribe tries again
		}
		h.mu.Unlock()
		h.release(t)
		return nil, t.err
	}
	return t, nil
}

func (h *hub) release(t *hubTopic) {
	h.mu.Lock()
	t.refs--
	if t.refs == 0 {
		t.idleSince = time.Now()
	}
	h.mu.Unlock()
}

// onDelivery runs on the bus's goroutine: it keeps the delta in the ring
// and hands it to every subscription, never blocking.
func (t *hubTopic) onDelivery(d persistence.Delivery) {
	if d.Lost {
		t.h.busResyncs.Add(1)
		t.mu.Lock()
		defer t.mu.Unlock()
		t.n, t.start = 0, 0
		clear(t.ring)
		clear(t.heads)
		for s := range t.subs {
			t.resyncAll(s)
		}
		return
	}
	c := new(bookdv1.AvailabilityChange)
	if err := proto.Unmarshal(d.Payload, c); err != nil {
		t.h.log.Warn("undecodable availability change", "topic", t.name, "error", err)
		return
	}
	hd := &hubDelta{c: c}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.push(hd)
	if t.ct.kind != topicUser {
		r := c.GetResourceId()
		if hp, ok := t.heads[r]; !ok || hp.epoch != c.GetEpoch() || c.GetSeq() > hp.seq {
			t.heads[r] = pos{c.GetEpoch(), c.GetSeq()}
		}
	}
	for s := range t.subs {
		t.offer(s, hd)
	}
}

// push adds hd to the ring, dropping the oldest when it is full.
func (t *hubTopic) push(hd *hubDelta) {
	size := len(t.ring)
	if t.n < size {
		t.ring[(t.start+t.n)%size] = hd
		t.n++
		return
	}
	t.ring[t.start] = hd
	t.start = (t.start + 1) % size
}

// each calls fn with the ring's deltas, oldest first.
func (t *hubTopic) each(fn func(*hubDelta)) {
	for i := range t.n {
		fn(t.ring[(t.start+i)%len(t.ring)])
	}
}

// slotsJSON converts slot counts for a message.
func slotsJSON(slots []*bookdv1.SlotAvailability) []slotJSON {
	out := make([]slotJSON, 0, len(slots))
	for _, s := range slots {
		out = append(out, slotJSON{Start: s.GetStart(), Free: s.GetFree(), Held: s.GetHeld(), Confirmed: s.GetConfirmed()})
	}
	return out
}

// microLayout is RFC 3339 with microseconds.
const microLayout = "2006-01-02T15:04:05.000000Z07:00"

// deltaJSON returns hd's message for this topic's clients.
func (t *hubTopic) deltaJSON(hd *hubDelta) []byte {
	if hd.json == nil {
		c := hd.c
		m := deltaMsg{Type: "delta", Topic: t.ct.String(), ResourceID: c.GetResourceId(), ListingID: c.GetListingId(),
			Epoch: strconv.FormatUint(c.GetEpoch(), 10), PrevSeq: c.GetPrevSeq(), Seq: c.GetSeq(), Capacity: c.GetCapacity(),
			CommittedAt: time.UnixMicro(c.GetCommittedAtUs()).UTC().Format(microLayout), Slots: slotsJSON(c.GetSlots())}
		for _, h := range c.GetHolds() {
			m.Holds = append(m.Holds, holdJSON(h))
		}
		hd.json = mustJSON(m)
	}
	return hd.json
}

// offer hands one live delta to s (under t.mu).
func (t *hubTopic) offer(s *subscription, hd *hubDelta) {
	if s.all {
		return // the snapshot being read is followed by the ring
	}
	c := hd.c
	if t.ct.kind == topicUser {
		// A user's changes come from many resources and skip the batches
		// of other users: there is no chain to check.
		t.send(s, t.deltaJSON(hd))
		return
	}
	r := c.GetResourceId()
	if s.syncing[r] {
		return
	}
	cur, ok := s.cursors[r]
	switch {
	case ok && cur.epoch == c.GetEpoch() && c.GetPrevSeq() == cur.seq:
		s.cursors[r] = pos{cur.epoch, c.GetSeq()}
		t.send(s, t.deltaJSON(hd))
	case ok && cur.epoch == c.GetEpoch() && c.GetSeq() <= cur.seq:
		// Already in the client's snapshot.
	default:
		// A gap, a new epoch or a resource the client has not seen.
		t.resync(s, r)
	}
}

// send queues msg on s's connection; a full queue closes it.
func (t *hubTopic) send(s *subscription, msg []byte) {
	if !s.c.enqueue(msg) {
		return
	}
	t.h.deltas.Add(1)
}

// resync reads a fresh snapshot of resource r for s (under t.mu).
func (t *hubTopic) resync(s *subscription, r string) {
	if s.syncing == nil {
		s.syncing = make(map[string]bool)
	}
	s.syncing[r] = true
	t.h.goFetch(s, []string{r})
}

// resyncAll reads a fresh snapshot of the whole topic for s (under t.mu).
func (t *hubTopic) resyncAll(s *subscription) {
	s.all = true
	t.h.goFetch(s, nil)
}

// goFetch reads snapshots on a goroutine of the hub's.
func (h *hub) goFetch(s *subscription, resources []string) {
	h.wg.Add(1)
	go func() {
		defer h.wg.Done()
		h.fetch(s, resources)
	}()
}

// fetch reads the availability of resources (nil: every resource of the
// topic) and sends s a snapshot of them followed by the ring's newer
// deltas.
func (h *hub) fetch(s *subscription, resources []string) {
	t := s.t
	if t.ct.kind == topicUser {
		t.mu.Lock()
		defer t.mu.Unlock()
		if !s.closed {
			s.all = false
			h.snapshots.Add(1)
			s.c.enqueue(mustJSON(snapshotMsg{Type: "snapshot", Topic: t.ct.String(), Resources: []resourceSnapshot{}, Reset: true}))
		}
		return
	}
	ctx, cancel := context.WithTimeout(h.ctx, 4*h.timeout)
	defer cancel()
	full := resources == nil
	if full {
		var err error
		if resources, err = h.topicResources(ctx, t.ct); err != nil {
			h.failSub(s, "unavailable", err.Error())
			return
		}
	}
	avail := make([]*bookdv1.Availability, 0, len(resources))
	for _, r := range resources {
		a, code, err := h.readAvailability(ctx, r, s.from, s.to)
		if err != nil {
			if code == "not-found" && t.ct.kind == topicListing {
				continue // removed meanwhile
			}
			h.failSub(s, code, err.Error())
			return
		}
		avail = append(avail, a)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if s.closed {
		return
	}
	if s.cursors == nil {
		s.cursors = make(map[string]pos)
	}
	msg := snapshotMsg{Type: "snapshot", Topic: t.ct.String(), Resources: make([]resourceSnapshot, 0, len(avail))}
	for _, a := range avail {
		r := a.GetResourceId()
		if cur, ok := s.cursors[r]; ok && cur.epoch == a.GetEpoch() && cur.seq > a.GetSeq() && !full {
			continue // a newer snapshot of r overtook this one
		}
		s.cursors[r] = pos{a.GetEpoch(), a.GetSeq()}
		delete(s.syncing, r)
		if hp, ok := t.heads[r]; !ok || hp.epoch != a.GetEpoch() || a.GetSeq() > hp.seq {
			t.heads[r] = pos{a.GetEpoch(), a.GetSeq()}
		}
		msg.Resources = append(msg.Resources, resourceSnapshot{ResourceID: r, Capacity: a.GetCapacity(),
			Epoch: strconv.FormatUint(a.GetEpoch(), 10), Seq: a.GetSeq(), Slots: slotsJSON(a.GetSlots())})
	}
	if full {
		s.all = false
	}
	h.snapshots.Add(1)
	if !s.c.enqueue(mustJSON(msg)) {
		return
	}
	// What came while the snapshot was read: the ring's newer deltas of
	// the same epochs, in order; a gap means another snapshot.
	t.each(func(hd *hubDelta) {
		r := hd.c.GetResourceId()
		cur, ok := s.cursors[r]
		if !ok || s.syncing[r] || hd.c.GetEpoch() != cur.epoch || hd.c.GetSeq() <= cur.seq {
			return
		}
		if hd.c.GetPrevSeq() != cur.seq {
			t.resync(s, r)
			return
		}
		s.cursors[r] = pos{cur.epoch, hd.c.GetSeq()}
		t.send(s, t.deltaJSON(hd))
	})
}

// topicResources lists the resources of a resource or listing topic.
func (h *hub) topicResources(ctx context.Context, ct clientTopic) ([]string, error) {
	if ct.kind == topicResource {
		return []string{ct.id}, nil
	}
	rs, err := h.catalog.ListResources(ctx, ct.id)
	if err != nil {
		return nil, fmt.Errorf("list the resources of listing %s: %w", ct.id, err)
	}
	ids := make([]string, len(rs))
	for i, r := range rs {
		ids[i] = r.ID
	}
	return ids, nil
}

// readAvailability asks resource r for its slots of [from, to), retrying
// while it is moving; code is the client error code of a failure.
func (h *hub) readAvailability(ctx context.Context, r, from, to string) (*bookdv1.Availability, string, error) {
	var last error
	for attempt := range 5 {
		if attempt > 0 {
			select {
			case <-time.After(time.Duration(attempt) * 100 * time.Millisecond):
			case <-ctx.Done():
				return nil, "unavailable", ctx.Err()
			}
		}
		res, err := h.actors.RequestWithin(ctx, h.timeout, resourceKind, r, &bookdv1.GetAvailability{From: from, To: to})
		if err != nil {
			last = err
			continue
		}
		rep, ok := res.(*bookdv1.AvailabilityReply)
		if !ok {
			return nil, "unavailable", fmt.Errorf("resource %s answered %T", r, res)
		}
		if a := rep.GetAvailability(); a != nil {
			return a, "", nil
		}
		switch e := rep.GetError(); e.GetCode() {
		case bookdv1.ErrorCode_ERROR_CODE_NOT_FOUND:
			return nil, "not-found", fmt.Errorf("no resource %s", r)
		case bookdv1.ErrorCode_ERROR_CODE_INVALID_ARGUMENT:
			return nil, "bad-message", fmt.Errorf("%s: %s", e.GetField(), e.GetDetail())
		default:
			last = fmt.Errorf("resource %s: %s", r, e.GetDetail())
		}
	}
	return nil, "unavailable", last
}

// failSub tells the client a subscription could not be served and ends it.
func (h *hub) failSub(s *subscription, code, detail string) {
	t := s.t
	t.mu.Lock()
	closed := s.closed
	t.mu.Unlock()
	if closed {
		return
	}
	s.c.enqueue(mustJSON(errorMsg{Type: "error", Topic: t.ct.String(), Code: code, Detail: detail}))
	s.c.dropSub(s)
}

// subscribe starts s on its topic: resumed from since when the ring has
// every delta after it, else from a fresh snapshot.
func (h *hub) subscribe(s *subscription, since map[string]Position) {
	t := s.t
	t.mu.Lock()
	defer t.mu.Unlock()
	t.subs[s] = struct{}{}
	if deltas, ok := t.resumable(since); ok {
		h.resumes.Add(1)
		s.cursors = make(map[string]pos, len(since))
		for r, p := range since {
			e, _ := strconv.ParseUint(p.Epoch, 10, 64)
			s.cursors[r] = pos{e, p.Seq}
		}
		if !s.c.enqueue(mustJSON(resumedMsg{Type: "resumed", Topic: t.ct.String()})) {
			return
		}
		for _, hd := range deltas {
			s.cursors[hd.c.GetResourceId()] = pos{hd.c.GetEpoch(), hd.c.GetSeq()}
			t.send(s, t.deltaJSON(hd))
		}
		return
	}
	t.resyncAll(s)
}

// resumable returns the deltas after since when the ring holds all of
// them and since covers every resource the topic knows (under t.mu).
func (t *hubTopic) resumable(since map[string]Position) ([]*hubDelta, bool) {
	if len(since) == 0 || t.ct.kind == topicUser {
		return nil, false
	}
	for r := range t.heads {
		if _, ok := since[r]; !ok {
			return nil, false // a resource the client has not seen
		}
	}
	at := make(map[string]pos, len(since))
	for r, p := range since {
		e, err := strconv.ParseUint(p.Epoch, 10, 64)
		hp, ok := t.heads[r]
		if err != nil || !ok || hp.epoch != e || hp.seq < p.Seq {
			return nil, false
		}
		at[r] = pos{e, p.Seq}
	}
	var out []*hubDelta
	ok := true
	t.each(func(hd *hubDelta) {
		r := hd.c.GetResourceId()
		cur, known := at[r]
		switch {
		case !ok:
		case !known:
			ok = false
		case hd.c.GetEpoch() != cur.epoch || hd.c.GetSeq() <= cur.seq:
		case hd.c.GetPrevSeq() != cur.seq:
			ok = false // the ring no longer has the deltas in between
		default:
			at[r] = pos{cur.epoch, hd.c.GetSeq()}
			out = append(out, hd)
		}
	})
	if !ok {
		return nil, false
	}
	for r, p := range at {
		if t.heads[r] != p {
			return nil, false
		}
	}
	return out, true
}

// unsubscribe ends s.
func (h *hub) unsubscribe(s *subscription) {
	t := s.t
	t.mu.Lock()
	if s.closed {
		t.mu.Unlock()
		return
	}
	s.closed = true
	delete(t.subs, s)
	t.mu.Unlock()
	h.release(t)
}

// addConn registers c unless the node is draining.
func (h *hub) addConn(c *wsConn) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.draining {
		return false
	}
	h.conns[c] = struct{}{}
	return true
}

func (h *hub) removeConn(c *wsConn) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.conns, c)
	if h.draining && len(h.conns) == 0 && h.drained != nil {
		close(h.drained)
		h.drained = nil
	}
}

// drain refuses new connections and closes every open one with
// CloseGoingAway, each at a random point of DrainSpread, then waits until
// they are gone or ctx ends.
func (h *hub) drain(ctx context.Context) error {
	h.mu.Lock()
	h.draining = true
	conns := make([]*wsConn, 0, len(h.conns))
	for c := range h.conns {
		conns = append(conns, c)
	}
	done := make(chan struct{})
	if len(h.conns) == 0 {
		close(done)
	} else {
		h.drained = done
	}
	h.mu.Unlock()
	spread := h.cfg.DrainSpread
	timers := make([]*time.Timer, 0, len(conns))
	for _, c := range conns {
		d := time.Duration(0)
		if spread > 0 {
			d = rand.N(spread)
		}
		timers = append(timers, time.AfterFunc(d, func() { c.kill(CloseGoingAway, "the node is draining; reconnect and resume") }))
	}
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		for _, tm := range timers {
			tm.Stop()
		}
		for _, c := range conns {
			c.kill(CloseGoingAway, "the node is draining; reconnect and resume")
		}
		return fmt.Errorf("live: %d connections still open: %w", h.stats().Connections, ctx.Err())
	}
}

// close stops the hub's goroutines and its bus subscriptions.
func (h *hub) close() {
	h.cancel()
	h.wg.Wait()
	h.mu.Lock()
	topics := h.topics
	h.topics = map[string]*hubTopic{}
	h.mu.Unlock()
	for _, t := range topics {
		if t.busSub != nil {
			t.busSub.Unsubscribe()
		}
	}
}
