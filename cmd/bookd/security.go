package main

import (
	"flag"
	"fmt"
	"log/slog"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/bookd/bookd/edge"
)

// securityFlags are serve's flags of the secure edge (accounts, tokens,
// rate limits, CORS).
type securityFlags struct {
	RateLimit      string
	CORSOrigins    string
	BehindTLS      bool
	Issuer         string
	Audience       string
	AccessTTL      time.Duration
	RefreshTTL     time.Duration
	Argon2Memory   uint
	Argon2Time     uint
	Argon2Threads  uint
	TokenCacheSize int
}

func (f *securityFlags) register(fs *flag.FlagSet) {
	d := edge.DefaultConfig()
	fs.StringVar(&f.RateLimit, "rate-limit", "", "rate limits per client and route class over the defaults default=100/1m,login=10/1m,holds=100/1m (class=N/period or class=off)")
	fs.StringVar(&f.CORSOrigins, "cors-origins", "", "comma-separated origins browsers may call the API from (https://app.example.com)")
	fs.BoolVar(&f.BehindTLS, "behind-tls", false, "the API is reached over HTTPS through a proxy: send HSTS")
	fs.StringVar(&f.Issuer, "token-issuer", d.Issuer, "iss of access tokens (the same on every node)")
	fs.StringVar(&f.Audience, "token-audience", d.Audience, "aud of access tokens (the same on every node)")
	fs.DurationVar(&f.AccessTTL, "access-ttl", d.AccessTTL, "lifetime of access tokens")
	fs.DurationVar(&f.RefreshTTL, "refresh-ttl", d.RefreshTTL, "lifetime of refresh tokens")
	fs.UintVar(&f.Argon2Memory, "argon2-memory", uint(d.Argon2.MemoryKiB), "argon2id memory cost of new password hashes, KiB")
	fs.UintVar(&f.Argon2Time, "argon2-time", uint(d.Argon2.Time), "argon2id passes of new password hashes")
	fs.UintVar(&f.Argon2Threads, "argon2-threads", uint(d.Argon2.Threads), "argon2id parallelism of new password hashes")
	fs.IntVar(&f.TokenCacheSize, "token-cache", d.TokenCacheSize, "verified access tokens kept in memory")
}

func (f *securityFlags) argon2() edge.Argon2 {
	return edge.Argon2{MemoryKiB: uint32(f.Argon2Memory), Time: uint32(f.Argon2Time), Threads: uint8(min(f.Argon2Threads, 255))}
}

// edgeConfig is the edge's configuration: with --redis (the cluster
// profile), rate limits and the Idempotency-Key claims of POST /v1/holds
// live in Redis and every node shares them; without, both are in this
// process. (Claims in PostgreSQL, even without a synchronous commit, cost a
// round trip and a WAL record per hold: the flash-sale benchmark fell from
// about 7,300 to 2,300 holds/s with them, so a node on PostgreSQL without
// Redis keeps them in memory, which is exact for one node.) The returned
// func closes what it opened.
func (s *Serve) edgeConfig(log *slog.Logger) (edge.Config, func(), error) {
	f := &s.Security
	cfg := edge.DefaultConfig()
	cfg.RequestTimeout, cfg.Logger = s.RequestTimeout, log
	cfg.Issuer, cfg.Audience, cfg.AccessTTL, cfg.RefreshTTL = f.Issuer, f.Audience, f.AccessTTL, f.RefreshTTL
	cfg.Argon2, cfg.TokenCacheSize, cfg.BehindTLS = f.argon2(), f.TokenCacheSize, f.BehindTLS
	var err error
	if cfg.RateLimits, err = edge.ParseRateLimits(f.RateLimit); err != nil {
		return cfg, nil, fmt.Errorf("--rate-limit: %w", err)
	}
	cfg.CORSOrigins = splitList(f.CORSOrigins)
	closeAll := func() {}
	if s.Redis != "" {
		opt, err := redis.ParseURL(s.Redis)
		if err != nil {
			return cfg, nil, fmt.Errorf("--redis: %w", err)
		}
		// The edge bounds a hold's claim by the request's deadline, which
		// go-redis honours for reads and writes only when told to.
		opt.ContextTimeoutEnabled = true
		rdb := redis.NewClient(opt)
		cfg.Limiter, cfg.Claims = edge.NewRedisLimiter(rdb), edge.NewRedisClaims(rdb)
		closeAll = func() { _ = rdb.Close() }
	}
	if err := cfg.Validate(); err != nil {
		closeAll()
		return cfg, nil, err
	}
	return cfg, closeAll, nil
}
