package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/cluster"
	"github.com/hashicorp/memberlist"
)

// GossipConfig is how a node takes part in the memberlist gossip that forms
// the cluster. Start from DefaultGossipConfig.
//
// The failure detector is tuned for a LAN where nodes answer a ping within
// milliseconds: a node that stops answering is suspected after about one
// ProbeInterval plus ProbeTimeout, and declared dead SuspicionMult ×
// ProbeInterval later when another member confirms the suspicion (up to
// SuspicionMaxTimeoutMult times that without confirmations). With the
// defaults a SIGKILLed node of a three-node cluster is declared dead in
// about 1.5 s (at most about 3.5 s in larger clusters) (memberlist's DefaultLANConfig takes 5–25 s). Lower values
// risk declaring a busy node dead, and protoactor bans a member id that
// left for good: that node then has to restart (see Node.Evicted).
type GossipConfig struct {
	// BindAddr is the host:port gossip listens on (UDP and TCP). Required.
	BindAddr string
	// AdvertiseAddr is the host:port other nodes reach this node's gossip at
	// (containers, NAT). Default BindAddr. A host name is resolved once.
	AdvertiseAddr string
	// Join lists seed nodes' gossip addresses (host:port). A node that cannot
	// reach any keeps serving alone and retries every JoinRetry.
	Join []string
	// JoinRetry is how often a failed join is tried again. Default 1s.
	JoinRetry time.Duration
	// SecretKey, when set, encrypts and authenticates gossip (AES-GCM); 16,
	// 24 or 32 bytes, the same on every node.
	SecretKey []byte

	// ProbeInterval is how often each node pings a random member. Default
	// 200ms (memberlist LAN: 1s).
	ProbeInterval time.Duration
	// ProbeTimeout is how long a ping may take before indirect pings start.
	// Default 150ms (LAN: 500ms); it adapts upwards on an overloaded node
	// (memberlist's awareness).
	ProbeTimeout time.Duration
	// SuspicionMult scales the time from suspect to dead: SuspicionMult ×
	// ProbeInterval (× log10 of the members past ten) once SuspicionMult-2
	// other members confirm, or at once below SuspicionMult members.
	// Default 5 (LAN: 4, with a 1s interval).
	SuspicionMult int
	// SuspicionMaxTimeoutMult bounds the suspicion time without
	// confirmations to this multiple of the minimum. Default 3 (LAN: 6).
	SuspicionMaxTimeoutMult int
	// GossipInterval is how often queued gossip is sent. Default 100ms.
	GossipInterval time.Duration
	// PushPullInterval is how often two nodes exchange their whole state.
	// Default 10s (LAN: 30s).
	PushPullInterval time.Duration
	// RefreshInterval is how often the member list is published even when
	// memberlist fired no event (suspect and alive changes fire none), and
	// this node's activation count is gossiped. Default 1s.
	RefreshInterval time.Duration
	// LeaveTimeout bounds the wait for a graceful leave to be gossiped.
	// Default 2s.
	LeaveTimeout time.Duration
}

// DefaultGossipConfig returns the defaults documented on GossipConfig.
func DefaultGossipConfig() GossipConfig {
	return GossipConfig{
		JoinRetry:               time.Second,
		ProbeInterval:           200 * time.Millisecond,
		ProbeTimeout:            150 * time.Millisecond,
		SuspicionMult:           5,
		SuspicionMaxTimeoutMult: 3,
		GossipInterval:          100 * time.Millisecond,
		PushPullInterval:        10 * time.Second,
		RefreshInterval:         time.Second,
		LeaveTimeout:            2 * time.Second,
	}
}

// Validate reports the first field that is wrong.
func (c GossipConfig) Validate() error {
	if _, _, err := splitHostPort(c.BindAddr); err != nil {
		return fmt.Errorf("cluster: gossip BindAddr: %w", err)
	}
	if c.AdvertiseAddr != "" {
		if _, _, err := splitHostPort(c.AdvertiseAddr); err != nil {
			return fmt.Errorf("cluster: gossip AdvertiseAddr: %w", err)
		}
	}
	for _, j := range c.Join {
		if _, _, err := splitHostPort(j); err != nil {
			return fmt.Errorf("cluster: gossip Join %q: %w", j, err)
		}
	}
	switch n := len(c.SecretKey); {
	case n != 0 && n != 16 && n != 24 && n != 32:
		return fmt.Errorf("cluster: gossip SecretKey must be 16, 24 or 32 bytes, got %d", n)
	case c.JoinRetry <= 0:
		return fmt.Errorf("cluster: gossip JoinRetry must be positive, got %v", c.JoinRetry)
	case c.ProbeInterval <= 0 || c.ProbeTimeout <= 0 || c.ProbeTimeout > c.ProbeInterval:
		return fmt.Errorf("cluster: gossip ProbeTimeout (%v) must be positive and at most ProbeInterval (%v)", c.ProbeTimeout, c.ProbeInterval)
	case c.SuspicionMult < 1 || c.SuspicionMaxTimeoutMult < 1:
		return fmt.Errorf("cluster: gossip SuspicionMult and SuspicionMaxTimeoutMult must be at least 1")
	case c.GossipInterval <= 0 || c.PushPullInterval <= 0 || c.RefreshInterval <= 0 || c.LeaveTimeout <= 0:
		return errors.New("cluster: gossip GossipInterval, PushPullInterval, RefreshInterval and LeaveTimeout must be positive")
	}
	return nil
}

