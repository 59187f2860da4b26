package main

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestKeepAliveConn: one connection carries many requests; chunked and
// Content-Length answers read whole; Connection: close and a server that
// drops the connection make the next request dial again; a request
// over its timeout or whose ctx ends fails without hanging.
func TestKeepAliveConn(t *testing.T) {
	var conns atomic.Int64
	mux := http.NewServeMux()
	mux.HandleFunc("POST /echo", func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Header().Set("X-Key", r.Header.Get("Idempotency-Key"))
		w.WriteHeader(http.StatusCreated)
		_, _ = w.Write(b)
	})
	mux.HandleFunc("GET /chunked", func(w http.ResponseWriter, r *http.Request) {
		for i := range 3 {
			_, _ = io.WriteString(w, strings.Repeat("x", 3000*(i+1)))
			w.(http.Flusher).Flush()
		}
	})
	mux.HandleFunc("GET /close", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Connection", "close")
		_, _ = io.WriteString(w, "bye")
	})
	mux.HandleFunc("GET /drop", func(w http.ResponseWriter, r *http.Request) {
		c, _, _ := w.(http.Hijacker).Hijack()
		_ = c.Close()
	})
	mux.HandleFunc("GET /slow", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	})
	srv := httptest.NewUnstartedServer(mux)
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)

	// The same requests on the caller's goroutine and in a client loop.
	t.Run("goroutine", func(t *testing.T) {
		exerciseKeepAliveConn(t, srv.URL, &conns, func(_ *keepAliveConn, body func()) { body() })
	})
	t.Run("loop", func(t *testing.T) {
		exerciseKeepAliveConn(t, srv.URL, &conns, func(c *keepAliveConn, body func()) {
			ran := false
			err := runClientLoop([]*keepAliveConn{c}, func(*keepAliveConn) {
				ran = true
				if c.co == nil {
					t.Error("the loop's body runs without the loop's coroutine")
					return
				}
				body()
			})
			if errors.Is(err, errLoopUnsupported) {
				body() // no epoll here: the goroutine case again
				return
			}
			if err != nil || !ran {
				t.Fatalf("runClientLoop = %v, ran %v", err, ran)
			}
		})
	})
}

// exerciseKeepAliveConn makes TestKeepAliveConn's requests with a new
// client c inside run(c, body), which calls body once, on a goroutine or
// as c's coroutine in a client loop (where t.Fatal would not stop the
// test: body reports and returns).
func exerciseKeepAliveConn(t *testing.T, url string, conns *atomic.Int64, run func(*keepAliveConn, func())) {
	conns.Store(0)
	c, err := newKeepAliveConn(url, 300*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.close)
	ctx := t.Context()
	run(c, func() {
		for i := range 20 {
			body := strings.Repeat("b", i*100)
			status, got, err := c.do(ctx, http.MethodPost, "/echo", []string{"Idempotency-Key: k"}, []byte(body))
			if err != nil || status != http.StatusCreated || string(got) != body {
				t.Errorf("POST /echo #%d = %d, %d bytes, %v; want 201 and the %d bytes sent", i, status, len(got), err, len(body))
				return
			}
		}
		if n := conns.Load(); n != 1 {
			t.Errorf("20 requests used %d connections, want 1", n)
		}
		if status, got, err := c.do(ctx, http.MethodGet, "/chunked", nil, nil); err != nil || status != 200 || len(got) != 18000 {
			t.Errorf("GET /chunked = %d, %d bytes, %v; want 200, 18000 bytes", status, len(got), err)
		}
		if status, got, err := c.do(ctx, http.MethodGet, "/close", nil, nil); err != nil || status != 200 || string(got) != "bye" {
			t.Errorf("GET /close = %d, %q, %v; want 200 bye", status, got, err)
		}
		if _, _, err := c.do(ctx, http.MethodGet, "/drop", nil, nil); err == nil {
			t.Error("GET /drop = nil error, want one: the server dropped the connection")
		}
		if status, _, err := c.do(ctx, http.MethodPost, "/echo", nil, nil); err != nil || status != http.StatusCreated {
			t.Errorf("POST /echo after a drop = %d, %v; want 201 on a new connection", status, err)
		}
		if n := conns.Load(); n != 3 {
			t.Errorf("connections after a close and a drop = %d, want 3", n)
		}

		start := time.Now()
		_, _, err := c.do(ctx, http.MethodGet, "/slow", nil, nil)
		var ne net.Error
		if !errors.As(err, &ne) || !ne.Timeout() {
			t.Errorf("GET /slow past the timeout = %v, want a timeout", err)
		}
		if took := time.Since(start); took > 2*time.Second {
			t.Errorf("GET /slow with a timeout of 300ms took %v", took)
		}
		cctx, cancel := context.WithCancel(ctx)
		defer cancel()
		c.timeout = time.Minute
		time.AfterFunc(50*time.Millisecond, cancel)
		start = time.Now()
		// /slow answers after 5 s: an ignored cancel shows as a slow success.
		if _, _, err := c.do(cctx, http.MethodGet, "/slow", nil, nil); !errors.Is(err, context.Canceled) {
			t.Errorf("GET /slow with ctx cancelled = %v, want context.Canceled", err)
		}
		if took := time.Since(start); took > 2*time.Second {
			t.Errorf("GET /slow cancelled after 50ms took %v", took)
		}
		c.timeout = 300 * time.Millisecond
		if status, _, err := c.do(ctx, http.MethodPost, "/echo", nil, nil); err != nil || status != http.StatusCreated {
			t.Errorf("POST /echo after a timeout and a cancel = %d, %v; want 201", status, err)
		}
	})
}
