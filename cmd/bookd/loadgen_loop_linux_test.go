package main

import (
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
