package cluster

import (
	"context"
	"errors"
	"io"
	"log/slog"
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
		}
	}
}

// TestLocalReplies: a request to an activation on this member gets its own
// answer and only it: an answer that comes after the request gave up, or a
// second answer, never reaches a later request, though the reply slots are
// reused.
func TestLocalReplies(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	a := &withheld{held: make(chan *actor.PID, 1)}
	n, err := Start(cfg, Kind{Name: "w", Props: actor.PropsFromProducer(func() actor.Actor { return a })})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Stop()

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
}
