package cluster

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sort"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/cluster"
	"github.com/asynkron/protoactor-go/remote"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
)

// Config is how a node's actor runtime runs. Start from DefaultConfig.
type Config struct {
	// Name is the cluster's name; nodes join only a cluster of the same name.
	// Default "bookd".
	Name string
	// Host and Port are where actor remoting listens. Default 127.0.0.1 and 0
	// (a free port).
	Host string
	Port int
	// AdvertiseAddr is the host:port other nodes send actor messages to
	// (containers, NAT). Default: the address remoting listens on.
	AdvertiseAddr string
	// TLS, when set, secures actor remoting: ServerTLS for the listener,
	// ClientTLS for connections to other nodes (see LoadTLS).
	ServerTLS, ClientTLS *tls.Config
	// Gossip, when set, forms a cluster with other nodes by memberlist
	// gossip; nil runs the node alone.
	Gossip *GossipConfig
	// RequestTimeout bounds a Request (RequestWithin takes its own), or
	// the caller's context's deadline when that comes first. Default 5s.
	RequestTimeout time.Duration
	// AttemptTimeout bounds one try of a request to an actor on another
	// member before Request sends it again (idempotently): protoactor drops
	// messages queued for a connection it tears down, e.g. when a node
	// restarts on the same address. Default 1s.
	AttemptTimeout time.Duration
	// Retryable, when set, reports whether an actor's reply asks the caller
	// to try again (the actor is moving or lost its fence): Request then
	// retries until its deadline and returns the last such reply only when
	// no better one came.
	Retryable func(reply any) bool
	// Handoff is the message that asks an activation to commit its work and
	// stop, sent when its identity moves to another member. Nil: a poison
	// pill.
	Handoff any
	// Logger gets the runtime's logs; protoactor's own logs go to it at Warn
	// and above. Default slog.Default().
	Logger *slog.Logger
}

// DefaultConfig returns the defaults documented on Config.
func DefaultConfig() Config {
	return Config{Name: "bookd", Host: "127.0.0.1", RequestTimeout: 5 * time.Second, AttemptTimeout: time.Second, Logger: slog.Default()}
}

// Validate reports the first field that is wrong.
func (c Config) Validate() error {
	switch {
	case c.Name == "":
		return errors.New("cluster: Name must be set")
	case c.Host == "":
		return errors.New("cluster: Host must be set")
	case c.Port < 0 || c.Port > 65535:
		return fmt.Errorf("cluster: Port must be 0..65535, got %d", c.Port)
	case c.RequestTimeout <= 0:
		return fmt.Errorf("cluster: RequestTimeout must be positive, got %v", c.RequestTimeout)
	case c.AttemptTimeout <= 0:
		return fmt.Errorf("cluster: AttemptTimeout must be positive, got %v", c.AttemptTimeout)
	case c.Logger == nil:
		return errors.New("cluster: Logger must be set")
	case (c.ServerTLS == nil) != (c.ClientTLS == nil):
		return errors.New("cluster: ServerTLS and ClientTLS must be set together")
	}
	if c.AdvertiseAddr != "" {
		if _, _, err := splitHostPort(c.AdvertiseAddr); err != nil {
			return fmt.Errorf("cluster: AdvertiseAddr: %w", err)
		}
	}
	if c.Gossip != nil {
		return c.Gossip.Validate()
	}
	return nil
}

// Kind is an actor kind the node hosts.
type Kind struct {
	Name string
	// Props make an activation; the Node spawns it with StopAware's
	// mailbox, so a mailbox the props set is not used.
	Props *actor.Props
}

// Node is a running actor runtime: the actor system, remoting, the cluster.
type Node struct {
	cfg      Config
	log      *slog.Logger
	system   *actor.ActorSystem
	cluster  *cluster.Cluster
	lookup   *Lookup
	replies  *replies            // of requests to activations on this member
	gossip   *MemberlistProvider // nil when alone
	stopOnce sync.Once
}

// ErrUnavailable means the request could not reach an activation in time.
var ErrUnavailable = errors.New("actor unavailable")

