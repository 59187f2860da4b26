package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
)

// withheld is an actor that keeps the sender of "hold" unanswered, answers
// it when told "release", answers "twice" twice and echoes anything else.
type withheld struct {
	held chan *actor.PID
}

func (w *withheld) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case string:
		switch m {
		case "hold":
			w.held <- ctx.Sender()
		case "release":
			ctx.Send(<-w.held, "late answer")
			ctx.Respond("released")
		case "twice":
			ctx.Respond("first")
			ctx.Respond("second")
		default:
			ctx.Respond(m)
			if strings.HasPrefix(m, "twice:") {
				ctx.Respond("again " + m)
			}
		}
	}
}

// startAlone starts a node alone with kinds, logging nowhere; the test's
// end stops it.
func startAlone(t *testing.T, kinds ...Kind) *Node {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	n, err := Start(cfg, kinds...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.Stop)
	return n
}

// TestLocalReplies: a request to an activation on this member gets its own
// answer and only it: an answer that comes after the request gave up, or a
// second answer, never reaches a later request, though the reply slots are
// reused.
func TestLocalReplies(t *testing.T) {
	a := &withheld{held: make(chan *actor.PID, 1)}
	n := startAlone(t, Kind{Name: "w", Props: actor.PropsFromProducer(func() actor.Actor { return a })})

	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	if _, err := n.Request(ctx, "w", "x", "hold"); !errors.Is(err, ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("an unanswered request = %v; want ErrUnavailable for the deadline", err)
	}
	for range 3 {
		if res, err := n.Request(t.Context(), "w", "x", "release"); err != nil || res != "released" {
			t.Fatalf("Request(release) = %v, %v; want released, not the late answer of the request that gave up", res, err)
		}
		// The slot is free again; hold it once more.
		ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
		_, _ = n.Request(ctx, "w", "x", "hold")
		cancel()
	}
	// A timeout without a context deadline ends by the watcher (the
	// loop above left a request held: release it first).
	if res, err := n.Request(t.Context(), "w", "x", "release"); err != nil || res != "released" {
		t.Fatalf("Request(release) = %v, %v; want released", res, err)
	}
	if _, err := n.RequestWithin(t.Context(), 50*time.Millisecond, "w", "x", "hold"); !errors.Is(err, ErrUnavailable) || !errors.Is(err, actor.ErrTimeout) {
		t.Fatalf("RequestWithin(hold, 50ms) = %v; want ErrUnavailable for the timeout", err)
	}
	if res, err := n.RequestWithin(t.Context(), time.Second, "w", "x", "release"); err != nil || res != "released" {
		t.Fatalf("RequestWithin(release) after a timeout = %v, %v; want released", res, err)
	}
	// A context deadline sooner than the timeout ends the wait with its own
	// error; a cancelled context ends it within the watcher's tick; the slot
	// serves on.
	dctx, dcancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	start := time.Now()
	if _, err := n.RequestWithin(dctx, time.Minute, "w", "x", "hold"); !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 10*time.Second {
		t.Fatalf("RequestWithin(hold, 1m) with a 50ms context = %v after %v; want the context's deadline", err, time.Since(start))
	}
	dcancel()
	if res, err := n.RequestWithin(t.Context(), time.Second, "w", "x", "release"); err != nil || res != "released" {
		t.Fatalf("RequestWithin(release) = %v, %v; want released", res, err)
	}
	cctx, ccancel := context.WithCancel(t.Context())
	time.AfterFunc(50*time.Millisecond, ccancel)
	if _, err := n.RequestWithin(cctx, time.Minute, "w", "x", "hold"); !errors.Is(err, context.Canceled) {
		t.Fatalf("RequestWithin(hold) cancelled = %v; want context.Canceled", err)
	}
	if res, err := n.RequestWithin(t.Context(), time.Second, "w", "x", "release"); err != nil || res != "released" {
		t.Fatalf("RequestWithin(release) after a cancel = %v, %v; want released", res, err)
	}
	if res, err := n.Request(t.Context(), "w", "x", "twice"); err != nil || res != "first" {
		t.Fatalf("Request(twice) = %v, %v; want first", res, err)
	}
	for _, m := range []string{"a", "b", "c"} {
		if res, err := n.Request(t.Context(), "w", "x", m); err != nil || res != m {
			t.Fatalf("Request(%s) after a double answer = %v, %v; want %s", m, res, err, m)
		}
	}
	if free := len(n.replies.free); free == 0 {
		t.Fatal("no reply slot went back to be reused")
	}

	// Many callers at once, each answered twice, on a few activations:
	// every caller gets its own first answer.
	var wg sync.WaitGroup
	errs := make(chan error, 32)
	for g := range 32 {
		wg.Go(func() {
			for i := range 100 {
				m := fmt.Sprintf("twice:%d-%d", g, i)
				if res, err := n.Request(t.Context(), "w", fmt.Sprint("id", i%4), m); err != nil || res != m {
					errs <- fmt.Errorf("Request(%s) = %v, %v", m, res, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}

	// An actor that does not exist answers at once, through a dead letter.
	start = time.Now()
	_, err := n.replies.request(t.Context(), actor.NewPID(n.system.Address(), "nobody"), "x", time.Now().Add(5*time.Second))
	if !errors.Is(err, actor.ErrDeadLetter) || time.Since(start) > time.Second {
		t.Fatalf("a request to no actor = %v after %v; want actor.ErrDeadLetter at once", err, time.Since(start))
	}
}

// TestReplySlotDeadlines: a slot, reused from one request to the next,
// ends each wait at its own deadline: a request after one that timed out,
// or after one answered just before its deadline, is not ended early by
// the deadline of the one before.
func TestReplySlotDeadlines(t *testing.T) {
	n := startAlone(t)
	// It answers a duration after sleeping it.
	pid := n.system.Root.Spawn(actor.PropsFromFunc(func(c actor.Context) {
		if d, ok := c.Message().(time.Duration); ok {
			time.Sleep(d)
			c.Respond(d)
		}
	}))
	request := func(sleep, timeout time.Duration) (any, error) {
		return n.replies.request(t.Context(), pid, sleep, time.Now().Add(timeout))
	}
	for range 3 {
		if _, err := request(150*time.Millisecond, 20*time.Millisecond); !errors.Is(err, actor.ErrTimeout) {
			t.Fatalf("a request answered after its deadline = %v; want ErrTimeout", err)
		}
		// It waits behind the sleep of the one before: about 200 ms.
		if res, err := request(50*time.Millisecond, time.Second); err != nil || res != 50*time.Millisecond {
			t.Fatalf("the request after a timeout = %v, %v; want its answer", res, err)
		}
		if res, err := request(0, 30*time.Millisecond); err != nil || res != time.Duration(0) {
			t.Fatalf("a prompt request = %v, %v; want its answer", res, err)
		}
		// Answered near its deadline: the answer and the watcher race.
		_, _ = request(25*time.Millisecond, 25*time.Millisecond)
		time.Sleep(10 * time.Millisecond)
		if res, err := request(40*time.Millisecond, time.Second); err != nil || res != 40*time.Millisecond {
			t.Fatalf("the request after one answered at its deadline = %v, %v; want its answer", res, err)
		}
	}
	if free := len(n.replies.free); free != 1 {
		t.Fatalf("%d reply slots; want the one, reused", free)
	}
}

// TestRepliesAfterStop: a request that waits when its node stops still ends
// at its deadline; one made after the stop fails at once; and the watcher
// goroutine ends once no request waits.
func TestRepliesAfterStop(t *testing.T) {
	n := startAlone(t)
	got := make(chan struct{}, 1)
	silent := n.system.Root.Spawn(actor.PropsFromFunc(func(c actor.Context) { // never answers
		if c.Message() == "x" {
			got <- struct{}{}
		}
	}))
	waited := make(chan error, 1)
	start := time.Now()
	go func() {
		_, err := n.replies.request(t.Context(), silent, "x", time.Now().Add(300*time.Millisecond))
		waited <- err
	}()
	<-got // the request was sent, and waits
	n.Stop()
	select {
	case err := <-waited:
		if !errors.Is(err, actor.ErrTimeout) || time.Since(start) < 300*time.Millisecond {
			t.Fatalf("a request waiting at the stop = %v after %v; want actor.ErrTimeout at its deadline (300ms)", err, time.Since(start))
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a request waiting at the stop never ended")
	}

	start = time.Now()
	if _, err := n.replies.request(t.Context(), silent, "x", time.Now().Add(time.Minute)); !errors.Is(err, actor.ErrDeadLetter) || time.Since(start) > time.Second {
		t.Fatalf("a request after the stop = %v after %v; want actor.ErrDeadLetter at once", err, time.Since(start))
	}
	select {
	case <-n.replies.watched:
	case <-time.After(10 * time.Second):
		t.Fatal("the watcher goroutine still runs after the stop")
	}
}
