package main

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"iter"
	"net"
	"os"
	"sync"
	"syscall"
	"time"
	"unsafe"
)

// clientLoop runs load clients as coroutines on the goroutine that calls
// runClientLoop, waiting for all their sockets in one epoll set: a client
// runs until its socket would block, then the loop runs the next one whose
// socket is ready. This is how wrk and other load generators are built.
//
// Why: with a goroutine per client, each request parked its goroutine in
// Go's poller after the read that found nothing yet, armed a deadline timer
// and registered its context, and woke it through the scheduler; with
// benchflash's one P for loadgen that was about a fifth of its CPU, taken
// from the server it measures on the same cores. The request code is the same in both:
// keepAliveConn.do, with its reads and writes going through loopIO.
//
// Plain sockets only: a TLS client would block in the poller inside its
// coroutine and stop every other client, so TLS targets keep goroutines.
// For the same reason a client dials on a goroutine of its own and waits
// for it in the loop (loopClient.dial).
type clientLoop struct {
	epfd    int
	clients []*loopClient
	events  []syscall.EpollEvent
	active  int   // clients that have not returned
	err     error // epoll failed: every wait fails with it
}

// loopClient is one coroutine of the loop.
type loopClient struct {
	loop  *clientLoop
	index int32 // in loop.clients, and the data of its epoll events
	yield func(struct{}) bool
	next  func() (struct{}, bool)
	stop  func()

	registered int  // the fd in the epoll set; -1 none
	waiting    bool // for its socket: suspended in wait
	write      bool // waiting to write, else to read
	stopped    bool // the loop stopped it: it must not wait again
	wake       error
	// Of the request in flight, set by keepAliveConn.do: it fails with
	// os.ErrDeadlineExceeded after deadline, with ctx's error when ctx ends.
	deadline time.Time
	ctx      context.Context
}

// epollET is syscall.EPOLLET as the uint32 of an event's mask: each
// socket is registered once, edge-triggered, for both directions (as Go's
// own poller does); a client waits for one, the loop skips the other's
// events.
const epollET = 1 << 31

// loopCheck is how often the loop looks for requests past their deadline
// or whose context ended; it bounds how late they fail.
const loopCheck = 5 * time.Millisecond

// errClientStopped is what a client's wait returns when the loop ends
// before its socket is ready.
var errClientStopped = errors.New("loadgen: client loop stopped")

// runClientLoop runs body(c) for every c of conns, each on its own
// coroutine, until all return. It reports errLoopUnsupported, having run
// nothing, when a connection is TLS, and the loop's error when epoll
// failed under it: its clients halted then (see halted), and the caller
// may run them on goroutines.
func runClientLoop(conns []*keepAliveConn, body func(c *keepAliveConn)) error {
	for _, c := range conns {
		if c.tls != nil {
			return errLoopUnsupported
		}
	}
	epfd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return os.NewSyscallError("epoll_create1", err)
	}
	defer func() { _ = syscall.Close(epfd) }()
	l := &clientLoop{epfd: epfd, events: make([]syscall.EpollEvent, len(conns))}
	for i, c := range conns {
		cl := &loopClient{loop: l, index: int32(i), registered: -1}
		cl.next, cl.stop = iter.Pull(func(yield func(struct{}) bool) {
			cl.yield = yield
			body(c)
		})
		l.clients = append(l.clients, cl)
		c.attach(cl)
	}
	defer func() {
		for i, cl := range l.clients {
			cl.stop()
			conns[i].attach(nil)
		}
	}()
	l.active = len(l.clients)
	for _, cl := range l.clients {
		l.resume(cl, nil)
	}
	lastCheck := time.Now()
	for l.active > 0 {
		n, err := l.epollWait(int(loopCheck / time.Millisecond))
		if err != 0 && err != syscall.EINTR {
			// Cannot happen with a valid epoll set; fail every request
			// rather than spin.
			l.err = os.NewSyscallError("epoll_wait", err)
		}
		for _, ev := range l.events[:max(n, 0)] {
			cl := l.clients[ev.Fd]
			want := uint32(syscall.EPOLLIN | syscall.EPOLLRDHUP)
			if cl.write {
				want = syscall.EPOLLOUT
			}
			if cl.waiting && ev.Events&(want|syscall.EPOLLERR|syscall.EPOLLHUP) != 0 {
				l.resume(cl, nil)
			}
		}
		if now := time.Now(); now.Sub(lastCheck) >= loopCheck || l.err != nil {
			lastCheck = now
			for _, cl := range l.clients {
				var wake error
				switch {
				case !cl.waiting:
					continue
				case l.err != nil:
					wake = l.err
				case cl.ctx != nil && cl.ctx.Err() != nil:
					wake = cl.ctx.Err()
				case !cl.deadline.IsZero() && !now.Before(cl.deadline):
					wake = os.ErrDeadlineExceeded
				default:
					continue
				}
				l.resume(cl, wake)
			}
		}
	}
	return l.err
}