// Start starts a node hosting kinds: alone, or a member of the gossip
// cluster when cfg.Gossip is set.
func Start(cfg Config, kinds ...Kind) (*Node, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	log := cfg.Logger.With("subsystem", "cluster")
	protoLog := cfg.Logger.With("subsystem", "protoactor")
	system := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger {
		return slog.New(levelFilter{h: protoLog.Handler(), min: slog.LevelWarn})
	}))
	lookup := NewLookup(cfg.Logger)
	lookup.Handoff = cfg.Handoff
	ck := make([]*cluster.Kind, 0, len(kinds))
	for _, k := range kinds {
		ck = append(ck, cluster.NewKind(k.Name, StopAware(k.Props, system.Root)))
	}
	var ropts []remote.ConfigOption
	if cfg.AdvertiseAddr != "" {
		ropts = append(ropts, remote.WithAdvertisedHost(cfg.AdvertiseAddr))
	}
	if cfg.ServerTLS != nil {
		// protoactor remoting is gRPC: TLS is its server and dial options.
		ropts = append(ropts,
			remote.WithServerOptions(grpc.Creds(credentials.NewTLS(cfg.ServerTLS))),
			remote.WithDialOptions(grpc.WithTransportCredentials(credentials.NewTLS(cfg.ClientTLS))))
	}
	var provider cluster.ClusterProvider = SingleProvider{}
	var gossip *MemberlistProvider
	if cfg.Gossip != nil {
		var err error
		gossip, err = NewMemberlistProvider(*cfg.Gossip, cfg.Logger, func() int { return int(lookup.active.Load()) })
		if err != nil {
			return nil, err
		}
		provider = gossip
	}
	cc := cluster.Configure(cfg.Name, provider, lookup, remote.Configure(cfg.Host, cfg.Port, ropts...),
		cluster.WithKinds(ck...), cluster.WithRequestTimeout(cfg.RequestTimeout))
	// protoactor's own gossip (heartbeats, block lists, consensus over actor
	// remoting) is not used: memberlist is the failure detector. It would
	// also race: it mutates gossip state that remoting is still serializing
	// (go test -race reports it in every multi-node process). Its loop
	// sends only on this interval, so it is set beyond any process's life.
	cc.GossipInterval = 24 * time.Hour
	c := cluster.New(system, cc)
	if err := startMember(c); err != nil {
		return nil, err
	}
	log.Info("node started", "member", system.ID, "address", system.Address(), "gossip", cfg.Gossip != nil, "tls", cfg.ServerTLS != nil)
	return &Node{cfg: cfg, log: log, system: system, cluster: c, lookup: lookup, gossip: gossip,
		replies: newReplies(system)}, nil
}

// startMember runs protoactor's StartMember, which panics when the
// provider fails (e.g. the gossip port is taken).
func startMember(c *cluster.Cluster) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("cluster: start member: %v", v)
			c.ActorSystem.Shutdown()
			if c.Remote != nil {
				c.Remote.Shutdown(false)
			}
		}
	}()
	c.StartMember()
	return nil
}

// Address is the node's actor-remote address.
func (n *Node) Address() string { return n.system.Address() }

// ID is the node's member id, new with every start.
func (n *Node) ID() string { return n.system.ID }

// Evicted is closed when the cluster has banned this member (it was
// declared dead while it was alive): the process should exit and start
// again as a new member. It never closes on a node that runs alone.
func (n *Node) Evicted() <-chan struct{} {
	if n.gossip == nil {
		return nil
	}
	return n.gossip.Evicted()
}

// Owns reports whether this node owns identity of kind in its current view
// (false once it is leaving).
func (n *Node) Owns(kind, identity string) bool { return n.lookup.owns(kind, identity) }

// Request sends msg to the activation of identity of kind and returns its
// reply. It waits until RequestTimeout has passed or ctx ends, whichever
// comes first, retrying while the activation cannot be reached, its member
// left, or its reply is Retryable (the identity is moving); the message may
// then be delivered more than once, so every command must be idempotent.
func (n *Node) Request(ctx context.Context, kind, identity string, msg any) (any, error) {
	return n.RequestWithin(ctx, n.cfg.RequestTimeout, kind, identity, msg)
}

