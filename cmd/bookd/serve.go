package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"time"

	"github.com/bookd/bookd/actors/resource"
	"github.com/bookd/bookd/cluster"
	"github.com/bookd/bookd/edge"
	"github.com/bookd/bookd/edge/h1"
	"github.com/bookd/bookd/persistence"
	"github.com/bookd/bookd/persistence/postgres"
	"github.com/bookd/bookd/persistence/sqlite"
)

// Serve is `bookd serve`: one node, alone on the embedded store or a member
// of a gossip cluster on PostgreSQL.
type Serve struct {
	Stdout, Stderr io.Writer
	// OnListen, when set, is called with the HTTP address once the API serves.
	OnListen func(addr string)

	HTTPAddr        string
	DataDir         string
	Postgres        string
	Demo            bool
	LogLevel        string
	LogFormat       string
	ActorHost       string
	ActorPort       int
	SnapshotEvery   int
	BatchMax        int
	RequestTimeout  time.Duration
	ShutdownTimeout time.Duration
	SweepInterval   time.Duration

	Redis           string
	Join            string
	GossipAddr      string
	GossipAdvertise string
	GossipKey       string
	ActorAdvertise  string
	ActorTLSCert    string
	ActorTLSKey     string
	ActorTLSCA      string
	IdleTimeout     time.Duration
	DrainGrace      time.Duration
	GCPercent       int
	DebugAddr       string

	// Security are the flags of accounts, tokens and rate limits (security.go).
	Security securityFlags
}

func (s *Serve) flags() *flag.FlagSet {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(s.Stderr)
	fs.StringVar(&s.HTTPAddr, "http", ":3000", "address the HTTP API listens on")
	fs.StringVar(&s.DataDir, "data", "./data", "folder of the embedded store (unused with --postgres)")
	fs.StringVar(&s.Postgres, "postgres", "", "PostgreSQL URL (postgres://…); the embedded SQLite store when empty")
	fs.BoolVar(&s.Demo, "demo", true, "load demo data into an empty store")
	fs.StringVar(&s.LogLevel, "log-level", "info", "log level: debug, info, warn, error")
	fs.StringVar(&s.LogFormat, "log-format", "text", "log format: text or json")
	fs.StringVar(&s.ActorHost, "actor-host", "127.0.0.1", "host actor remoting listens on")
	fs.IntVar(&s.ActorPort, "actor-port", 0, "port actor remoting listens on (0: any free port)")
	fs.IntVar(&s.SnapshotEvery, "snapshot-every", 500, "events between snapshots of a resource")
	fs.IntVar(&s.BatchMax, "batch-max", 512, "most events in one journal write (group commit)")
	fs.DurationVar(&s.RequestTimeout, "request-timeout", 5*time.Second, "how long a request may wait for a resource")
	fs.DurationVar(&s.ShutdownTimeout, "shutdown-timeout", 20*time.Second, "how long a graceful shutdown may take")
	fs.DurationVar(&s.SweepInterval, "sweep-interval", 250*time.Millisecond, "how often due hold expiries are looked for (durable timers)")
	fs.StringVar(&s.Redis, "redis", "", "Redis URL (redis://…) of the cluster profile; pinged at start")
	fs.StringVar(&s.Join, "join", "", "gossip addresses (host:port,…) of nodes to join; makes this node a cluster member")
	fs.StringVar(&s.GossipAddr, "gossip-addr", "", "host:port gossip listens on; makes this node a cluster member others can join (default with --join: <actor-host>:7946)")
	fs.StringVar(&s.GossipAdvertise, "gossip-advertise", "", "host:port other nodes reach this node's gossip at (default: --gossip-addr)")
	fs.StringVar(&s.GossipKey, "gossip-key", "", "base64 key (16, 24 or 32 bytes) that encrypts gossip; the same on every node")
	fs.StringVar(&s.ActorAdvertise, "actor-advertise", "", "host:port other nodes reach this node's actors at (default: the address actor remoting listens on)")
	fs.StringVar(&s.ActorTLSCert, "actor-tls-cert", "", "PEM certificate of this node for actor remoting over mutual TLS")
	fs.StringVar(&s.ActorTLSKey, "actor-tls-key", "", "PEM key of --actor-tls-cert")
	fs.StringVar(&s.ActorTLSCA, "actor-tls-ca", "", "PEM CA that signed every node's actor TLS certificate")
	fs.DurationVar(&s.DrainGrace, "drain-grace", 0, "how long a draining node keeps serving after /readyz turns 503, so that load balancers stop sending first (part of --shutdown-timeout)")
	fs.DurationVar(&s.IdleTimeout, "idle-timeout", 5*time.Minute, "how long a resource actor without held holds may go without a message before it stops (passivation; 0 never)")
	fs.IntVar(&s.GCPercent, "gc-percent", defaultGCPercent, "the garbage collector's GOGC: heap growth in percent that starts a collection (-1 off); $GOGC wins over the default")
	fs.StringVar(&s.DebugAddr, "debug-addr", "", "host:port that serves Go's profiler (/debug/pprof/) for operators; keep it on loopback; off when empty")
	s.Security.register(fs)
	fs.Usage = func() {
		fmt.Fprintln(s.Stderr, "Usage: bookd serve [flags]\n\nEvery flag can also be set by its environment twin, e.g. --batch-max by BOOKD_BATCH_MAX.")
		fs.PrintDefaults()
	}
	return fs
}

func (s *Serve) logger() (*slog.Logger, error) {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(s.LogLevel)); err != nil {
		return nil, fmt.Errorf("--log-level: %w", err)
	}
	opts := &slog.HandlerOptions{Level: lvl}
	switch s.LogFormat {
	case "text":
		return slog.New(slog.NewTextHandler(s.Stderr, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(s.Stderr, opts)), nil
	}
	return nil, fmt.Errorf("--log-format: want text or json, got %q", s.LogFormat)
}

