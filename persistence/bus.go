package persistence

import (
	"context"
	"errors"
)

// ErrBusClosed is returned by Publish and Subscribe once the bus is closed.
var ErrBusClosed = errors.New("bus closed")

// Publisher is the publishing half of a Bus; resource actors get only it.
type Publisher interface {
	// Publish queues payload for topic and returns at once: it never waits
	// for the network or for subscribers, so an actor may call it after
	// every commit. Messages are delivered in the order one goroutine
	// published them (across topics too); a node's messages travel on one
	// connection, so each subscriber sees them in that order. When the
	// publisher's bounded queue is full, the message is dropped and counted,
	// and the topic's subscribers are sent Delivery.Lost once the queue has
	// room again. The bus keeps payload: it must not be changed afterwards.
	// Publish returns ErrBusClosed after Close; ctx only carries values.
	Publish(ctx context.Context, topic string, payload []byte) error
}

// Audience is implemented by a Publisher that knows its subscribers, as a
// node's own LocalBus does (a bus shared through a server does not): a
// publisher may then skip building the messages of topics nobody listens
// to.
type Audience interface {
	// Subscribed reports whether topic has a subscriber. A Subscribe that
	// returned before the call counts, so a message not published because
	// this said false is one the bus's contract did not promise anyone.
	Subscribed(topic string) bool
}

// Bus carries small messages (availability deltas) between the nodes of a
// cluster: topic-based, at most once, ordered per publisher, with an
// explicit signal when messages may have been lost. It is no queue: a
// subscriber sees only what is published while it is subscribed.
//
// Implementations: NewLocalBus (in this process, the embedded profile) and
// persistence/redis (Redis pub/sub, the cluster profile). Both pass
// persistence/conformance.RunBus.
type Bus interface {
	Publisher
	// Subscribe calls h with every message published on topic from the
	// time Subscribe returns: a message published (on any node) after it
	// returned is either delivered or followed by a Delivery.Lost for the
	// topic. Messages published earlier may be delivered too. It waits
	// until the subscription is active or ctx ends.
	//
	// h is called on the bus's delivery goroutine, one message at a time,
	// in order; it must not block (queue the work and return), or every
	// subscriber of the node waits.
	Subscribe(ctx context.Context, topic string, h func(Delivery)) (Subscription, error)
	// Stats returns the bus's counters.
	Stats() BusStats
	// Close stops delivering and publishing; queued messages may be lost.
	Close() error
}

// Delivery is one message from the bus, or a signal that messages of its
// topic may have been lost.
type Delivery struct {
	Topic   string
	Payload []byte
	// Lost, when true, means that messages of Topic may have been lost
	// before this point (the publisher's queue overflowed, the node's
	// connection to Redis broke and was made again); Payload is nil. A
	// subscriber that keeps state from the messages must resync it from
	// the source (a fresh snapshot).
	Lost bool
}

// Subscription is one Subscribe's registration.
type Subscription interface {
	// Unsubscribe stops the deliveries to this subscription's handler; a
	// delivery already under way may still finish. It is idempotent.
	Unsubscribe()
}

// BusStats are a bus's counters since it was opened.
type BusStats struct {
	// Published counts the messages Publish accepted.
	Published uint64
	// Dropped counts the messages Publish dropped because its queue was
	// full, and those a failed write to the server lost.
	Dropped uint64
	// Delivered counts the deliveries to handlers, Lost signals included.
	Delivered uint64
	// Resyncs counts the Lost signals delivered.
	Resyncs uint64
}

// The topics resource actors publish their availability changes to, and
// the edge subscribes to.

// ResourceTopic is the topic of one resource.
func ResourceTopic(resourceID string) string { return "resource:" + resourceID }

// ListingTopic is the topic of every resource of a listing.
func ListingTopic(listingID string) string { return "listing:" + listingID }

// UserTopic is the topic of the holds of one owner.
func UserTopic(userID string) string { return "user:" + userID }
