package cluster

import (
	"context"
	"errors"
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

var (
	// errMemberGone means the member a request waited on left the topology.
	errMemberGone = errors.New("the member left the cluster")
	// errAttemptTimeout means one attempt of a request to another member
	// got no answer in time; the request may try again.
	errAttemptTimeout = errors.New("no answer from the member in time")
)

// Lookup is bookd's identity lookup (protoactor's cluster.IdentityLookup).
//
// Get finds the owner of an identity by rendezvous hashing over the members
// of the current topology and asks that member's activator for the
// activation's PID; the activator spawns it when needed, but only if it owns
// the identity in its own view of the topology (and is not leaving). A
// lookup waits at most Timeout and gives up as soon as the owner leaves the
// topology (protoactor's Get has no deadline of its own); a nil PID makes
// the caller retry.
//
// When the topology changes, the activator sends Handoff (or a poison pill
// when Handoff is nil) to every activation whose owner is now another
// member; the next message activates it there, from the journal.
type Lookup struct {
	// Timeout bounds one activation request. Default 2s.
	Timeout time.Duration
	// Handoff is sent to an activation that must move. Default nil: stop it
	// with a poison pill.
	Handoff any
	log     *slog.Logger

	c         *cluster.Cluster
	view      atomic.Pointer[view]
	leaving   atomic.Bool
	active    atomic.Int64
	activator *actor.PID
	sub       *eventstream.Subscription
	stopOnce  sync.Once
}

// view is one topology as this member sees it.
type view struct {
	members []*cluster.Member
	// ids maps each member's address to its id: a node restarted on the
	// same address is a new member, and the old one's PIDs are void.
	ids map[string]string
	// changed is closed when a newer view replaces this one.
	changed chan struct{}
}

func newView(members []*cluster.Member) *view {
	v := &view{members: members, ids: make(map[string]string, len(members)), changed: make(chan struct{})}
	for _, m := range members {
		v.ids[m.Address()] = m.Id
	}
	return v
}

var _ cluster.IdentityLookup = (*Lookup)(nil)

// NewLookup returns a lookup that logs to log.
func NewLookup(log *slog.Logger) *Lookup {
	l := &Lookup{Timeout: 2 * time.Second, log: log.With("subsystem", "placement")}
	l.view.Store(newView(nil))
	return l
}

// Setup is called by protoactor when the member starts.
func (l *Lookup) Setup(c *cluster.Cluster, _ []string, isClient bool) {
	l.c = c
	l.sub = c.ActorSystem.EventStream.Subscribe(func(ev any) {
		if t, ok := ev.(*cluster.ClusterTopology); ok {
			old := l.view.Swap(newView(append([]*cluster.Member(nil), t.Members...)))
			close(old.changed)
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
// when needed; nil when it cannot now (no owner, owner unreachable or gone,
// owner disagrees about ownership).
func (l *Lookup) Get(ci *cluster.ClusterIdentity) *actor.PID {
	return l.get(context.Background(), ci, time.Now().Add(l.Timeout))
}

func (l *Lookup) get(ctx context.Context, ci *cluster.ClusterIdentity, deadline time.Time) *actor.PID {
	m := owner(l.view.Load().members, ci.Kind, ci.AsKey())
	if m == nil {
		return nil
	}
	timeout := min(l.Timeout, time.Until(deadline))
	if timeout <= 0 {
		return nil
	}
	target := actor.NewPID(m.Address(), activatorName)
	f := l.c.ActorSystem.Root.RequestFuture(target, &cluster.ActivationRequest{ClusterIdentity: ci}, timeout)
	res, err := l.await(ctx, f, m.Address(), timeout)
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

// await waits for f, a request to a PID at addr. A request to another
// member is abandoned as soon as that member leaves the topology (or is
// replaced by a new member on the same address), after attempt, or when
// ctx ends: a killed member never answers, protoactor drops what it had
// queued for a connection it tears down, and such requests would otherwise
// wait for their whole timeout.
func (l *Lookup) await(ctx context.Context, f *actor.Future, addr string, attempt time.Duration) (any, error) {
	if addr == l.c.ActorSystem.Address() {
		return f.Result()
	}
	member := l.view.Load().ids[addr]
	if member == "" {
		return nil, errMemberGone
	}
	timer := time.NewTimer(attempt)
	defer timer.Stop()
	type result struct {
		res any
		err error
	}
	done := make(chan result, 1)
	go func() {
		r, err := f.Result()
		done <- result{r, err}
	}()
	for {
		v := l.view.Load()
		if v.ids[addr] != member {
			return nil, errMemberGone
		}
		select {
		case r := <-done:
			return r.res, r.err
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-timer.C:
			return nil, errAttemptTimeout
		case <-v.changed:
		}
	}
}

// owns reports whether this member owns identity of kind in its view.
func (l *Lookup) owns(kind, identity string) bool {
	if l.leaving.Load() {
		return false
	}
	m := owner(l.view.Load().members, kind, cluster.NewClusterIdentity(identity, kind).AsKey())
	return m != nil && m.Address() == l.c.ActorSystem.Address()
}

// members returns the members of the current topology.
func (l *Lookup) members() []*cluster.Member { return l.view.Load().members }

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
	if a.lookup.leaving.Load() {
		return &cluster.ActivationResponse{Failed: true}
	}
	m := owner(a.lookup.members(), ci.Kind, key)
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
	a.lookup.active.Store(int64(len(a.actors)))
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
	a.lookup.active.Store(int64(len(a.actors)))
	if kind, ok := a.lookup.c.TryGetClusterKind(ci.Kind); ok {
		kind.Dec()
	}
	a.lookup.c.PidCache.RemoveByValue(ci.Identity, ci.Kind, pid)
}

// rebalance hands off the activations whose owner is now another member;
// the next message activates them there, from the journal. A handed-off
// activation stays listed until it has stopped, so that no second one
// starts here meanwhile.
func (a *activator) rebalance(ctx actor.Context, members []*cluster.Member) {
	self := a.lookup.c.ActorSystem.Address()
	for key, pid := range a.actors {
		ci := a.byPID[pid.Id]
		if m := owner(members, ci.Kind, key); m == nil || m.Address() != self {
			if a.lookup.Handoff != nil {
				ctx.Send(pid, a.lookup.Handoff)
			} else {
				ctx.Poison(pid)
			}
		}
	}
}