// RequestWithin is Request waiting at most timeout instead of
// RequestTimeout (less when ctx's deadline comes sooner). A caller with a
// timeout of its own passes it here rather than in a context: a context
// deadline costs a timer, a cancel function and a registration with the
// parent context per request, while a local request's deadline is ended
// by the replies' watcher, which needs none of them.
func (n *Node) RequestWithin(ctx context.Context, timeout time.Duration, kind, identity string, msg any) (any, error) {
	deadline := time.Now().Add(timeout)
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	cache := n.cluster.PidCache
	var last any
	var lastErr error = context.DeadlineExceeded
	backoff := 2 * time.Millisecond
	for attempt := 0; ; attempt++ {
		if attempt > 0 {
			// Jittered exponential backoff, so that the callers of a moving
			// identity do not retry in lockstep.
			d := backoff/2 + rand.N(backoff/2+1)
			backoff = min(2*backoff, 100*time.Millisecond)
			if !sleep(ctx, min(d, time.Until(deadline))) {
				break
			}
		}
		remaining := time.Until(deadline)
		if remaining <= 0 || ctx.Err() != nil {
			break
		}
		pid, _ := cache.Get(identity, kind)
		if pid == nil {
			if pid = n.lookup.get(ctx, cluster.NewClusterIdentity(identity, kind), deadline); pid == nil {
				lastErr = errors.New("no activation: the owner is unknown, unreachable or not yet agreed")
				continue
			}
			cache.Set(identity, kind, pid)
		}
		var res any
		var err error
		if pid.Address == n.system.Address() {
			res, err = n.replies.request(ctx, pid, msg, deadline)
		} else {
			f := n.system.Root.RequestFuture(pid, msg, remaining)
			res, err = n.lookup.await(ctx, f, pid.Address, n.cfg.AttemptTimeout)
		}
		if err != nil {
			cache.RemoveByValue(identity, kind, pid)
			lastErr = err
			continue
		}
		if n.cfg.Retryable != nil && n.cfg.Retryable(res) {
			cache.RemoveByValue(identity, kind, pid)
			last = res
			continue
		}
		return res, nil
	}
	if last != nil {
		return last, nil
	}
	if err := ctx.Err(); err != nil {
		lastErr = err
	}
	return nil, fmt.Errorf("%w: %s/%s: %w", ErrUnavailable, kind, identity, lastErr)
}

// sleep waits d or until ctx ends; it reports whether the wait was whole.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// Drain stops taking new activations on this node (it is leaving), then
// sends msg to every activation and waits until each has answered or ctx
// ends. Actors answer once they have committed their work. Requests for
// this node's identities meanwhile wait and retry until the node has left.
func (n *Node) Drain(ctx context.Context, msg any) error {
	n.lookup.leaving.Store(true)
	return n.StopActivations(ctx, msg)
}

// StopActivations sends msg to every activation on this node and waits until
// each has answered or ctx ends, like Drain, but the node stays a member
// that takes activations: the next request for an identity activates it
// afresh (from its journal). Tests use it to force a reload.
func (n *Node) StopActivations(ctx context.Context, msg any) error {
	deadline := time.Now().Add(10 * time.Second)
	if dl, ok := ctx.Deadline(); ok {
		deadline = dl
	}
	pids, err := n.lookup.Activations(time.Until(deadline))
	if err != nil {
		return fmt.Errorf("list activations: %w", err)
	}
	// One deadline for the whole call, listing included.
	remaining := max(time.Until(deadline), time.Millisecond)
	futures := make([]*actor.Future, len(pids))
	for i, pid := range pids {
		futures[i] = n.system.Root.RequestFuture(pid, msg, remaining)
	}
	var errs []error
	for i, f := range futures {
		if _, err := f.Result(); err != nil && !errors.Is(err, actor.ErrDeadLetter) {
			errs = append(errs, fmt.Errorf("drain %s: %w", pids[i].Id, err))
		}
	}
	n.log.Info("drained activations", "count", len(pids), "failed", len(errs))
	return errors.Join(errs...)
}

