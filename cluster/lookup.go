package cluster

import (
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/cluster"
	"github.com/asynkron/protoactor-go/eventstream"
)

// activatorName is the name of the activator actor on every member.
const activatorName = "bookd-activator"

// Lookup is bookd's identity lookup (protoactor's cluster.IdentityLookup).
//
// Get finds the owner of an identity by rendezvous hashing over the members
// of the current topology and asks that member's activator for the
// activation's PID; the activator spawns it when needed, but only if it owns
// the identity in its own view of the topology. A lookup waits at most
// Timeout (protoactor's Get has no deadline of its own); a nil PID makes
// protoactor retry.
type Lookup struct {
	// Timeout bounds one activation request. Default 2s.
	Timeout time.Duration
	log     *slog.Logger

	c         *cluster.Cluster
	members   atomic.Pointer[[]*cluster.Member]
	activator *actor.PID
	sub       *eventstream.Subscription
	stopOnce  sync.Once
}

var _ cluster.IdentityLookup = (*Lookup)(nil)

// NewLookup returns a lookup that logs to log.
func NewLookup(log *slog.Logger) *Lookup {
	return &Lookup{Timeout: 2 * time.Second, log: log.With("subsystem", "placement")}
}

// Setup is called by protoactor when the member starts.
func (l *Lookup) Setup(c *cluster.Cluster, _ []string, isClient bool) {
	l.c = c
	empty := []*cluster.Member{}
	l.members.Store(&empty)
	l.sub = c.ActorSystem.EventStream.Subscribe(func(ev any) {
		if t, ok := ev.(*cluster.ClusterTopology); ok {
			members := append([]*cluster.Member(nil), t.Members...)
			l.members.Store(&members)
			if l.activator != nil {
				c.ActorSystem.Root.Send(l.activator, t)
			}
		}
	})
	if isClient {
		return
	}
	props := actor.PropsFromProducer(func() actor.Actor {
		return &activator{lookup: l, actors: map[string]*actor.PID{}, byPID: map[string]*cluster.ClusterIdentity{}}
	})
	pid, err := c.ActorSystem.Root.SpawnNamed(props, activatorName)
	if err != nil {
		l.log.Error("spawn activator", "error", err)
		return
	}
	l.activator = pid
}

// Get returns the PID of the activation of ci, activating it on its owner
// when needed; nil when it cannot now (no owner, owner unreachable, owner
// disagrees about ownership).
func (l *Lookup) Get(ci *cluster.ClusterIdentity) *actor.PID {
	m := owner(*l.members.Load(), ci.Kind, ci.AsKey())
	if m == nil {
		return nil
	}
	target := actor.NewPID(m.Address(), activatorName)
	res, err := l.c.ActorSystem.Root.RequestFuture(target, &cluster.ActivationRequest{ClusterIdentity: ci}, l.Timeout).Result()
	if err != nil {
		l.log.Debug("activation request failed", "identity", ci.AsKey(), "owner", m.Address(), "error", err)
		return nil
	}
	r, ok := res.(*cluster.ActivationResponse)
	if !ok || r.Failed || r.Pid == nil {
		return nil
	}
	return r.Pid
}

// RemovePid forgets a PID protoactor found dead.
func (l *Lookup) RemovePid(ci *cluster.ClusterIdentity, pid *actor.PID) {
	if l.activator != nil {
		l.c.ActorSystem.Root.Send(l.activator, &actor.Terminated{Who: pid})
	}
}

// Shutdown stops the activator and its activations. It may be called more
// than once (protoactor does).
func (l *Lookup) Shutdown() {
	l.stopOnce.Do(func() {
		if l.sub != nil {
			l.c.ActorSystem.EventStream.Unsubscribe(l.sub)
		}
		if l.activator != nil {
			_ = l.c.ActorSystem.Root.PoisonFuture(l.activator).Wait()
		}
	})
}

// Activations returns the PIDs of the activations on this member.
func (l *Lookup) Activations(timeout time.Duration) ([]*actor.PID, error) {
	res, err := l.c.ActorSystem.Root.RequestFuture(l.activator, listActivations{}, timeout).Result()
	if err != nil {
		return nil, err
	}
	return res.([]*actor.PID), nil
}

type listActivations struct{}

// activator spawns and tracks the activations this member owns.
type activator struct {
	lookup *Lookup
	actors map[string]*actor.PID
	byPID  map[string]*cluster.ClusterIdentity
}

func (a *activator) Receive(ctx actor.Context) {
	switch msg := ctx.Message().(type) {
	case *cluster.ActivationRequest:
		ctx.Respond(a.activate(ctx, msg.ClusterIdentity))
	case *actor.Terminated:
		a.forget(msg.Who)
	case *cluster.ClusterTopology:
		a.rebalance(ctx, msg.Members)
	case listActivations:
		pids := make([]*actor.PID, 0, len(a.actors))
		for _, p := range a.actors {
			pids = append(pids, p)
		}
		ctx.Respond(pids)
	}
}

func (a *activator) activate(ctx actor.Context, ci *cluster.ClusterIdentity) *cluster.ActivationResponse {
	key := ci.AsKey()
	if pid, ok := a.actors[key]; ok {
		return &cluster.ActivationResponse{Pid: pid}
	}
	c := a.lookup.c
	m := owner(*a.lookup.members.Load(), ci.Kind, key)
	if m == nil || m.Address() != c.ActorSystem.Address() {
		// Not ours in our view: refuse rather than risk a second activation.
		return &cluster.ActivationResponse{Failed: true}
	}
	kind, ok := c.TryGetClusterKind(ci.Kind)
	if !ok {
		return &cluster.ActivationResponse{Failed: true}
	}
	pid := ctx.SpawnPrefix(cluster.WithClusterIdentity(kind.Props, ci), ci.Identity)
	kind.Inc()
	a.actors[key] = pid
	a.byPID[pid.Id] = ci
	return &cluster.ActivationResponse{Pid: pid}
}

func (a *activator) forget(pid *actor.PID) {
	ci, ok := a.byPID[pid.Id]
	if !ok {
		return
	}
	delete(a.byPID, pid.Id)
	key := ci.AsKey()
	if cur := a.actors[key]; cur != nil && cur.Id == pid.Id {
		delete(a.actors, key)
	}
	if kind, ok := a.lookup.c.TryGetClusterKind(ci.Kind); ok {
		kind.Dec()
	}
	a.lookup.c.PidCache.RemoveByValue(ci.Identity, ci.Kind, pid)
}

// rebalance stops the activations whose owner is now another member; the
// next message activates them there, from the journal.
func (a *activator) rebalance(ctx actor.Context, members []*cluster.Member) {
	self := a.lookup.c.ActorSystem.Address()
	for key, pid := range a.actors {
		ci := a.byPID[pid.Id]
		if m := owner(members, ci.Kind, key); m == nil || m.Address() != self {
			ctx.Poison(pid)
		}
	}
}