// epollWait waits up to msec for events, in a raw system call: one that
// the Go scheduler does not see. Through syscall.EpollWait the runtime's
// monitor took the loop's P away from the wait and gave it back, every few
// requests, and polled at its fastest meanwhile: 20% of loadgen's CPU. The
// wait holds the P for at most loopCheck; a signal ends it (EINTR) when the
// runtime needs the P sooner. drive leaves a P free for the other
// goroutines (dials, timers, progress) when there are several.
func (l *clientLoop) epollWait(msec int) (int, syscall.Errno) {
	n, _, e := syscall.RawSyscall6(syscall.SYS_EPOLL_PWAIT, uintptr(l.epfd), uintptr(unsafe.Pointer(&l.events[0])),
		uintptr(len(l.events)), uintptr(msec), 0, 0)
	return int(n), e
}

// resume runs cl until it waits again or returns (then it is no longer
// active), with wake as the result of its wait (nil: its socket is ready).
func (l *clientLoop) resume(cl *loopClient, wake error) {
	cl.wake = wake
	cl.waiting = false
	if _, ok := cl.next(); !ok {
		l.active--
	}
}

// wait suspends the client until fd is readable (writable when write) and
// returns nil, or returns why it is not: the request's deadline passed, its
// context ended, or the loop stopped.
func (cl *loopClient) wait(fd int, write bool) error {
	l := cl.loop
	if l.err != nil {
		return l.err
	}
	if cl.registered != fd {
		ev := syscall.EpollEvent{Events: syscall.EPOLLIN | syscall.EPOLLOUT | syscall.EPOLLRDHUP | epollET, Fd: cl.index}
		if err := syscall.EpollCtl(l.epfd, syscall.EPOLL_CTL_ADD, fd, &ev); err != nil {
			return os.NewSyscallError("epoll_ctl", err)
		}
		cl.registered = fd
	}
	if cl.ctx != nil && cl.ctx.Err() != nil {
		return cl.ctx.Err()
	}
	if !cl.deadline.IsZero() && !time.Now().Before(cl.deadline) {
		return os.ErrDeadlineExceeded
	}
	cl.waiting, cl.write = true, write
	if !cl.yield(struct{}{}) {
		cl.stopped = true
		return errClientStopped
	}
	return cl.wake
}

// halted reports whether the client's waits fail from now on: the loop
// failed or stopped it. Its worker must then make no more requests.
func (cl *loopClient) halted() bool { return cl.stopped || cl.loop.err != nil }