// openStore opens PostgreSQL when --postgres is given, the embedded SQLite
// file in --data otherwise.
func (s *Serve) openStore(ctx context.Context) (persistence.Store, error) {
	if s.Postgres != "" {
		return postgres.Open(ctx, s.Postgres, postgres.Options{})
	}
	return sqlite.Open(ctx, filepath.Join(s.DataDir, "bookd.db"), sqlite.Options{})
}

// Run parses args and serves until ctx ends, then shuts down gracefully.
func (s *Serve) Run(ctx context.Context, args []string) error {
	fs := s.flags()
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("serve: unexpected argument %q", fs.Arg(0))
	}
	if err := envTwins(fs); err != nil {
		return err
	}
	log, err := s.logger()
	if err != nil {
		return err
	}
	slog.SetDefault(log)
	s.tuneGC(fs, log)
	if s.DebugAddr != "" {
		_, stopDebug, err := serveDebug(s.DebugAddr, log)
		if err != nil {
			return err
		}
		defer stopDebug()
	}

	if s.Redis != "" {
		if err := pingRedis(ctx, s.Redis); err != nil {
			return err
		}
	}
	store, err := s.openStore(ctx)
	if err != nil {
		return fmt.Errorf("open store: %w", err)
	}
	defer store.Close()
	if s.Demo {
		if err := loadDemo(ctx, store, log); err != nil {
			return fmt.Errorf("demo data: %w", err)
		}
	}

	rcfg := resource.DefaultConfig()
	rcfg.SnapshotEvery, rcfg.BatchMax, rcfg.Logger = s.SnapshotEvery, s.BatchMax, log
	if s.IdleTimeout < 0 {
		return fmt.Errorf("--idle-timeout must not be negative, got %v", s.IdleTimeout)
	}
	rcfg.IdleTimeout = s.IdleTimeout
	if err := rcfg.Validate(); err != nil {
		return err
	}
	bus, err := s.openBus(ctx, log)
	if err != nil {
		return fmt.Errorf("open bus: %w", err)
	}
	defer bus.Close()
	ccfg, err := s.clusterConfig()
	if err != nil {
		return err
	}
	ccfg.Logger = log
	node, err := cluster.Start(ccfg, cluster.Kind{Name: resource.Kind, Props: resource.Props(rcfg, resource.Stores{Journal: store, Catalog: store, Events: bus})})
	if err != nil {
		return fmt.Errorf("start node: %w", err)
	}
	defer node.Stop()

	if s.SweepInterval <= 0 {
		return fmt.Errorf("--sweep-interval must be positive, got %v", s.SweepInterval)
	}
	sweepCtx, stopSweep := context.WithCancel(context.Background())
	sweeper := &resource.Sweeper{Journal: store, Actors: ownedWakes{node}, Interval: s.SweepInterval, Logger: log}
	swept := make(chan struct{})
	go func() { defer close(swept); sweeper.Run(sweepCtx) }()
	defer func() { stopSweep(); <-swept }()

	ecfg, closeEdge, err := s.edgeConfig(log)
	if err != nil {
		return err
	}
	defer closeEdge()
	ecfg.Bus = bus
	api, err := edge.New(ecfg, store, node)
	if err != nil {
		return err
	}
	defer api.Close()
	ln, err := net.Listen("tcp", s.HTTPAddr)
	if err != nil {
		return fmt.Errorf("--http: %w", err)
	}
	srv := &h1.Server{Handler: api, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 120 * time.Second,
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelError)}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	api.SetReady(true)
	where := "sqlite:" + s.DataDir
	if s.Postgres != "" {
		where = "postgres"
	}
	log.Info("bookd serving", "http", ln.Addr().String(), "store", where, "version", versionString())
	if s.OnListen != nil {
		s.OnListen(ln.Addr().String())
	}

	var evicted error
	select {
	case <-ctx.Done():
	case err := <-served:
		return fmt.Errorf("http server: %w", err)
	case <-node.Evicted():
		evicted = errors.New("the cluster declared this node dead; restart it to rejoin as a new member")
	}
	stopSweep()
	<-swept
	return errors.Join(evicted, s.shutdown(srv, api, node, log))
}

// shutdown drains, all within --shutdown-timeout: readiness off, in-flight
// requests finish, actors commit what they decided and stop (the node takes
// no new activations meanwhile), the node leaves the gossip so that the
// others take its resources over, then the node and the store close.
func (s *Serve) shutdown(srv *h1.Server, api *edge.Server, node *cluster.Node, log *slog.Logger) error {
	log.Info("shutting down", "timeout", s.ShutdownTimeout)
	api.SetReady(false)
	ctx, cancel := context.WithTimeout(context.Background(), s.ShutdownTimeout)
	defer cancel()
	if s.DrainGrace > 0 {
		t := time.NewTimer(s.DrainGrace)
		select {
		case <-t.C:
		case <-ctx.Done():
		}
		t.Stop()
	}
	var errs []error
	if err := api.DrainLive(ctx); err != nil {
		errs = append(errs, err)
	}
	if err := srv.Shutdown(ctx); err != nil {
		errs = append(errs, fmt.Errorf("http shutdown: %w", err))
	}
	if err := node.Drain(ctx, &resource.Drain{}); err != nil {
		errs = append(errs, fmt.Errorf("drain actors: %w", err))
	}
	if err := node.Leave(ctx); err != nil {
		errs = append(errs, err)
	}
	err := errors.Join(errs...)
	if err != nil {
		log.Error("shutdown incomplete", "error", err)
	} else {
		log.Info("shutdown complete")
	}
	return err
}
