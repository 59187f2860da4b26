// Package resource is the resource actor: one virtual actor per bookable
// resource (a room, a table, a seat, a pool of tickets) that owns and
// serializes its availability.
//
// The actor is event-sourced. It decides each command in memory, in arrival
// order, against its state including decisions not yet committed, and adds
// the resulting events to a batch. One batch write is in flight at a time;
// callers are answered once the batch holding their decision (and everything
// decided before it) is durable in the journal. Rejections that change
// nothing are answered at once. A failed write answers every pending caller
// with a retryable error and reloads the actor from the journal; a write that
// loses the journal's conditional append (another activation of the same
// resource committed first) does the same and stops the actor.
//
// Invariants: for every slot held + confirmed ≤ capacity; a "yes" is durable
// before it is sent; an expired hold frees its units exactly once (expiry
// times live in the state and the timer is re-armed on activation); a
// confirmed booking is never lost.
package resource
