package main

import (
	"context"
	"log/slog"

	"github.com/bookd/bookd/persistence"
	"github.com/bookd/bookd/persistence/redis"
)

// openBus opens the bus availability changes travel on: Redis pub/sub with
// --redis (the cluster profile), in this process otherwise.
func (s *Serve) openBus(ctx context.Context, log *slog.Logger) (persistence.Bus, error) {
	if s.Redis == "" {
		return persistence.NewLocalBus(0), nil
	}
	return redis.OpenBus(ctx, s.Redis, redis.BusOptions{Logger: log})
}
