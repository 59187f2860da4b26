package cluster

import (
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
)

// TestStopAware: a request that is in an activation's mailbox when the
// activation stops gets a dead letter, so that its caller retries at once,
// where protoactor would drop it and let the caller wait out its timeout.
// A request before the stop is served; a message without a sender between
// the stop and the late request is dropped on the way.
func TestStopAware(t *testing.T) {
	system := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return slog.New(slog.DiscardHandler) }))
	t.Cleanup(system.Shutdown)
	busy := make(chan struct{})
	props := actor.PropsFromFunc(func(ctx actor.Context) {
		switch m := ctx.Message().(type) {
		case string:
			if m == "busy" {
				<-busy // everything below queues behind it
			}
			ctx.Respond("served " + m)
		}
	})
	pid := system.Root.Spawn(StopAware(props, system.Root))
	first := system.Root.RequestFuture(pid, "busy", 10*time.Second)
	system.Root.Poison(pid)
	system.Root.Send(pid, "no sender")
	late := system.Root.RequestFuture(pid, "late", 10*time.Second)
	close(busy)

	if res, err := first.Result(); err != nil || res != "served busy" {
		t.Errorf("the request before the stop = %v, %v; want served busy", res, err)
	}
	start := time.Now()
	if res, err := late.Result(); !errors.Is(err, actor.ErrDeadLetter) {
		t.Errorf("a request queued behind the stop = %v, %v after %v; want actor.ErrDeadLetter", res, err, time.Since(start))
	}
}
