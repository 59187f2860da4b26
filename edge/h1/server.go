// Package h1 serves an http.Handler over HTTP/1.1 with less work per
// request than net/http's server, for the API port, whose traffic is plain
// keep-alive requests with small bodies.
//
// It reads requests itself only while they are plain (see parseHead): a
// request line and header fields in the strict form RFC 9112 asks of
// senders, a body framed by Content-Length. At the first request that is
// not — chunked, Expect, an upgrade to WebSocket, HEAD, HTTP/1.0, a head
// over 4 KiB, anything malformed — it hands the connection, with the bytes
// it has read, to a net/http Server with the same handler, which serves
// it from then on. So every request is answered as net/http answers it,
// and what this package parses is a subset of what net/http parses, with
// the same meaning (FuzzParseHead holds it to that).
//
// What it saves per request, against net/http: the background read that
// watches for a closed client, the per-request context, the copy and the
// sort of the answer's header map and the parse of each header line into
// its own allocation. What it does differently, by design:
//   - A request's context ends when its connection does, not when the
//     handler returns, and a client that goes away is noticed at the next
//     write. Handlers here bound their work with their own deadlines.
//   - The answer's header fields are written in map order, not sorted.
//   - A request body that has not arrived with the head must arrive within
//     IdleTimeout (net/http waits for it without a deadline).
//   - A connection reuses its ResponseWriter and the answer's header map
//     for each request: like net/http, it takes them to be unused once the
//     handler returns. A request body kept past that reads nothing more.
package h1

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"net/url"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// Server serves Handler on the listeners given to Serve.
type Server struct {
	Handler http.Handler
	// ReadHeaderTimeout bounds the time to read a request's head once its
	// first byte has come; IdleTimeout the wait for the next request on a
	// kept-alive connection (and for a body that did not come with its
	// head). Zero means no limit.
	ReadHeaderTimeout time.Duration
	IdleTimeout       time.Duration
	// ErrorLog receives handler panics and accept errors; nil: the log
	// package's standard logger.
	ErrorLog *log.Logger

	once     sync.Once
	fallback *http.Server
	handoff  *handoffListener
	served   chan struct{} // closed when the fallback's Serve returns

	mu        sync.Mutex
	listeners map[net.Listener]struct{}
	conns     map[*conn]struct{}
	shutdown  atomic.Bool
	handedOff atomic.Int64 // connections given to net/http, for tests
}

func (s *Server) init() {
	s.once.Do(func() {
		s.fallback = &http.Server{
			Handler:           s.Handler,
			ReadHeaderTimeout: s.ReadHeaderTimeout,
			IdleTimeout:       s.IdleTimeout,
			ErrorLog:          s.ErrorLog,
		}
		s.handoff = newHandoffListener()
		s.served = make(chan struct{})
		s.listeners = make(map[net.Listener]struct{})
		s.conns = make(map[*conn]struct{})
		go func() {
			defer close(s.served)
			_ = s.fallback.Serve(s.handoff)
		}()
	})
}

func (s *Server) logf(format string, args ...any) {
	if s.ErrorLog != nil {
		s.ErrorLog.Printf(format, args...)
	} else {
		log.Printf(format, args...)
	}
}

// Serve accepts connections on ln and serves them until Shutdown or Close,
// when it returns http.ErrServerClosed; it closes ln.
func (s *Server) Serve(ln net.Listener) error {
	s.init()
	s.mu.Lock()
	if s.shutdown.Load() {
		s.mu.Unlock()
		_ = ln.Close()
		return http.ErrServerClosed
	}
	s.listeners[ln] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.listeners, ln)
		s.mu.Unlock()
		_ = ln.Close()
	}()

	var backoff time.Duration // as net/http does on temporary errors
	for {
		rwc, err := ln.Accept()
		if err != nil {
			if s.shutdown.Load() {
				return http.ErrServerClosed
			}
			if errors.Is(err, net.ErrClosed) {
				return err
			}
			// Out of file descriptors and the like: wait and go on, so that
			// clients that open many connections cannot stop the server.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			s.logf("h1: accept error: %v; retrying in %v", err, backoff)
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		c := s.newConn(rwc)
		if !s.track(c) {
			c.cancel()
			_ = rwc.Close()
			return http.ErrServerClosed
		}
		go c.serve()
	}
}

