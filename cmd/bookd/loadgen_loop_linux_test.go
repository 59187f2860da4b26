package main

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// TestLoopSlowDial: in a client loop, a client whose connect is slow, or
// never ends, holds up no other client; the one that never connects fails
// at its request's timeout, the slow one gets its answer.
func TestLoopSlowDial(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "ok") }))
	t.Cleanup(srv.Close)
	newClient := func(timeout time.Duration, dial func(ctx context.Context, network, addr string) (net.Conn, error)) *keepAliveConn {
		c, err := newKeepAliveConn(srv.URL, timeout)
		if err != nil {
			t.Fatal(err)
		}
		c.dialContext = dial
		t.Cleanup(c.close)
		return c
	}
	var d net.Dialer
	slow := newClient(5*time.Second, func(ctx context.Context, network, addr string) (net.Conn, error) {
		time.Sleep(600 * time.Millisecond)
		return d.DialContext(ctx, network, addr)
	})
	never := newClient(200*time.Millisecond, func(ctx context.Context, _, _ string) (net.Conn, error) {
		<-ctx.Done()
		return nil, ctx.Err()
	})
	quick := newClient(5*time.Second, nil)
	start := time.Now()
	var slowAt, neverAt, quickAt time.Duration
	var slowErr, neverErr error
	quickN := 0
	err := runClientLoop([]*keepAliveConn{slow, never, quick}, func(c *keepAliveConn) {
		switch c {
		case slow:
			_, _, slowErr = c.do(t.Context(), http.MethodGet, "/", nil, nil)
			slowAt = time.Since(start)
		case never:
			_, _, neverErr = c.do(t.Context(), http.MethodGet, "/", nil, nil)
			neverAt = time.Since(start)
		case quick:
			for range 50 {
				if status, body, err := c.do(t.Context(), http.MethodGet, "/", nil, nil); err == nil && status == 200 && string(body) == "ok" {
					quickN++
				}
			}
			quickAt = time.Since(start)
		}
	})
	if err != nil {
		t.Fatalf("runClientLoop = %v", err)
	}
	if quickN != 50 || quickAt >= 500*time.Millisecond {
		t.Errorf("the quick client got %d of 50 answers in %v, want all before the slow dial ends (600ms)", quickN, quickAt)
	}
	if slowErr != nil || slowAt < 600*time.Millisecond {
		t.Errorf("the slow client = %v at %v, want its answer after its 600ms dial", slowErr, slowAt)
	}
	var ne net.Error
	if !errors.As(neverErr, &ne) || !ne.Timeout() || neverAt > 2*time.Second {
		t.Errorf("the client that never connects = %v at %v, want a timeout at about 200ms", neverErr, neverAt)
	}
}

// TestLoopAnswerDuringWrite: a looped client whose request is too large
// for the socket's buffers waits to write; the answer of a server that
// answers before it has read the body (as a 413 does) comes while the
// client waits to write, and the client reads it once its request is out.
func TestLoopAnswerDuringWrite(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		br := bufio.NewReader(conn)
		for { // the head
			line, err := br.ReadString('\n')
			if err != nil {
				return
			}
			if line == "\r\n" {
				break
			}
		}
		_, _ = io.WriteString(conn, "HTTP/1.1 413 Payload Too Large\r\nContent-Length: 2\r\nConnection: close\r\n\r\nno")
		time.Sleep(200 * time.Millisecond) // the client fills the buffers and waits to write
		_, _ = io.Copy(io.Discard, br)
	}()
	c, err := newKeepAliveConn("http://"+ln.Addr().String(), 3*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.close)
	// Longer than loopback's buffers, and not a multiple of the write
	// buffer's size, so that the last write is a short one that does not wait.
	body := make([]byte, 32<<20+100)
	var status int
	var answer []byte
	var doErr error
	if err := runClientLoop([]*keepAliveConn{c}, func(c *keepAliveConn) {
		status, answer, doErr = c.do(t.Context(), http.MethodPost, "/", nil, body)
	}); err != nil {
		t.Fatalf("runClientLoop = %v", err)
	}
	if doErr != nil || status != http.StatusRequestEntityTooLarge || string(answer) != "no" {
		t.Errorf("POST of %d bytes = %d %q, %v; want the 413 the server sent while the body was being written", len(body), status, answer, doErr)
	}
}
