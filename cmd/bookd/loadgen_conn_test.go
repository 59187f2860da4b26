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

	c, err := newKeepAliveConn(srv.URL, 300*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.close)
	ctx := t.Context()
	for i := range 20 {
		body := strings.Repeat("b", i*100)
		status, got, err := c.do(ctx, http.MethodPost, "/echo", []string{"Idempotency-Key: k"}, []byte(body))
		if err != nil || status != http.StatusCreated || string(got) != body {
			t.Fatalf("POST /echo #%d = %d, %d bytes, %v; want 201 and the %d bytes sent", i, status, len(got), err, len(body))
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

	_, _, err = c.do(ctx, http.MethodGet, "/slow", nil, nil)
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Errorf("GET /slow past the timeout = %v, want a timeout", err)
	}
	cctx, cancel := context.WithCancel(ctx)
	c.timeout = time.Minute
	time.AfterFunc(50*time.Millisecond, cancel)
	done := make(chan error, 1)
	go func() { _, _, err := c.do(cctx, http.MethodGet, "/slow", nil, nil); done <- err }()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("GET /slow with ctx cancelled = %v, want context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("GET /slow did not return after its ctx was cancelled")
	}
}