func (s *Server) track(c *conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.shutdown.Load() {
		return false
	}
	s.conns[c] = struct{}{}
	return true
}

func (s *Server) untrack(c *conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
}

// Shutdown stops accepting, closes the connections that wait for a request
// and waits for the others to finish the request they serve (their answers
// say Connection: close), then does the same for the connections net/http
// took over. When ctx ends first it returns ctx's error; Close ends the
// rest.
func (s *Server) Shutdown(ctx context.Context) error {
	s.init()
	s.closeListeners()
	wait := 10 * time.Millisecond
	for !s.closeIdle() {
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		wait = min(2*wait, 500*time.Millisecond)
	}
	err := s.fallback.Shutdown(ctx)
	if err == nil {
		<-s.served
	}
	return err
}

// Close closes the listeners and every connection at once.
func (s *Server) Close() error {
	s.init()
	s.closeListeners()
	s.mu.Lock()
	for c := range s.conns {
		c.state.Store(stateClosed)
		_ = c.rwc.Close()
		c.cancel()
	}
	s.mu.Unlock()
	err := s.fallback.Close()
	<-s.served
	return err
}

func (s *Server) closeListeners() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.shutdown.Swap(true) {
		return
	}
	for ln := range s.listeners {
		_ = ln.Close()
	}
	s.handoff.close()
}

// closeIdle closes the connections waiting for a request and reports
// whether none are left.
func (s *Server) closeIdle() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		// A new connection's first request may be on its way: it gets five
		// seconds, as in net/http.
		idle := stateIdle
		if c.state.Load() == stateNew {
			if time.Since(c.born) < 5*time.Second {
				continue
			}
			idle = stateNew
		}
		if c.state.CompareAndSwap(idle, stateClosed) {
			_ = c.rwc.Close()
		}
	}
	return len(s.conns) == 0
}

// Connection states; a connection is closed by Shutdown only while new
// (before its first request) or idle (between requests).
const (
	stateNew int32 = iota
	stateIdle
	stateActive
	stateClosed
)

// conn is one connection served by this package.
type conn struct {
	s      *Server
	rwc    net.Conn
	state  atomic.Int32
	br     *bufio.Reader
	bw     *bufio.Writer
	cancel context.CancelFunc // ends the requests' context
	born   time.Time
	// deadline says a read deadline may be set; unread says the connection
	// ends with request bytes left unread.
	deadline, unread bool
	base             http.Request // the fields that are the same for every request
	resp             response
}

var (
	readerPool = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, bufSize) }}
	writerPool = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, bufSize) }}
)

func (s *Server) newConn(rwc net.Conn) *conn {
	c := &conn{s: s, rwc: rwc, born: time.Now()}
	ctx := context.WithValue(context.WithValue(context.Background(),
		http.ServerContextKey, s.fallback), http.LocalAddrContextKey, rwc.LocalAddr())
	ctx, c.cancel = context.WithCancel(ctx)
	c.base = *(&http.Request{
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1, RemoteAddr: rwc.RemoteAddr().String(),
	}).WithContext(ctx)
	c.resp.c = c
	return c
}

func (c *conn) serve() {
	defer func() {
		c.s.untrack(c)
		if c.br == nil {
			return // net/http serves it now
		}
		if c.unread {
			c.closeWriteAndWait()
		}
		_ = c.rwc.Close()
		c.br.Reset(nil)
		readerPool.Put(c.br)
		c.bw.Reset(nil)
		writerPool.Put(c.bw)
	}()
	c.br = readerPool.Get().(*bufio.Reader)
	c.br.Reset(c.rwc)
	c.bw = writerPool.Get().(*bufio.Writer)
	c.bw.Reset(c.rwc)
	defer c.cancel()

	for first := true; ; first = false {
		waiting := stateNew
		if !first {
			waiting = stateIdle
			c.state.Store(stateIdle)
		}
		if c.s.shutdown.Load() {
			return
		}
		rearm := c.waitDeadline(first)
		if !first && c.br.Buffered() == 0 {
			// Let the other runnable goroutines go first. An answer is
			// seldom alone: a group commit wakes the handlers of a whole
			// batch at once, and a client sends its next request only once
			// it has read the answer, so a read right away mostly finds
			// nothing and parks the goroutine in the poller, to be woken
			// again: two system calls and two trips through the scheduler
			// where one read will do. After the others' turn, a third of
			// those reads found their request already there (make
			// bench-flash, 256 clients). Alone, the goroutine goes on at
			// once.
			runtime.Gosched()
		}
		if _, err := c.br.Peek(1); err != nil {
			return
		}
		if !c.state.CompareAndSwap(waiting, stateActive) {
			return // Shutdown closed it
		}
		b, err := c.readHead(rearm)
		if err != nil {
			return
		}
		h, ok := parseHead(b)
		if !ok {
			c.handOff()
			return
		}
		_, _ = c.br.Discard(len(b))
		if !c.serveRequest(&h) {
			return
		}
	}
}

