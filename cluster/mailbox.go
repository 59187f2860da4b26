package cluster

import (
	"sync/atomic"

	"github.com/asynkron/protoactor-go/actor"
)

// StopAware returns props whose activations answer a request that reaches
// them after they stopped with a dead letter at once, as a request to an
// actor that is gone gets one, instead of dropping it. The Node spawns its
// kinds' activations so; root sends the dead letters. The props get
// protoactor's unbounded mailbox, in place of any mailbox they set.
//
// Why: protoactor processes a stopped actor's mailbox to its end but
// drops each message in it (InvokeUserMessage returns early). A request
// that a caller sent just before the activation stopped (its PID looked
// up and cached a moment earlier) therefore waited its whole deadline,
// 5 s at the edge, although a new activation could answer it at once.
// With the dead letter, RequestWithin forgets the PID and retries.
//
// For kinds without children, as ours are: an actor with children is only
// stopping when its Stop returns, and would still be given messages
// (its children's replies), which this drops.
func StopAware(props *actor.Props, root *actor.RootContext) *actor.Props {
	return props.Clone(actor.WithMailbox(func() actor.Mailbox {
		return &stopAwareMailbox{Mailbox: actor.Unbounded()(), root: root}
	}))
}

// stopAwareMailbox is protoactor's unbounded mailbox, invoking the actor
// through a stopAwareInvoker.
type stopAwareMailbox struct {
	actor.Mailbox
	root *actor.RootContext
}

func (m *stopAwareMailbox) RegisterHandlers(invoker actor.MessageInvoker, dispatcher actor.Dispatcher) {
	m.Mailbox.RegisterHandlers(&stopAwareInvoker{MessageInvoker: invoker, root: m.root}, dispatcher)
}

// stopAwareInvoker passes an activation its messages until the actor has
// handled Stop, then answers each request (a message with a sender) with
// actor.DeadLetterResponse and drops the rest.
type stopAwareInvoker struct {
	actor.MessageInvoker
	root    *actor.RootContext
	stopped atomic.Bool // the mailbox runs on one goroutine at a time, not always the same
}

func (i *stopAwareInvoker) InvokeSystemMessage(msg any) {
	i.MessageInvoker.InvokeSystemMessage(msg)
	if _, ok := msg.(*actor.Stop); ok {
		i.stopped.Store(true)
	}
}

func (i *stopAwareInvoker) InvokeUserMessage(msg any) {
	if !i.stopped.Load() {
		i.MessageInvoker.InvokeUserMessage(msg)
		return
	}
	if env, ok := msg.(*actor.MessageEnvelope); ok && env.Sender != nil {
		i.root.Send(env.Sender, &actor.DeadLetterResponse{})
	}
}