func splitHostPort(addr string) (string, int, error) {
	host, ps, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	port, err := strconv.Atoi(ps)
	if err != nil || port < 0 || port > 65535 {
		return "", 0, fmt.Errorf("bad port in %q", addr)
	}
	return host, port, nil
}

// memberMeta is what a node gossips about itself (memberlist allows 512
// bytes).
type memberMeta struct {
	// Addr is the actor-remote address (host:port) others send to.
	Addr  string   `json:"a"`
	Kinds []string `json:"k"`
	// Active is how many activations the node had at its last refresh.
	Active int `json:"n"`
}

// MemberlistProvider is a protoactor cluster provider that forms the cluster
// with hashicorp/memberlist gossip. Each process start is a new memberlist
// node named after the actor system's id, which protoactor makes fresh per
// start (it bans a member id that left).
//
// memberlist calls its delegates under its own locks, so they only signal;
// one goroutine reads the member list and publishes it with
// MemberList.UpdateClusterTopology, on every signal and every
// RefreshInterval.
type MemberlistProvider struct {
	cfg GossipConfig
	log *slog.Logger
	// active reports this node's activation count for the metadata.
	active func() int

	c    *cluster.Cluster
	ml   *memberlist.Memberlist
	meta atomic.Pointer[[]byte]
	// nodes are the live nodes as memberlist's events last described them.
	// memberlist's Members() hands out its own *Node, which it goes on
	// changing under its lock: the events' copies are the race-free view.
	mu      sync.Mutex
	nodes   map[string]gossipMember
	changed chan struct{}
	stop    chan struct{}
	wg      sync.WaitGroup
	once    sync.Once
	// evicted is closed when this node finds itself banned by the cluster.
	evicted     chan struct{}
	evictedOnce sync.Once
}

var _ cluster.ClusterProvider = (*MemberlistProvider)(nil)

// NewMemberlistProvider returns a provider for cfg; active, when not nil,
// reports the node's activation count for the gossiped metadata.
func NewMemberlistProvider(cfg GossipConfig, log *slog.Logger, active func() int) (*MemberlistProvider, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if active == nil {
		active = func() int { return 0 }
	}
	return &MemberlistProvider{
		cfg: cfg, log: log.With("subsystem", "gossip"), active: active,
		changed: make(chan struct{}, 1), stop: make(chan struct{}), evicted: make(chan struct{}),
		nodes: map[string]gossipMember{},
	}, nil
}

// StartMember starts gossip, joins the seeds (retrying in the background
// when none answers) and publishes the topology.
func (p *MemberlistProvider) StartMember(c *cluster.Cluster) error {
	p.c = c
	mc, err := p.memberlistConfig(c)
	if err != nil {
		return err
	}
	ml, err := memberlist.Create(mc)
	if err != nil {
		return fmt.Errorf("cluster: start gossip on %s: %w", p.cfg.BindAddr, err)
	}
	p.ml = ml
	joined := len(p.cfg.Join) == 0
	if !joined {
		if n, err := ml.Join(p.cfg.Join); err != nil {
			p.log.Warn("join failed; serving alone and retrying", "seeds", p.cfg.Join, "error", err)
		} else {
			p.log.Info("joined", "seeds", p.cfg.Join, "reached", n)
			joined = true
		}
	}
	p.publish()
	p.wg.Add(1)
	go p.run(joined)
	return nil
}

// StartClient is not supported: every bookd node is a member.
func (p *MemberlistProvider) StartClient(*cluster.Cluster) error {
	return errors.New("cluster: memberlist provider runs members only")
}