// waitDeadline sets the read deadline for the wait for a request's first
// byte: ReadHeaderTimeout on a new connection (as net/http, so that a
// connection that sends nothing is not kept for IdleTimeout), IdleTimeout
// between requests, none when that is zero. It reports whether the head
// still needs its own deadline.
func (c *conn) waitDeadline(first bool) (rearm bool) {
	d := c.s.IdleTimeout
	if first && c.s.ReadHeaderTimeout > 0 && (d <= 0 || c.s.ReadHeaderTimeout < d) {
		d = c.s.ReadHeaderTimeout
	}
	c.setReadTimeout(d)
	return !first || d != c.s.ReadHeaderTimeout
}

// setReadTimeout sets the read deadline d from now; d ≤ 0 means none.
func (c *conn) setReadTimeout(d time.Duration) {
	switch {
	case d > 0:
		_ = c.rwc.SetReadDeadline(time.Now().Add(d))
		c.deadline = true
	case c.deadline:
		_ = c.rwc.SetReadDeadline(time.Time{})
		c.deadline = false
	}
}

// closeWriteAndWait half-closes the connection and waits a moment before
// it is closed, as net/http does when request bytes are left unread: a
// close with unread data makes the kernel send a reset, which can destroy
// the answer before the client reads it.
func (c *conn) closeWriteAndWait() {
	if cw, ok := c.rwc.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	}
	time.Sleep(rstAvoidanceDelay)
}

// rstAvoidanceDelay is net/http's.
const rstAvoidanceDelay = 500 * time.Millisecond

// readHead waits for a whole head in the buffer and returns it (still
// buffered), or nil when the buffer filled up without one (a head too long
// to be plain). rearm says whether the head's deadline is still to be set
// (a new connection's first head is under it from the start).
func (c *conn) readHead(rearm bool) ([]byte, error) {
	from := 0
	for {
		b, _ := c.br.Peek(c.br.Buffered())
		// A blank line may straddle the last read: look from 2 bytes back.
		if n := headEnd(b[max(0, from-2):]); n >= 0 {
			return b[:max(0, from-2)+n], nil
		}
		if len(b) == bufSize {
			return nil, nil
		}
		from = len(b)
		if rearm && c.s.ReadHeaderTimeout > 0 {
			rearm = false
			c.setReadTimeout(c.s.ReadHeaderTimeout)
		}
		if _, err := c.br.Peek(len(b) + 1); err != nil {
			return nil, err
		}
	}
}

// handOff gives the connection, with what is buffered, to net/http; the
// connection is net/http's when it returns with c.br nil.
func (c *conn) handOff() {
	c.setReadTimeout(0)
	hc := &handedConn{Conn: c.rwc, r: c.br}
	// Counted first: net/http may answer before push returns.
	c.s.handedOff.Add(1)
	if !c.s.handoff.push(hc) {
		c.s.handedOff.Add(-1)
		return
	}
	c.bw.Reset(nil)
	writerPool.Put(c.bw)
	c.br, c.bw = nil, nil
}

// serveRequest runs the handler for h and writes its answer; it reports
// whether the connection may serve another request.
func (c *conn) serveRequest(h *head) bool {
	parts := new(request)
	parts.req = c.base
	parts.url = h.url
	req := &parts.req
	req.Method = h.method
	req.URL = &parts.url
	req.RequestURI = h.target
	req.Host = h.host
	req.Header = h.header
	req.Close = h.close
	req.ContentLength = h.contentLength
	var rb *body
	if h.contentLength > 0 {
		if int64(c.br.Buffered()) < h.contentLength {
			// The rest of the body comes within IdleTimeout (no limit when
			// that is zero, as net/http without a ReadTimeout).
			c.setReadTimeout(c.s.IdleTimeout)
		}
		rb = &parts.body
		*rb = body{r: c.br, n: h.contentLength}
		req.Body = rb
	} else {
		req.Body = http.NoBody
	}

	w := &c.resp
	w.reset(req, rb)
	ok := c.runHandler(w, req)
	if rb != nil {
		defer rb.detach() // a handler that kept r.Body reads no other request
	}
	if !ok {
		c.unread = rb != nil && rb.n > 0
		return false
	}
	w.finish()
	keep := !w.closing()
	if rb != nil && !rb.drain() {
		keep = false
		c.unread = true
	}
	if err := c.bw.Flush(); err != nil {
		return false
	}
	return keep && w.err == nil
}

