package cluster

import (
	"context"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"
)

// replies carries the answers of requests to activations on this member
// without protoactor futures. A future registers a new process under a new
// name, arms a timer and waits on a condition variable, per request; on a
// hot resource that was a tenth of the node's CPU. A reply slot is
// registered once and reused: each request sends the slot's PID with a
// RequestId of its own (a per-slot generation, which PID.Equal compares and
// remoting carries) as its sender, and the slot takes only the answer to
// the generation that waits; an answer that comes after its request
// stopped waiting, or a second one, is dropped, never handed to the slot's
// next request.
//
// Requests to other members keep futures, with their per-attempt timeout
// and retry (see Lookup.await).
type replies struct {
	system *actor.ActorSystem
	mu     sync.Mutex
	free   []*replySlot
}

// replySlot is a registered process that receives one request's answer.
type replySlot struct {
	id      string
	mu      sync.Mutex
	gen     uint32      // the RequestId of the request waiting, or of the last one
	waiting bool        // a request waits for the answer to gen
	answer  chan any    // capacity 1: one answer per request
	timer   *time.Timer // the wait's, reused; nil until the first request
}

func (r *replies) get() *replySlot {
	r.mu.Lock()
	if n := len(r.free); n > 0 {
		s := r.free[n-1]
		r.free = r.free[:n-1]
		r.mu.Unlock()
		return s
	}
	r.mu.Unlock()
	s := &replySlot{answer: make(chan any, 1)}
	for {
		// NextId never repeats, so this only fails if an actor took the name.
		s.id = "reply" + r.system.ProcessRegistry.NextId()
		if _, ok := r.system.ProcessRegistry.Add(s, s.id); ok {
			return s
		}
	}
}

func (r *replies) put(s *replySlot) {
	r.mu.Lock()
	r.free = append(r.free, s)
	r.mu.Unlock()
}

// request sends msg to the local activation pid and waits for its answer
// until deadline or ctx's end. The errors are a future's: actor.ErrTimeout,
// and actor.ErrDeadLetter when pid's actor is gone.
func (r *replies) request(ctx context.Context, pid *actor.PID, msg any, deadline time.Time) (any, error) {
	s := r.get()
	s.mu.Lock()
	s.gen++
	s.waiting = true
	sender := &actor.PID{Address: r.system.Address(), Id: s.id, RequestId: s.gen}
	s.mu.Unlock()
	r.system.Root.RequestWithCustomSender(pid, msg, sender)

	// A context that ends by deadline first ends the wait itself, with its
	// own error. Otherwise the slot's timer does: since Go 1.23 a stopped or
	// reset timer delivers nothing stale, so it serves one wait after
	// another.
	var expired <-chan time.Time
	if dl, ok := ctx.Deadline(); !ok || dl.After(deadline) {
		if s.timer == nil {
			s.timer = time.NewTimer(time.Until(deadline))
		} else {
			s.timer.Reset(time.Until(deadline))
		}
		expired = s.timer.C
	}
	var (
		res any
		err error
	)
	select {
	case res = <-s.answer:
		if _, ok := res.(*actor.DeadLetterResponse); ok {
			res, err = nil, actor.ErrDeadLetter
		}
	case <-ctx.Done():
		err = ctx.Err()
	case <-expired:
		err = actor.ErrTimeout
	}
	if expired != nil && !s.timer.Stop() {
		// Nothing to drain with Go 1.23's timers, unless a build asks for
		// the old ones (GODEBUG asynctimerchan=1): then a fire not received
		// would end the slot's next wait at once.
		select {
		case <-s.timer.C:
		default:
		}
	}
	s.release()
	r.put(s)
	return res, err
}

// release ends the slot's request: a later answer to it is dropped.
func (s *replySlot) release() {
	s.mu.Lock()
	s.waiting = false
	select {
	case <-s.answer: // came after the wait ended
	default:
	}
	s.mu.Unlock()
}

// SendUserMessage takes the answer to the request waiting, if pid is its
// sender; anything else is dropped.
func (s *replySlot) SendUserMessage(pid *actor.PID, message any) {
	_, msg, _ := actor.UnwrapEnvelope(message)
	s.mu.Lock()
	if s.waiting && pid != nil && pid.RequestId == s.gen {
		s.waiting = false
		s.answer <- msg // cannot block: one answer per request
	}
	s.mu.Unlock()
}

func (s *replySlot) SendSystemMessage(*actor.PID, any) {}

func (s *replySlot) Stop(*actor.PID) {}
