package resource

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/bookd/bookd/persistence"
)

// Kind is the cluster kind of resource actors.
const Kind = "resource"

// DefaultHoldTTL is how long a hold lasts on a resource that sets no TTL.
const DefaultHoldTTL = 10 * time.Minute

// Config is how resource actors run. Start from DefaultConfig.
type Config struct {
	// SnapshotEvery is how many events may follow the last snapshot before the
	// next batch write saves a new one. Default 500.
	SnapshotEvery int
	// BatchMax is the most events one batch write carries. Default 512.
	BatchMax int
	// WriteTimeout bounds one batch write. Default 5s.
	WriteTimeout time.Duration
	// LoadTimeout bounds loading a resource at activation. Default 10s.
	LoadTimeout time.Duration
	// IdleTimeout is how long an actor may go without a message before it
	// stops to free its memory (passivation); the next message activates it
	// again from the journal. An actor with held holds never passivates:
	// it must expire them on time. 0 never passivates. Default 5m.
	IdleTimeout time.Duration
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// Logger gets the actors' logs. Default slog.Default().
	Logger *slog.Logger
}

// DefaultConfig returns the defaults documented on Config.
func DefaultConfig() Config {
	return Config{
		SnapshotEvery: 500,
		BatchMax:      512,
		WriteTimeout:  5 * time.Second,
		LoadTimeout:   10 * time.Second,
		IdleTimeout:   5 * time.Minute,
		Now:           time.Now,
		Logger:        slog.Default(),
	}
}

// Validate reports the first field that is out of range.
func (c Config) Validate() error {
	switch {
	case c.SnapshotEvery < 1:
		return fmt.Errorf("resource: SnapshotEvery must be at least 1, got %d", c.SnapshotEvery)
	case c.BatchMax < 1:
		return fmt.Errorf("resource: BatchMax must be at least 1, got %d", c.BatchMax)
	case c.WriteTimeout <= 0:
		return fmt.Errorf("resource: WriteTimeout must be positive, got %v", c.WriteTimeout)
	case c.LoadTimeout <= 0:
		return fmt.Errorf("resource: LoadTimeout must be positive, got %v", c.LoadTimeout)
	case c.IdleTimeout < 0:
		return fmt.Errorf("resource: IdleTimeout must not be negative, got %v", c.IdleTimeout)
	case c.Now == nil:
		return fmt.Errorf("resource: Now must be set")
	case c.Logger == nil:
		return fmt.Errorf("resource: Logger must be set")
	}
	return nil
}

// Stores are what a resource actor reads and writes.
type Stores struct {
	Journal persistence.Journal
	Catalog persistence.Catalog
	// Events, when set, gets each committed batch's AvailabilityChange on
	// the topics that have a subscriber, every topic unless it implements
	// persistence.Audience (publish.go): the node's bus.
	Events persistence.Publisher
}

// Stream is the journal stream of a resource.
func Stream(resourceID string) string { return "resource/" + resourceID }
