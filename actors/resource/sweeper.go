package resource

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	bookdv1 "github.com/bookd/bookd/messages/bookd/v1"
	"github.com/bookd/bookd/persistence"
)

// Requester sends a message to an actor and waits for its reply; the cluster
// node is one.
type Requester interface {
	Request(ctx context.Context, kind, identity string, msg any) (any, error)
}

// Sweeper wakes the resources whose durable wake time has passed, so that a
// hold expires on time when nobody touches its resource, and after a
// restart. A resource that is active has its own timer; the sweeper is what
// brings back the ones that are not.
type Sweeper struct {
	// Journal lists the due wake times.
	Journal persistence.Journal
	// Actors delivers the Wake messages.
	Actors Requester
	// Interval is how often the sweeper looks. Default 250ms: holds expire
	// within about that of their time.
	Interval time.Duration
	// Batch is the most wakes read per look. Default 256.
	Batch int
	// Parallel is the most wakes in flight at once. Default 16.
	Parallel int
	// Timeout bounds one Wake request. Default 5s.
	Timeout time.Duration
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// Logger gets the sweeper's logs. Default slog.Default().
	Logger *slog.Logger
}

func (s *Sweeper) defaults() {
	if s.Interval <= 0 {
		s.Interval = 250 * time.Millisecond
	}
	if s.Batch <= 0 {
		s.Batch = 256
	}
	if s.Parallel <= 0 {
		s.Parallel = 16
	}
	if s.Timeout <= 0 {
		s.Timeout = 5 * time.Second
	}
	if s.Now == nil {
		s.Now = time.Now
	}
	if s.Logger == nil {
		s.Logger = slog.Default()
	}
}

// Run sweeps until ctx ends, then waits for the wakes it sent.
func (s *Sweeper) Run(ctx context.Context) {
	s.defaults()
	log := s.Logger.With("subsystem", "sweeper")
	var wg sync.WaitGroup
	defer wg.Wait()
	sem := make(chan struct{}, s.Parallel)
	var mu sync.Mutex
	busy := map[string]bool{} // streams with a wake in flight
	tick := time.NewTicker(s.Interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		due, err := s.Journal.DueWakes(ctx, s.Now(), s.Batch)
		if err != nil {
			if ctx.Err() == nil {
				log.Warn("read due wakes", "error", err)
			}
			continue
		}
		for _, w := range due {
			id, ok := strings.CutPrefix(w.Stream, Stream(""))
			if !ok {
				continue
			}
			mu.Lock()
			if busy[id] {
				mu.Unlock()
				continue
			}
			busy[id] = true
			mu.Unlock()
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() { <-sem; mu.Lock(); delete(busy, id); mu.Unlock() }()
				if err := s.wake(ctx, id); err != nil && ctx.Err() == nil {
					log.Warn("wake resource", "resource_id", id, "error", err)
				}
			}()
		}
	}
}

func (s *Sweeper) wake(ctx context.Context, id string) error {
	ctx, cancel := context.WithTimeout(ctx, s.Timeout)
	defer cancel()
	res, err := s.Actors.Request(ctx, Kind, id, &bookdv1.Wake{})
	if err != nil {
		return err
	}
	r, ok := res.(*bookdv1.WakeReply)
	if !ok {
		return fmt.Errorf("unexpected reply %T", res)
	}
	if r.GetError() != nil {
		return fmt.Errorf("%v: %s", r.GetError().GetCode(), r.GetError().GetDetail())
	}
	return nil
}