// Leave tells the other members that this node is leaving (a graceful
// gossip leave, bounded by ctx and the gossip LeaveTimeout) and then stops
// the node. Drain first to let actors commit their work.
func (n *Node) Leave(ctx context.Context) error {
	var err error
	if n.gossip != nil {
		done := make(chan error, 1)
		go func() { done <- n.gossip.Shutdown(true) }()
		select {
		case err = <-done:
		case <-ctx.Done():
			err = fmt.Errorf("cluster: leave: %w", ctx.Err())
		}
	}
	n.Stop()
	return err
}

// Stop stops the cluster and the actor system without telling the other
// members (they find out by gossip). Drain and Leave first to hand over.
func (n *Node) Stop() {
	n.stopOnce.Do(func() {
		if n.gossip != nil {
			_ = n.gossip.Shutdown(false)
		}
		n.cluster.Shutdown(false)
		n.lookup.Shutdown()
		n.replies.close()
		n.log.Info("node stopped")
	})
}

// MemberStatus is one member as this node sees it.
type MemberStatus struct {
	// ID is the member id (new with every process start).
	ID string `json:"id"`
	// ActorAddress is where the member's actors are reached.
	ActorAddress string `json:"actor_address"`
	// GossipAddress is the member's gossip address ("" when alone).
	GossipAddress string `json:"gossip_address,omitempty"`
	// State is the gossip state as memberlist last reported it: "alive"
	// (memberlist reports no suspicion, and drops dead and left members).
	State string `json:"state"`
	// Placement reports whether the member takes part in placement in this
	// node's topology (false for a member gossip knows but protoactor
	// banned or has not yet been told about).
	Placement bool `json:"placement"`
	// Kinds are the actor kinds it hosts.
	Kinds []string `json:"kinds"`
	// Active is how many activations it has: exact for this node, as last
	// gossiped (about a second old) for the others.
	Active int `json:"active"`
	// Self marks this node.
	Self bool `json:"self"`
}

// Status is this node's view of the cluster.
type Status struct {
	// Node is this node's member id.
	Node string `json:"node"`
	// Mode is "gossip" or "single".
	Mode    string         `json:"mode"`
	Members []MemberStatus `json:"members"`
}

// Status returns this node's view of the cluster, members sorted by actor
// address.
func (n *Node) Status() Status {
	st := Status{Node: n.system.ID, Mode: "single"}
	inTopology := map[string]bool{}
	for _, m := range n.lookup.members() {
		inTopology[m.Id] = true
	}
	self := n.system.ID
	active := int(n.lookup.active.Load())
	if n.gossip == nil {
		st.Members = []MemberStatus{{ID: self, ActorAddress: n.Address(), State: "alive",
			Placement: inTopology[self], Kinds: n.cluster.GetClusterKinds(), Active: active, Self: true}}
		return st
	}
	st.Mode = "gossip"
	for _, g := range n.gossip.gossipMembers() {
		m := MemberStatus{ID: g.ID, ActorAddress: g.Actor, GossipAddress: g.Gossip, State: g.State,
			Placement: inTopology[g.ID], Kinds: g.Kinds, Active: g.Active, Self: g.ID == self}
		if m.Self {
			m.Active = active
		}
		st.Members = append(st.Members, m)
	}
	sort.Slice(st.Members, func(i, j int) bool { return st.Members[i].ActorAddress < st.Members[j].ActorAddress })
	return st
}

// levelFilter drops records below min.
type levelFilter struct {
	h   slog.Handler
	min slog.Level
}

func (f levelFilter) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= f.min && f.h.Enabled(ctx, l)
}
func (f levelFilter) Handle(ctx context.Context, r slog.Record) error { return f.h.Handle(ctx, r) }
func (f levelFilter) WithAttrs(a []slog.Attr) slog.Handler {
	return levelFilter{h: f.h.WithAttrs(a), min: f.min}
}
func (f levelFilter) WithGroup(g string) slog.Handler {
	return levelFilter{h: f.h.WithGroup(g), min: f.min}
}