// dial runs dial on a goroutine of its own and waits for it in the loop,
// through an eventfd, so that a slow connect holds up only this client.
// When the wait ends first (the request's deadline, its ctx), the dial is
// cancelled and a connection it makes anyway is closed.
func (cl *loopClient) dial(ctx context.Context, dial func(context.Context) (net.Conn, error)) (net.Conn, error) {
	efd, _, e := syscall.RawSyscall(syscall.SYS_EVENTFD2, 0, syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
	if e != 0 {
		return nil, os.NewSyscallError("eventfd2", e)
	}
	dctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// mu orders the dialer's write to the eventfd before its close here:
	// once over, the dialer writes nothing (the number may be reused) and
	// closes the connection it makes.
	var (
		mu         sync.Mutex
		conn       net.Conn
		err        error
		done, over bool
	)
	go func() {
		c, derr := dial(dctx)
		mu.Lock()
		defer mu.Unlock()
		if over {
			if c != nil {
				_ = c.Close()
			}
			return
		}
		conn, err, done = c, derr, true
		var one [8]byte
		binary.NativeEndian.PutUint64(one[:], 1)
		_, _ = syscall.Write(int(efd), one[:])
	}()
	defer func() {
		_ = syscall.Close(int(efd)) // which takes it out of the epoll set
		cl.closing()
	}()
	for {
		werr := cl.wait(int(efd), false)
		// Deciding and setting over are one step: a dial that ends after
		// it closes its own connection.
		mu.Lock()
		switch {
		case done:
			over = true
			mu.Unlock()
			return conn, err
		case werr != nil:
			over = true
			mu.Unlock()
			return nil, werr
		}
		mu.Unlock() // woken before the dial ended: wait on
	}
}

// closing tells the client its socket is being closed, which takes it out
// of the epoll set; a new socket may get its number.
func (cl *loopClient) closing() { cl.registered = -1 }

// loopIO reads and writes a client's non-blocking socket with raw system
// calls, waiting in the loop when it would block.
type loopIO struct {
	cl *loopClient
	fd int
	// sent: the last Write wrote all it had, and no Write since the last
	// Read waited, so the socket has nothing to read that came after the
	// request yet. The next Read waits before it reads: a read right after
	// the request would find nothing (the server has not answered yet) and
	// cost a system call per request. The wait cannot miss the answer: the
	// socket is registered edge-triggered, the answer's arrival after the
	// write queues an event, and only the loop's epoll_wait takes events,
	// which runs only while a client waits: a Write that waited could have
	// let it take the answer's event, hence writeWaited.
	sent, writeWaited bool
}

// newLoopIO returns the loopIO of c's socket, or nil when c has none that
// the loop can wait for.
func newLoopIO(cl *loopClient, c net.Conn) io.ReadWriter {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	fd := -1
	if rc.Control(func(s uintptr) { fd = int(s) }) != nil || fd < 0 {
		return nil
	}
	return &loopIO{cl: cl, fd: fd}
}

func (o *loopIO) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if o.sent {
		o.sent = false
		if err := o.cl.wait(o.fd, false); err != nil {
			return 0, err
		}
	}
	o.writeWaited = false
	for {
		n, e := rawSyscall(syscall.SYS_READ, uintptr(o.fd), p)
		switch {
		case e == syscall.EAGAIN:
			if err := o.cl.wait(o.fd, false); err != nil {
				return 0, err
			}
		case e != 0:
			return 0, os.NewSyscallError("read", e)
		case n == 0:
			return 0, io.EOF
		default:
			return n, nil
		}
	}
}

func (o *loopIO) Write(p []byte) (int, error) {
	n := 0
	o.sent = false
	for n < len(p) {
		m, e := rawSyscall(syscall.SYS_WRITE, uintptr(o.fd), p[n:])
		switch {
		case e == syscall.EAGAIN:
			o.writeWaited = true
			if err := o.cl.wait(o.fd, true); err != nil {
				return n, err
			}
		case e != 0:
			return n, os.NewSyscallError("write", e)
		default:
			n += m
		}
	}
	o.sent = !o.writeWaited
	return n, nil
}

// rawSyscall makes the read or write trap on fd with p (not empty), in a
// system call the Go scheduler does not see (the socket is non-blocking),
// again while it is interrupted.
func rawSyscall(trap, fd uintptr, p []byte) (int, syscall.Errno) {
	for {
		m, _, e := syscall.RawSyscall(trap, fd, uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
		if e != syscall.EINTR {
			return int(m), e
		}
	}
}