// request is what serveRequest hands a handler, allocated together: a
// handler that keeps one part keeps them all, which are small.
type request struct {
	req  http.Request
	url  url.URL
	body body
}

// runHandler calls the handler and reports whether it returned; a panic
// is logged (unless it is http.ErrAbortHandler) and ends the connection,
// as in net/http.
func (c *conn) runHandler(w *response, req *http.Request) (ok bool) {
	defer func() {
		if v := recover(); v != nil {
			if v != http.ErrAbortHandler { //nolint:errorlint // net/http compares the same way
				buf := make([]byte, 64<<10)
				buf = buf[:runtime.Stack(buf, false)]
				c.s.logf("h1: panic serving %v: %v\n%s", req.RemoteAddr, v, buf)
			}
			ok = false
		}
	}()
	c.s.Handler.ServeHTTP(w, req)
	return true
}

// maxDrain is the most unread request body read and dropped to keep a
// connection, as in net/http.
const maxDrain = 256 << 10

// body is a request body of a known length, read from the connection.
type body struct {
	r      *bufio.Reader // nil once the handler returned
	n      int64         // bytes left
	err    error
	closed bool
}

func (b *body) Read(p []byte) (int, error) {
	if b.closed || b.r == nil {
		return 0, http.ErrBodyReadAfterClose
	}
	if b.err != nil {
		return 0, b.err
	}
	if b.n <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > b.n {
		p = p[:b.n]
	}
	n, err := b.r.Read(p)
	b.n -= int64(n)
	if err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		b.err = err
		return n, err
	}
	return n, nil
}

// Close ends the handler's reads; what is left is drained (or the
// connection closed) after the handler returns.
func (b *body) Close() error {
	b.closed = true
	return nil
}

// detach cuts the body from the connection once its request is over.
func (b *body) detach() { b.r = nil }

// tooLong reports whether what is left of the body is more than drain
// reads: the connection will close after the answer.
func (b *body) tooLong() bool { return b.err != nil || b.n > maxDrain }

// drain reads what the handler left of the body, when it is small, and
// reports whether the connection is at the next request.
func (b *body) drain() bool {
	if b.tooLong() {
		return false
	}
	if b.n == 0 {
		return true
	}
	n, err := b.r.Discard(int(b.n))
	b.n -= int64(n)
	return err == nil && b.n == 0
}

// handedConn is a connection given to net/http: its reads start with the
// bytes this package had buffered.
type handedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *handedConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// ReadFrom keeps the socket's sendfile and splice for net/http's answers.
func (c *handedConn) ReadFrom(r io.Reader) (int64, error) {
	if rf, ok := c.Conn.(io.ReaderFrom); ok {
		return rf.ReadFrom(r)
	}
	return io.Copy(struct{ io.Writer }{c.Conn}, r)
}

// CloseWrite lets net/http half-close a TCP connection, as it does on its
// own connections before closing them.
func (c *handedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// handoffListener is the listener of the net/http Server that serves the
// connections handed to it.
type handoffListener struct {
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

func newHandoffListener() *handoffListener {
	return &handoffListener{conns: make(chan net.Conn), done: make(chan struct{})}
}

func (l *handoffListener) push(c net.Conn) bool {
	select {
	case l.conns <- c:
		return true
	case <-l.done:
		return false
	}
}

func (l *handoffListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *handoffListener) close() { l.once.Do(func() { close(l.done) }) }

func (l *handoffListener) Close() error { l.close(); return nil }

func (l *handoffListener) Addr() net.Addr { return handoffAddr{} }

type handoffAddr struct{}

func (handoffAddr) Network() string { return "h1-handoff" }
func (handoffAddr) String() string  { return "h1-handoff" }