// Shutdown leaves the gossip (gracefully: telling the others first) and
// stops the publishing goroutine. It may be called more than once.
func (p *MemberlistProvider) Shutdown(graceful bool) error {
	var err error
	p.once.Do(func() {
		close(p.stop)
		p.wg.Wait()
		if p.ml == nil {
			return
		}
		if graceful {
			if e := p.ml.Leave(p.cfg.LeaveTimeout); e != nil {
				err = fmt.Errorf("cluster: leave gossip: %w", e)
			}
		}
		if e := p.ml.Shutdown(); e != nil {
			err = errors.Join(err, fmt.Errorf("cluster: stop gossip: %w", e))
		}
	})
	return err
}

// Evicted is closed when another member declared this node dead while it
// was alive (memberlist then refutes the death): that member has removed it
// from its topology and protoactor there bans its member id for good, so
// it can no longer take part and must restart as a new member.
func (p *MemberlistProvider) Evicted() <-chan struct{} { return p.evicted }

// evict closes Evicted once.
func (p *MemberlistProvider) evict(why string) {
	p.evictedOnce.Do(func() {
		p.log.Error("another member declared this node dead; it must restart as a new member", "detail", why)
		close(p.evicted)
	})
}

// gossipMembers returns the live nodes that gossip knows, sorted by id.
// Their state is "alive": memberlist tells no one when it suspects a node.
func (p *MemberlistProvider) gossipMembers() []gossipMember {
	p.mu.Lock()
	out := make([]gossipMember, 0, len(p.nodes))
	for _, g := range p.nodes {
		out = append(out, g)
	}
	p.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// noteNode records n as memberlist describes it now; called from
// memberlist's event callbacks, it copies and returns at once.
func (p *MemberlistProvider) noteNode(n *memberlist.Node, live bool) {
	g := gossipMember{ID: n.Name, Gossip: n.Address(), State: stateName(n.State)}
	var m memberMeta
	if err := json.Unmarshal(n.Meta, &m); err == nil {
		g.Actor, g.Kinds, g.Active = m.Addr, m.Kinds, m.Active
	}
	p.mu.Lock()
	if live {
		p.nodes[g.ID] = g
	} else {
		delete(p.nodes, g.ID)
	}
	p.mu.Unlock()
	p.signal()
}

type gossipMember struct {
	ID, Gossip, Actor, State string
	Kinds                    []string
	Active                   int
}

func stateName(s memberlist.NodeStateType) string {
	switch s {
	case memberlist.StateAlive:
		return "alive"
	case memberlist.StateSuspect:
		return "suspect"
	case memberlist.StateDead:
		return "dead"
	case memberlist.StateLeft:
		return "left"
	}
	return "unknown"
}

func (p *MemberlistProvider) memberlistConfig(c *cluster.Cluster) (*memberlist.Config, error) {
	mc := memberlist.DefaultLANConfig()
	mc.Name = c.ActorSystem.ID
	host, port, _ := splitHostPort(p.cfg.BindAddr)
	mc.BindAddr, mc.BindPort = host, port
	adv := p.cfg.AdvertiseAddr
	if adv == "" {
		adv = p.cfg.BindAddr
	}
	ahost, aport, _ := splitHostPort(adv)
	if ahost != "" && ahost != "0.0.0.0" && ahost != "::" {
		ip := net.ParseIP(ahost)
		if ip == nil {
			addr, err := net.ResolveIPAddr("ip", ahost)
			if err != nil {
				return nil, fmt.Errorf("cluster: gossip advertise address %q: %w", adv, err)
			}
			ip = addr.IP
		}
		mc.AdvertiseAddr = ip.String()
	}
	if aport == 0 {
		aport = port
	}
	mc.AdvertisePort = aport
	mc.SecretKey = p.cfg.SecretKey
	mc.ProbeInterval = p.cfg.ProbeInterval
	mc.ProbeTimeout = p.cfg.ProbeTimeout
	mc.SuspicionMult = p.cfg.SuspicionMult
	mc.SuspicionMaxTimeoutMult = p.cfg.SuspicionMaxTimeoutMult
	mc.GossipInterval = p.cfg.GossipInterval
	mc.PushPullInterval = p.cfg.PushPullInterval
	// A dead node's name is never reused (fresh id per start): forget it
	// soon, and gossip to it only briefly.
	mc.GossipToTheDeadTime = 5 * time.Second
	mc.TCPTimeout = 2 * time.Second
	mc.Logger = nil
	mc.LogOutput = &memberlistLog{log: p.log, onDeath: p.evict}
	d := &gossipDelegate{p: p}
	mc.Delegate, mc.Events = d, d
	if err := p.setMeta(c); err != nil {
		return nil, err
	}
	return mc, nil
}

// setMeta encodes this node's metadata for the next NodeMeta call.
func (p *MemberlistProvider) setMeta(c *cluster.Cluster) error {
	b, err := json.Marshal(memberMeta{Addr: c.ActorSystem.Address(), Kinds: c.GetClusterKinds(), Active: p.active()})
	if err != nil {
		return err
	}
	if len(b) > memberlist.MetaMaxSize {
		return fmt.Errorf("cluster: member metadata is %d bytes, memberlist allows %d", len(b), memberlist.MetaMaxSize)
	}
	p.meta.Store(&b)
	return nil
}

// signal asks the publisher to publish; it never blocks.
func (p *MemberlistProvider) signal() {
	select {
	case p.changed <- struct{}{}:
	default:
	}
}

// run is the one goroutine that publishes the topology.
func (p *MemberlistProvider) run(joined bool) {
	defer p.wg.Done()
	tick := time.NewTicker(p.cfg.RefreshInterval)
	defer tick.Stop()
	retry := time.NewTicker(p.cfg.JoinRetry)
	defer retry.Stop()
	lastActive := -1
	for {
		select {
		case <-p.stop:
			return
		case <-p.changed:
			p.publish()
		case <-retry.C:
			if joined {
				retry.Stop()
				continue
			}
			if n, err := p.ml.Join(p.cfg.Join); err == nil {
				p.log.Info("joined", "seeds", p.cfg.Join, "reached", n)
				joined = true
				p.publish()
			}
		case <-tick.C:
			p.publish()
			if a := p.active(); a != lastActive {
				lastActive = a
				if err := p.setMeta(p.c); err == nil {
					// Gossips the new count; bounded so that stop is prompt.
					_ = p.ml.UpdateNode(p.cfg.RefreshInterval)
				}
			}
		}
	}
}

// publish hands the live members (alive and suspect) with valid metadata
// to protoactor.
func (p *MemberlistProvider) publish() {
	nodes := p.gossipMembers()
	members := make([]*cluster.Member, 0, len(nodes))
	for _, n := range nodes {
		host, port, err := splitHostPort(n.Actor)
		if err != nil {
			p.log.Warn("member without a valid actor address", "member", n.ID, "address", n.Actor)
			continue
		}
		members = append(members, &cluster.Member{Id: n.ID, Host: host, Port: int32(port), Kinds: n.Kinds})
	}
	p.c.MemberList.UpdateClusterTopology(members)
}

// gossipDelegate is memberlist's Delegate and EventDelegate. memberlist
// calls it under its locks: it only copies, stores and signals.
type gossipDelegate struct{ p *MemberlistProvider }

func (d *gossipDelegate) NodeMeta(limit int) []byte {
	b := *d.p.meta.Load()
	if len(b) > limit {
		return nil
	}
	return b
}
func (d *gossipDelegate) NotifyMsg([]byte)                           {}
func (d *gossipDelegate) GetBroadcasts(overhead, limit int) [][]byte { return nil }
func (d *gossipDelegate) LocalState(join bool) []byte                { return nil }
func (d *gossipDelegate) MergeRemoteState(buf []byte, join bool)     {}
func (d *gossipDelegate) NotifyJoin(n *memberlist.Node)              { d.p.noteNode(n, true) }
func (d *gossipDelegate) NotifyLeave(n *memberlist.Node)             { d.p.noteNode(n, false) }
func (d *gossipDelegate) NotifyUpdate(n *memberlist.Node)            { d.p.noteNode(n, true) }

// memberlistLog turns memberlist's "[LEVEL] memberlist: text" lines into
// slog records. It is also how the provider learns that this node was
// declared dead: memberlist only logs its refutation.
type memberlistLog struct {
	log     *slog.Logger
	onDeath func(line string)
}

func (w *memberlistLog) Write(b []byte) (int, error) {
	s := strings.TrimSpace(string(b))
	// The standard logger prefixes a timestamp: cut up to the level.
	if i := strings.Index(s, "["); i >= 0 {
		s = s[i:]
	}
	lvl := slog.LevelDebug
	switch {
	case strings.HasPrefix(s, "[ERR]"):
		lvl = slog.LevelError
	case strings.HasPrefix(s, "[WARN]"):
		lvl = slog.LevelWarn
	case strings.HasPrefix(s, "[INFO]"):
		lvl = slog.LevelInfo
	}
	if i := strings.Index(s, "] "); i >= 0 {
		s = s[i+2:]
	}
	s = strings.TrimPrefix(s, "memberlist: ")
	if strings.HasPrefix(s, "Refuting a dead message") && w.onDeath != nil {
		w.onDeath(s)
	}
	w.log.Log(context.Background(), lvl, s)
	return len(b), nil
}
