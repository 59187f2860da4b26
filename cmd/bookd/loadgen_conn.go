package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// keepAliveConn is one load client: an HTTP/1.1 keep-alive connection that
// writes each request and reads its answer on the calling goroutine.
//
// net/http's Transport hands every request to a write goroutine and its
// answer back from a read goroutine; measured here, that made the load
// generator spend about as much CPU per request as the server it measures,
// on the same two cores. A load client does not need a pool, proxies or
// redirects, so it does without them and leaves the CPU to the server.
// Answers are read by readAnswer, which takes the status, the framing
// (Content-Length, chunked, Connection) and the body and skips the other
// headers instead of building a header map: http.ReadResponse was a third
// of the load generator's CPU.
//
// It is not safe for concurrent use: each load client owns one.
type keepAliveConn struct {
	addr    string      // host:port to dial
	host    string      // the Host header
	tls     *tls.Config // nil for http
	timeout time.Duration

	conn net.Conn // nil until the first request and after an error
	br   *bufio.Reader
	bw   *bufio.Writer
	// dialContext dials instead of a net.Dialer when set (tests).
	dialContext func(ctx context.Context, network, addr string) (net.Conn, error)
	// co, when set, is the coroutine of a clientLoop that runs this client:
	// its socket is read and written through the loop, which also ends its
	// requests at their deadline or their ctx's end.
	co *loopClient
}

// errLoopUnsupported: runClientLoop cannot run these clients (TLS, or a
// system without epoll); they get a goroutine each instead.
var errLoopUnsupported = errors.New("loadgen: the client loop cannot run these clients")

// newKeepAliveConn returns an unconnected client of base (http or https
// URL, no path) whose requests each take at most timeout.
func newKeepAliveConn(base string, timeout time.Duration) (*keepAliveConn, error) {
	u, err := url.Parse(base)
	if err != nil {
		return nil, err
	}
	c := &keepAliveConn{host: u.Host, timeout: timeout}
	port := u.Port()
	switch u.Scheme {
	case "http":
		if port == "" {
			port = "80"
		}
	case "https":
		if port == "" {
			port = "443"
		}
		c.tls = &tls.Config{ServerName: u.Hostname(), NextProtos: []string{"http/1.1"}}
	default:
		return nil, fmt.Errorf("unsupported scheme %q", u.Scheme)
	}
	c.addr = net.JoinHostPort(u.Hostname(), port)
	return c, nil
}

// do sends one request with the given extra header lines ("Name: value")
// and body, and returns the answer's status and whole body. It dials when
// the client has no connection; after any error the connection is closed
// and the next request dials again. ctx ending aborts the request.
func (c *keepAliveConn) do(ctx context.Context, method, path string, header []string, body []byte) (int, []byte, error) {
	if err := ctx.Err(); err != nil {
		return 0, nil, err
	}
	deadline := time.Now().Add(c.timeout)
	if c.co != nil {
		// The loop ends the dial and the I/O below at deadline or when ctx
		// ends.
		c.co.deadline, c.co.ctx = deadline, ctx
	}
	if c.conn == nil {
		if err := c.dial(ctx, deadline); err != nil {
			return 0, nil, err
		}
	}
	var stop func() bool
	if c.co == nil {
		conn := c.conn
		if err := conn.SetDeadline(deadline); err != nil {
			c.close()
			return 0, nil, err
		}
		// Ending ctx breaks the I/O below at once.
		stop = context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	}
	status, answer, keep, err := c.roundTrip(method, path, header, body)
	if stop != nil {
		stop()
	}
	if err != nil && ctx.Err() != nil {
		err = fmt.Errorf("%w (%w)", ctx.Err(), err)
	}
	if err != nil || !keep {
		c.close()
	}
	if err != nil {
		return 0, nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	return status, answer, nil
}

func (c *keepAliveConn) roundTrip(method, path string, header []string, body []byte) (status int, answer []byte, keep bool, err error) {
	w := c.bw
	w.WriteString(method)
	w.WriteByte(' ')
	w.WriteString(path)
	w.WriteString(" HTTP/1.1\r\nHost: ")
	w.WriteString(c.host)
	w.WriteString("\r\nUser-Agent: bookd-loadgen\r\n")
	for _, h := range header {
		w.WriteString(h)
		w.WriteString("\r\n")
	}
	if body != nil || method == http.MethodPost {
		w.WriteString("Content-Length: ")
		w.WriteString(strconv.Itoa(len(body)))
		w.WriteString("\r\n")
	}
	w.WriteString("\r\n")
	w.Write(body)
	if err := w.Flush(); err != nil {
		return 0, nil, false, fmt.Errorf("write request: %w", err)
	}
	status, answer, keep, err = readAnswer(c.br, method)
	if err != nil {
		return 0, nil, false, fmt.Errorf("read answer: %w", err)
	}
	return status, answer, keep, nil
}

func (c *keepAliveConn) dial(ctx context.Context, deadline time.Time) error {
	d := &net.Dialer{Deadline: deadline, KeepAlive: 30 * time.Second}
	dial := func(ctx context.Context) (net.Conn, error) {
		if c.dialContext != nil {
			return c.dialContext(ctx, "tcp", c.addr)
		}
		if c.tls != nil {
			return (&tls.Dialer{NetDialer: d, Config: c.tls}).DialContext(ctx, "tcp", c.addr)
		}
		return d.DialContext(ctx, "tcp", c.addr)
	}
	var (
		conn net.Conn
		err  error
	)
	if c.co != nil {
		conn, err = c.co.dial(ctx, dial)
	} else {
		conn, err = dial(ctx)
	}
	if err != nil {
		return fmt.Errorf("dial %s: %w", c.addr, err)
	}
	c.conn = conn
	return c.bind()
}

// close drops the connection, if any.
func (c *keepAliveConn) close() {
	if c.conn != nil {
		if c.co != nil {
			c.co.closing()
		}
		_ = c.conn.Close()
		c.conn = nil
	}
}

// bind makes the client read and write its connection through the loop
// when it runs in one, directly otherwise. In a loop, a connection the loop
// cannot wait for is an error (and closed): waiting for it in Go's poller
// would stop every client of the loop.
func (c *keepAliveConn) bind() error {
	var rw io.ReadWriter = c.conn
	if c.co != nil {
		if rw = newLoopIO(c.co, c.conn); rw == nil {
			c.close()
			return errors.New("loadgen: the client loop cannot wait for this connection")
		}
	}
	if c.br == nil {
		c.br = bufio.NewReaderSize(rw, 16<<10)
		c.bw = bufio.NewWriterSize(rw, 4<<10)
	} else {
		c.br.Reset(rw)
		c.bw.Reset(rw)
	}
	return nil
}

// halted reports whether c runs in a loop that can no longer run it.
func (c *keepAliveConn) halted() bool { return c.co != nil && c.co.halted() }

// attach makes c a client of the loop coroutine co, or of its caller's
// goroutine again when co is nil, carrying its connection over.
func (c *keepAliveConn) attach(co *loopClient) {
	if c.co == co {
		return
	}
	if c.conn != nil && c.br.Buffered() > 0 {
		c.close() // bytes after an answer: the connection is broken anyway
	}
	c.co = co
	if c.conn != nil {
		_ = c.bind() // on error the next request dials, and fails the same way
	}
}
