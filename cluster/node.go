package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/cluster"
	"github.com/asynkron/protoactor-go/remote"
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
	// RequestTimeout bounds a request when the caller's context has no
	// deadline. Default 5s.
	RequestTimeout time.Duration
	// Logger gets the runtime's logs; protoactor's own logs go to it at Warn
	// and above. Default slog.Default().
	Logger *slog.Logger
}

// DefaultConfig returns the defaults documented on Config.
func DefaultConfig() Config {
	return Config{Name: "bookd", Host: "127.0.0.1", RequestTimeout: 5 * time.Second, Logger: slog.Default()}
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
	case c.Logger == nil:
		return errors.New("cluster: Logger must be set")
	}
	return nil
}

// Kind is an actor kind the node hosts.
type Kind struct {
	Name  string
	Props *actor.Props
}

// Node is a running actor runtime: the actor system, remoting, the cluster.
type Node struct {
	cfg      Config
	log      *slog.Logger
	system   *actor.ActorSystem
	cluster  *cluster.Cluster
	lookup   *Lookup
	stopOnce sync.Once
}

// ErrUnavailable means the request could not reach an activation in time.
var ErrUnavailable = errors.New("actor unavailable")

// Start starts a single-member node hosting kinds.
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
	ck := make([]*cluster.Kind, 0, len(kinds))
	for _, k := range kinds {
		ck = append(ck, cluster.NewKind(k.Name, k.Props))
	}
	cc := cluster.Configure(cfg.Name, SingleProvider{}, lookup, remote.Configure(cfg.Host, cfg.Port),
		cluster.WithKinds(ck...), cluster.WithRequestTimeout(cfg.RequestTimeout))
	c := cluster.New(system, cc)
	c.StartMember()
	log.Info("node started", "member", system.ID, "address", system.Address())
	return &Node{cfg: cfg, log: log, system: system, cluster: c, lookup: lookup}, nil
}

// Address is the node's actor-remote address.
func (n *Node) Address() string { return n.system.Address() }

// Request sends msg to the activation of identity of kind and returns its
// reply. It waits until ctx's deadline (or RequestTimeout), retrying while
// the activation cannot be reached; the message may then be delivered more
// than once, so every command must be idempotent.
func (n *Node) Request(ctx context.Context, kind, identity string, msg any) (any, error) {
	timeout := n.cfg.RequestTimeout
	if dl, ok := ctx.Deadline(); ok {
		timeout = time.Until(dl)
	}
	if timeout <= 0 {
		return nil, fmt.Errorf("%w: %s/%s: %w", ErrUnavailable, kind, identity, context.DeadlineExceeded)
	}
	res, err := n.cluster.Request(identity, kind, msg,
		cluster.WithTimeout(timeout),
		cluster.WithRetryCount(8),
		cluster.WithRetryAction(func(i int) int {
			i++
			time.Sleep(time.Duration(i*i) * 5 * time.Millisecond)
			return i
		}))
	if err != nil {
		return nil, fmt.Errorf("%w: %s/%s: %w", ErrUnavailable, kind, identity, err)
	}
	if res == nil {
		return nil, fmt.Errorf("%w: %s/%s: no reply", ErrUnavailable, kind, identity)
	}
	return res, nil
}

// Drain sends msg to every activation on this node and waits until each has
// answered or ctx ends. Actors answer once they have committed their work.
func (n *Node) Drain(ctx context.Context, msg any) error {
	timeout := 10 * time.Second
	if dl, ok := ctx.Deadline(); ok {
		timeout = time.Until(dl)
	}
	pids, err := n.lookup.Activations(timeout)
	if err != nil {
		return fmt.Errorf("list activations: %w", err)
	}
	futures := make([]*actor.Future, len(pids))
	for i, pid := range pids {
		futures[i] = n.system.Root.RequestFuture(pid, msg, timeout)
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

// Stop stops the cluster and the actor system. Drain first to let actors
// commit their work.
func (n *Node) Stop() {
	n.stopOnce.Do(func() {
		n.cluster.Shutdown(false)
		n.lookup.Shutdown()
		n.log.Info("node stopped")
	})
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
