package h1

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"
)

// apiLike answers as the API does: a dozen header fields and a small JSON
// body.
func apiLike(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	h := w.Header()
	for _, kv := range [][2]string{
		{"X-Content-Type-Options", "nosniff"}, {"Cache-Control", "no-store"}, {"X-Frame-Options", "DENY"},
		{"Referrer-Policy", "no-referrer"}, {"Cross-Origin-Opener-Policy", "same-origin"},
		{"Cross-Origin-Resource-Policy", "same-site"}, {"Content-Security-Policy", "default-src 'none'"},
		{"Ratelimit-Limit", "100"}, {"Ratelimit-Remaining", "99"}, {"Ratelimit-Reset", "1"},
		{"Ratelimit-Policy", "100;w=1"}, {"Content-Type", "application/json"}, {"Location", "/v1/holds/x"},
	} {
		h[kv[0]] = []string{kv[1]}
	}
	w.WriteHeader(http.StatusCreated)
	_, _ = w.Write([]byte(`{"id":"x","status":"held","quantity":1}` + "\n"))
}

// BenchmarkServers sends the same keep-alive POSTs, from 8 connections, to
// this package's server and to net/http's, in one run, and reports each
// one's time per request and the ratio (net/http over h1). The clients
// share the CPUs, as loadgen does.
func BenchmarkServers(b *testing.B) {
	h1 := &Server{Handler: http.HandlerFunc(apiLike), ReadHeaderTimeout: 10 * time.Second, IdleTimeout: time.Minute}
	std := &http.Server{Handler: http.HandlerFunc(apiLike), ReadHeaderTimeout: 10 * time.Second, IdleTimeout: time.Minute}
	addrs := make([]string, 2)
	for i, serve := range []func(net.Listener) error{h1.Serve, std.Serve} {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		addrs[i] = ln.Addr().String()
		go func() { _ = serve(ln) }()
	}
	defer h1.Close()
	defer std.Close()

	const conns = 8
	per := max(1, b.N/conns)
	var elapsed [2]time.Duration
	b.ResetTimer()
	for round := range 2 { // alternate, so that drift hits both
		for i, addr := range addrs {
			d, err := drive(addr, conns, per/2+round*(per%2))
			if err != nil {
				b.Fatal(err)
			}
			elapsed[i] += d
		}
	}
	n := float64(conns * per)
	b.ReportMetric(float64(elapsed[0].Nanoseconds())/n, "h1-ns/req")
	b.ReportMetric(float64(elapsed[1].Nanoseconds())/n, "net/http-ns/req")
	b.ReportMetric(float64(elapsed[1])/float64(elapsed[0]), "net/http/h1")
}

var benchRequest = []byte("POST /v1/holds HTTP/1.1\r\nHost: bench\r\nUser-Agent: bench\r\n" +
	"Authorization: Bearer eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJ1c2VyLTEiLCJleHAiOjE3OTk5OTk5OTl9.c2lnbmF0dXJl\r\n" +
	"Content-Type: application/json\r\nIdempotency-Key: order-42\r\nContent-Length: 38\r\n\r\n" +
	`{"resource_id":"concert","quantity":1}`)

// drive sends n requests on each of conns connections to addr, one at a
// time per connection, and returns the wall time.
func drive(addr string, conns, n int) (time.Duration, error) {
	cs := make([]net.Conn, conns)
	for i := range cs {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			return 0, err
		}
		defer c.Close()
		cs[i] = c
	}
	var wg sync.WaitGroup
	errs := make(chan error, conns)
	start := time.Now()
	for _, c := range cs {
		wg.Go(func() {
			br := bufio.NewReader(c)
			for range n {
				if _, err := c.Write(benchRequest); err != nil {
					errs <- err
					return
				}
				if err := readAnswer(br); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	d := time.Since(start)
	close(errs)
	return d, <-errs
}

// readAnswer reads one 201 answer with a Content-Length body.
func readAnswer(br *bufio.Reader) error {
	length := -1
	for first := true; ; first = false {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return err
		}
		if first {
			if !bytes.HasPrefix(line, []byte("HTTP/1.1 201 ")) {
				return errors.New("unexpected status line " + strconv.Quote(string(line)))
			}
			continue
		}
		if len(line) == 2 {
			break
		}
		if k, v, ok := bytes.Cut(line, []byte(":")); ok && bytes.EqualFold(k, []byte("Content-Length")) {
			length, err = strconv.Atoi(string(bytes.TrimSpace(v)))
			if err != nil {
				return err
			}
		}
	}
	if length < 0 {
		return errors.New("answer without Content-Length")
	}
	_, err := br.Discard(length)
	return err
}
