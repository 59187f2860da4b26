package main

import (
	"context"
	"encoding/base64"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/bookd/bookd/actors/resource"
	"github.com/bookd/bookd/cluster"
	bookdv1 "github.com/bookd/bookd/messages/bookd/v1"
)

// clusterConfig builds the node's cluster configuration from the flags: a
// gossip member when --gossip-addr or --join is given, a node alone
// otherwise.
func (s *Serve) clusterConfig() (cluster.Config, error) {
	cfg := cluster.DefaultConfig()
	cfg.Host, cfg.Port, cfg.RequestTimeout = s.ActorHost, s.ActorPort, s.RequestTimeout
	cfg.AdvertiseAddr = s.ActorAdvertise
	cfg.Retryable = retryableReply
	cfg.Handoff = &resource.Drain{}
	if s.ActorTLSCert != "" || s.ActorTLSKey != "" || s.ActorTLSCA != "" {
		srv, cli, err := cluster.LoadTLS(s.ActorTLSCert, s.ActorTLSKey, s.ActorTLSCA)
		if err != nil {
			return cfg, fmt.Errorf("--actor-tls-cert/--actor-tls-key/--actor-tls-ca: %w", err)
		}
		cfg.ServerTLS, cfg.ClientTLS = srv, cli
	}
	join := splitList(s.Join)
	if s.GossipAddr == "" && len(join) == 0 {
		if s.GossipKey != "" || s.GossipAdvertise != "" {
			return cfg, fmt.Errorf("--gossip-key and --gossip-advertise need --gossip-addr or --join")
		}
		return cfg, nil
	}
	g := cluster.DefaultGossipConfig()
	g.BindAddr = s.GossipAddr
	if g.BindAddr == "" {
		g.BindAddr = fmt.Sprintf("%s:%d", s.ActorHost, defaultGossipPort)
	}
	g.AdvertiseAddr, g.Join = s.GossipAdvertise, join
	if s.GossipKey != "" {
		key, err := base64.StdEncoding.DecodeString(s.GossipKey)
		if err != nil {
			return cfg, fmt.Errorf("--gossip-key: not base64: %w", err)
		}
		if n := len(key); n != 16 && n != 24 && n != 32 {
			return cfg, fmt.Errorf("--gossip-key: want 16, 24 or 32 bytes, got %d", n)
		}
		g.SecretKey = key
	}
	cfg.Gossip = &g
	return cfg, nil
}

// defaultGossipPort is memberlist's customary port.
const defaultGossipPort = 7946

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// retryableReply reports whether a resource actor's reply asks the caller
// to try again: the actor is moving, lost its fence or could not commit.
// Every command is idempotent by its id, so the node retries it.
func retryableReply(reply any) bool {
	r, ok := reply.(interface{ GetError() *bookdv1.Error })
	return ok && r.GetError().GetCode() == bookdv1.ErrorCode_ERROR_CODE_UNAVAILABLE
}

// ownedWakes delivers the sweeper's wakes only for the resources this node
// owns: every node reads the same due wakes from the shared journal, and
// each wakes its own share (a resource whose owner is changing is woken by
// a later sweep). A wake for another node's resource is answered here as
// done.
type ownedWakes struct{ node *cluster.Node }

func (o ownedWakes) Request(ctx context.Context, kind, identity string, msg any) (any, error) {
	if _, ok := msg.(*bookdv1.Wake); ok && !o.node.Owns(kind, identity) {
		return &bookdv1.WakeReply{}, nil
	}
	return o.node.Request(ctx, kind, identity, msg)
}

// pingRedis checks that the Redis at url answers.
func pingRedis(ctx context.Context, url string) error {
	opt, err := redis.ParseURL(url)
	if err != nil {
		return fmt.Errorf("--redis: %w", err)
	}
	c := redis.NewClient(opt)
	defer c.Close()
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := c.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("--redis: ping: %w", err)
	}
	return nil
}
