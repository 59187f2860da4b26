package cluster

import (
	"context"
	"sync"
	"sync/atomic"
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
// A request waits on its slot's channel alone. Its deadline and the end of
// its context come through that channel too, from one watcher goroutine
// that looks at the waiting slots every watchEvery. A select over the
// answer, the context and a timer, with the timer's reset and stop, was
// 8% of the node's CPU on a hot resource, and the wait on one channel is
// 4% (profiled in make bench-flash, 256 clients); a deadline of seconds
// needs no finer clock. So a request ends up to watchEvery after its
// deadline or the end of its context.
//
// Requests to other members keep futures, with their per-attempt timeout
// and retry (see Lookup.await).
type replies struct {
	system *actor.ActorSystem
	mu     sync.Mutex
	free   []*replySlot
	all    []*replySlot // every slot, for the watcher; only appended to

	waiting atomic.Int64  // requests waiting on a slot
	wake    chan struct{} // the first request to wait wakes the watcher
	stop    chan struct{} // closed by close: the watcher returns once no request waits
	watched chan struct{} // closed when the watcher has returned
}

// watchEvery is how often the watcher ends the waits past their deadline
// or whose context ended, while any request waits.
const watchEvery = 5 * time.Millisecond

// newReplies returns the replies of a node and starts their watcher, which
// sleeps until a request waits; close stops it.
func newReplies(system *actor.ActorSystem) *replies {
	r := &replies{system: system, wake: make(chan struct{}, 1), stop: make(chan struct{}), watched: make(chan struct{})}
	go r.watch()
	return r
}

// replySlot is a registered process that receives one request's answer.
type replySlot struct {
	id      string
	mu      sync.Mutex
	gen     uint32   // the RequestId of the request waiting, or of the last one
	waiting bool     // a request waits for the answer to gen
	answer  chan any // capacity 1: one value per request, an answer or a waitEnded
	// Of the request waiting: the watcher ends it with ErrTimeout once
	// deadline has passed, unless ctxBound (its context's deadline is the
	// sooner), and with ctx's error once ctx ends.
	deadline time.Time
	ctxBound bool
	ctx      context.Context
}

// waitEnded is what the watcher hands a request it ends.
type waitEnded struct{ err error }

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
			break
		}
	}
	r.mu.Lock()
	r.all = append(r.all, s)
	r.mu.Unlock()
	return s
}

func (r *replies) put(s *replySlot) {
	r.mu.Lock()
	r.free = append(r.free, s)
	r.mu.Unlock()
}

// request sends msg to the local activation pid and waits for its answer
// until deadline or ctx's end. The errors are a future's: actor.ErrTimeout,
// and actor.ErrDeadLetter when pid's actor is gone; a context that ends by
// its deadline before deadline ends the wait with its own error.
func (r *replies) request(ctx context.Context, pid *actor.PID, msg any, deadline time.Time) (any, error) {
	if r.waiting.Add(1) == 1 {
		select {
		case r.wake <- struct{}{}:
		default: // the watcher is awake, or will be
		}
	}
	select {
	case <-r.stop:
		// The node stopped: its actors are gone, and the watcher, which
		// returns once no request waits, may have returned already.
		r.waiting.Add(-1)
		return nil, actor.ErrDeadLetter
	default:
	}
	s := r.get()
	dl, ok := ctx.Deadline()
	s.mu.Lock()
	s.gen++
	s.waiting = true
	s.deadline, s.ctxBound, s.ctx = deadline, ok && !dl.After(deadline), ctx
	sender := &actor.PID{Address: r.system.Address(), Id: s.id, RequestId: s.gen}
	s.mu.Unlock()
	r.system.Root.RequestWithCustomSender(pid, msg, sender)

	var (
		res any
		err error
	)
	switch m := (<-s.answer).(type) {
	case waitEnded:
		err = m.err
	case *actor.DeadLetterResponse:
		err = actor.ErrDeadLetter
	default:
		res = m
	}
	r.waiting.Add(-1)
	// The one value of this request came: the slot is empty, and no
	// other is sent for it (waiting is false).
	s.mu.Lock()
	s.ctx = nil // not kept past the request
	s.mu.Unlock()
	r.put(s)
	return res, err
}

// watch ends the waits past their deadline or whose context ended, every
// watchEvery while any request waits. It returns once close was called
// and no request waits.
func (r *replies) watch() {
	defer close(r.watched)
	t := time.NewTicker(watchEvery)
	defer t.Stop()
	for {
		if r.waiting.Load() == 0 {
			t.Stop()
			select {
			case <-r.wake:
			case <-r.stop:
				// A request that counted itself before this load is
				// watched to its end; one after it sees stop closed.
				if r.waiting.Load() == 0 {
					return
				}
			}
			t.Reset(watchEvery)
		}
		<-t.C
		now := time.Now()
		r.mu.Lock()
		all := r.all
		r.mu.Unlock()
		for _, s := range all {
			s.expire(now)
		}
	}
}

// close ends the watcher once no request waits; later requests fail with
// actor.ErrDeadLetter. It is called once, by Node.Stop.
func (r *replies) close() { close(r.stop) }

// expire ends the slot's wait if it is past its deadline or its context
// ended.
func (s *replySlot) expire(now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.waiting {
		return
	}
	var err error
	if err = s.ctx.Err(); err == nil && !s.ctxBound && !now.Before(s.deadline) {
		err = actor.ErrTimeout
	}
	if err != nil {
		s.waiting = false
		s.answer <- waitEnded{err} // cannot block: one value per request
	}
}

// SendUserMessage takes the answer to the request waiting, if pid is its
// sender; anything else is dropped.
func (s *replySlot) SendUserMessage(pid *actor.PID, message any) {
	_, msg, _ := actor.UnwrapEnvelope(message)
	s.mu.Lock()
	if s.waiting && pid != nil && pid.RequestId == s.gen {
		s.waiting = false
		s.answer <- msg // cannot block: one value per request
	}
	s.mu.Unlock()
}

func (s *replySlot) SendSystemMessage(*actor.PID, any) {}

func (s *replySlot) Stop(*actor.PID) {}
