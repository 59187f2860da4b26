package h1

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// served starts s on a loopback port and returns its address; the test's
// end closes it.
func served(t *testing.T, s *Server) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve(ln) }()
	t.Cleanup(func() {
		_ = s.Close()
		if err := <-done; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("Serve returned %v; want http.ErrServerClosed", err)
		}
	})
	return ln.Addr().String()
}

// rawConn is a client that writes bytes and reads answers with net/http's
// own reader, so that every answer is checked for well-formed framing.
type rawConn struct {
	t  *testing.T
	c  net.Conn
	br *bufio.Reader
}

func dial(t *testing.T, addr string) *rawConn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	return &rawConn{t: t, c: c, br: bufio.NewReader(c)}
}

func (c *rawConn) send(s string) {
	c.t.Helper()
	if _, err := io.WriteString(c.c, s); err != nil {
		c.t.Fatal(err)
	}
}

// answer reads one answer to a request of method, body included.
func (c *rawConn) answer(method string) (*http.Response, string) {
	c.t.Helper()
	res, err := http.ReadResponse(c.br, &http.Request{Method: method})
	if err != nil {
		c.t.Fatalf("read answer: %v", err)
	}
	b, err := io.ReadAll(res.Body)
	if err != nil {
		c.t.Fatalf("read answer body: %v", err)
	}
	return res, string(b)
}

// closed reports whether the server closed the connection (EOF or reset
// before any further byte).
func (c *rawConn) closed() bool {
	c.t.Helper()
	_ = c.c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err := c.br.ReadByte()
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return false
	}
	return err != nil
}

func get(path string) string { return "GET " + path + " HTTP/1.1\r\nHost: test\r\n\r\n" }

func post(path, body string) string {
	return fmt.Sprintf("POST %s HTTP/1.1\r\nHost: test\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n%s", path, len(body), body)
}

// echo answers with what it read of the request, and with what a few
// paths ask for.
func echo(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/big":
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write(bytes.Repeat([]byte("x"), 10_000))
		return
	case "/nocontent":
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(http.StatusNoContent)
		_, err := w.Write([]byte("not allowed"))
		w.Header().Set("X-Write-Error", fmt.Sprint(err)) // too late to be seen
		noContentErr <- err
		return
	case "/bigsniff":
		_, _ = w.Write([]byte("<html><body>" + strings.Repeat("x", 10_000) + "</body></html>"))
		return
	case "/keep-body":
		keptBody <- r.Body
		return
	case "/sniff":
		_, _ = w.Write([]byte("<html><body>hi</body></html>"))
		return
	case "/inject":
		w.Header().Set("X-Value", "a\r\nX-Injected: 1")
		w.Header()["Bad Name"] = []string{"v"}
		return
	case "/short":
		w.Header().Set("Content-Length", "10")
		_, _ = w.Write([]byte("12345"))
		return
	case "/flush":
		_, _ = w.Write([]byte("first,"))
		w.(http.Flusher).Flush()
		_, _ = w.Write([]byte("second"))
		return
	case "/ignore-body":
		_, _ = w.Write([]byte("ignored"))
		return
	case "/panic":
		panic("boom")
	case "/hijack":
		hj, ok := w.(http.Hijacker)
		if !ok {
			http.Error(w, "no hijacker", http.StatusInternalServerError)
			return
		}
		c, brw, err := hj.Hijack()
		if err != nil {
			return
		}
		_, _ = brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n")
		_ = brw.Flush()
		line, _ := brw.ReadString('\n')
		_, _ = c.Write([]byte("echo:" + line))
		_ = c.Close()
		return
	}
	body, err := io.ReadAll(r.Body)
	w.Header().Set("Content-Type", "text/plain")
	fmt.Fprintf(w, "%s %s host=%s len=%d body=%q err=%v proto=%s close=%v x=%q",
		r.Method, r.RequestURI, r.Host, r.ContentLength, body, err, r.Proto, r.Close, r.Header.Values("X-A"))
}

// What some echo paths hand to the test.
var (
	noContentErr = make(chan error, 1)
	keptBody     = make(chan io.ReadCloser, 1)
)

func newTestServer(t *testing.T) (*Server, string) {
	t.Helper()
	s := &Server{Handler: http.HandlerFunc(echo), ReadHeaderTimeout: 5 * time.Second, IdleTimeout: 30 * time.Second,
		ErrorLog: log.New(io.Discard, "", 0)}
	return s, served(t, s)
}

func TestKeepAliveAndFraming(t *testing.T) {
	s, addr := newTestServer(t)
	c := dial(t, addr)
	// Pipelined: three requests in one write, answered in order. A body
	// may hold bare LFs: they are not the head's.
	c.send(get("/a?q=1") + post("/b", "hel\nlo\n") + "GET /c HTTP/1.1\r\nHost: test\r\nX-A: 1\r\nx-a: 2\r\n\r\n")
	for _, want := range []string{
		`GET /a?q=1 host=test len=0 body="" err=<nil> proto=HTTP/1.1 close=false x=[]`,
		`POST /b host=test len=7 body="hel\nlo\n" err=<nil> proto=HTTP/1.1 close=false x=[]`,
		`GET /c host=test len=0 body="" err=<nil> proto=HTTP/1.1 close=false x=["1" "2"]`,
	} {
		res, body := c.answer("GET")
		if res.StatusCode != 200 || body != want {
			t.Fatalf("answer %d %q; want 200 %q", res.StatusCode, body, want)
		}
		if res.ContentLength != int64(len(want)) || res.Header.Get("Date") == "" || res.Close {
			t.Fatalf("answer framing: Content-Length %d, Date %q, close %v; want %d, a date, keep-alive",
				res.ContentLength, res.Header.Get("Date"), res.Close, len(want))
		}
	}
	if n := s.handedOff.Load(); n != 0 {
		t.Fatalf("%d connections went to net/http; want none", n)
	}

	// A body too long to wait for goes chunked.
	c.send(get("/big"))
	res, body := c.answer("GET")
	if len(body) != 10_000 || res.ContentLength != -1 || len(res.TransferEncoding) != 1 {
		t.Fatalf("/big: %d bytes, Content-Length %d, Transfer-Encoding %v; want 10000 bytes chunked",
			len(body), res.ContentLength, res.TransferEncoding)
	}
	// Flush sends what was written, chunked.
	c.send(get("/flush"))
	if res, body := c.answer("GET"); body != "first,second" || len(res.TransferEncoding) != 1 {
		t.Fatalf("/flush: %q, Transfer-Encoding %v; want first,second chunked", body, res.TransferEncoding)
	}
	// 204 has no body, whatever the handler writes.
	c.send(get("/nocontent"))
	if res, body := c.answer("GET"); res.StatusCode != 204 || body != "" || res.Header.Get("X-Write-Error") != "" {
		t.Fatalf("/nocontent: %d %q %v; want 204 without a body", res.StatusCode, body, res.Header)
	}
	if err := <-noContentErr; !errors.Is(err, http.ErrBodyNotAllowed) {
		t.Fatalf("/nocontent: Write returned %v; want http.ErrBodyNotAllowed", err)
	}
	// No Content-Type from the handler: sniffed, as net/http does, also
	// when the first write is too long to wait for the handler's end.
	for _, path := range []string{"/sniff", "/bigsniff"} {
		c.send(get(path))
		if res, _ := c.answer("GET"); res.Header.Get("Content-Type") != "text/html; charset=utf-8" {
			t.Fatalf("%s: Content-Type %q; want text/html; charset=utf-8", path, res.Header.Get("Content-Type"))
		}
	}
	// A body kept past its handler reads nothing more from the connection.
	c.send(post("/keep-body", "mine") + get("/next"))
	c.answer("POST")
	c.answer("GET")
	if n, err := (<-keptBody).Read(make([]byte, 64)); n != 0 || !errors.Is(err, http.ErrBodyReadAfterClose) {
		t.Fatalf("a body read after its handler returned: %d bytes, %v; want http.ErrBodyReadAfterClose", n, err)
	}
	// CR and LF in a value cannot start a field; a bad name is left out.
	c.send(get("/inject"))
	if res, _ := c.answer("GET"); res.Header.Get("X-Injected") != "" || res.Header.Get("X-Value") != "a  X-Injected: 1" ||
		res.Header.Get("Bad Name") != "" {
		t.Fatalf("/inject: header %v; want X-Value with spaces and no X-Injected", res.Header)
	}
	// A small body the handler did not read is skipped; the connection goes on.
	c.send(post("/ignore-body", "unread") + get("/after"))
	if _, body := c.answer("POST"); body != "ignored" {
		t.Fatalf("/ignore-body: %q", body)
	}
	if _, body := c.answer("GET"); !strings.HasPrefix(body, "GET /after ") {
		t.Fatalf("after an unread body: %q; want the next request's answer", body)
	}
}

func TestConnectionEnds(t *testing.T) {
	_, addr := newTestServer(t)

	c := dial(t, addr)
	c.send("GET /x HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
	if res, _ := c.answer("GET"); !res.Close {
		t.Fatal("Connection: close asked; the answer does not say it")
	}
	if !c.closed() {
		t.Fatal("Connection: close asked; the connection stays open")
	}

	// A handler that writes less than its Content-Length: the client sees
	// the connection end rather than wait.
	c = dial(t, addr)
	c.send(get("/short"))
	res, err := http.ReadResponse(c.br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if b, err := io.ReadAll(res.Body); string(b) != "12345" || !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("/short: %q, %v; want 12345 then an unexpected EOF", b, err)
	}

	// A long unread body is not read through: the connection ends.
	c = dial(t, addr)
	big := strings.Repeat("b", maxDrain+1)
	go c.send(post("/ignore-body", big))
	if res, body := c.answer("POST"); body != "ignored" || !res.Close {
		t.Fatalf("/ignore-body: %q, close %v; want the answer with Connection: close", body, res.Close)
	}
	if !c.closed() {
		t.Fatal("a long unread body; the connection stays open")
	}

	// A body cut short: the handler sees an unexpected EOF.
	c = dial(t, addr)
	c.send("POST /cut HTTP/1.1\r\nHost: test\r\nContent-Length: 10\r\n\r\n12345")
	_ = c.c.(*net.TCPConn).CloseWrite()
	if _, body := c.answer("POST"); !strings.Contains(body, `body="12345" err=unexpected EOF`) {
		t.Fatalf("cut body: %q; want the five bytes and unexpected EOF", body)
	}

	// A panic ends the connection without an answer, and is logged.
	var logged bytes.Buffer
	var mu sync.Mutex
	s := &Server{Handler: http.HandlerFunc(echo), ErrorLog: log.New(lockedWriter{&mu, &logged}, "", 0)}
	c = dial(t, served(t, s))
	c.send(get("/panic"))
	if !c.closed() {
		t.Fatal("a handler panicked; the connection stays open")
	}
	mu.Lock()
	defer mu.Unlock()
	if !strings.Contains(logged.String(), "panic serving") || !strings.Contains(logged.String(), "boom") {
		t.Fatalf("panic log %q; want the panic", logged.String())
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// TestHandOff sends requests that are not plain on a connection that
// served a plain one: net/http takes the connection over and answers
// them as it would have from the start.
func TestHandOff(t *testing.T) {
	for _, tc := range []struct {
		name, request, method string
		wantStatus            int
		wantBody              string // prefix
	}{
		{"chunked body", "POST /c HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", "POST",
			200, `POST /c host=test len=-1 body="hello"`},
		{"HTTP/1.0", "GET /old HTTP/1.0\r\nHost: test\r\nConnection: keep-alive\r\n\r\n", "GET",
			200, `GET /old host=test len=0 body="" err=<nil> proto=HTTP/1.0`},
		{"HEAD", "HEAD /h HTTP/1.1\r\nHost: test\r\n\r\n", "HEAD", 200, ""},
		{"head over 4 KiB", "GET /long HTTP/1.1\r\nHost: test\r\nX-A: " + strings.Repeat("a", 5000) + "\r\n\r\n", "GET",
			200, `GET /long host=test`},
		{"no Host", "GET /nohost HTTP/1.1\r\n\r\n", "GET", 400, "400 Bad Request: missing required Host header"},
		{"garbage", "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", "GET", 400, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, addr := newTestServer(t)
			c := dial(t, addr)
			c.send(get("/first"))
			if _, body := c.answer("GET"); !strings.HasPrefix(body, "GET /first ") {
				t.Fatalf("first answer %q", body)
			}
			c.send(tc.request)
			res, body := c.answer(tc.method)
			if res.StatusCode != tc.wantStatus || !strings.HasPrefix(body, tc.wantBody) {
				t.Fatalf("answer %d %q; want %d %q…", res.StatusCode, body, tc.wantStatus, tc.wantBody)
			}
			if n := s.handedOff.Load(); n != 1 {
				t.Fatalf("%d connections went to net/http; want 1", n)
			}
		})
	}

	// Plain and not plain in one write: the handoff keeps every byte.
	s, addr := newTestServer(t)
	c := dial(t, addr)
	c.send(get("/one") + "POST /two HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n" + get("/three"))
	for _, want := range []string{`GET /one `, `POST /two host=test len=-1 body="abc"`, `GET /three `} {
		if _, body := c.answer("GET"); !strings.HasPrefix(body, want) {
			t.Fatalf("pipelined across the handoff: %q; want %q…", body, want)
		}
	}
	if n := s.handedOff.Load(); n != 1 {
		t.Fatalf("%d connections went to net/http; want 1", n)
	}
	// A head of bare LFs goes to net/http at once, not after a timeout.
	c = dial(t, addr)
	start := time.Now()
	c.send("GET /lf HTTP/1.1\nHost: test\n\n")
	if _, body := c.answer("GET"); !strings.HasPrefix(body, "GET /lf ") || time.Since(start) > 2*time.Second {
		t.Fatalf("a bare-LF head: %q after %v; want net/http's answer at once", body, time.Since(start))
	}

	// An upgrade (as a WebSocket's) needs net/http's Hijacker.
	c = dial(t, addr)
	c.send(get("/first"))
	c.answer("GET")
	c.send("GET /hijack HTTP/1.1\r\nHost: test\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\nping\n")
	res, err := http.ReadResponse(c.br, nil)
	if err != nil || res.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade: %v %v; want 101", res, err)
	}
	if line, _ := c.br.ReadString('\n'); line != "echo:ping\n" {
		t.Fatalf("after the upgrade: %q; want echo:ping", line)
	}
}

func TestShutdown(t *testing.T) {
	started, release := make(chan struct{}), make(chan struct{})
	s := &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			close(started)
			<-release
		}
		_, _ = w.Write([]byte("done"))
	}), IdleTimeout: time.Minute}
	addr := served(t, s)

	idle := dial(t, addr)
	idle.send(get("/quick"))
	idle.answer("GET")
	handed := dial(t, addr) // a connection net/http serves, idle too
	handed.send("GET /old HTTP/1.0\r\nHost: test\r\nConnection: keep-alive\r\n\r\n")
	handed.answer("GET")
	busy := dial(t, addr)
	busy.send(get("/slow"))
	<-started

	shut := make(chan error, 1)
	go func() { shut <- s.Shutdown(context.Background()) }()
	if !idle.closed() {
		t.Fatal("Shutdown left an idle connection open")
	}
	select {
	case err := <-shut:
		t.Fatalf("Shutdown returned %v while a request was being served", err)
	case <-time.After(100 * time.Millisecond):
	}
	close(release)
	res, body := busy.answer("GET")
	if body != "done" || !res.Close {
		t.Fatalf("the request in flight: %q, close %v; want done and Connection: close", body, res.Close)
	}
	if err := <-shut; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if !handed.closed() {
		t.Fatal("Shutdown left net/http's idle connection open")
	}
	if _, err := net.Dial("tcp", addr); err == nil {
		t.Fatal("the listener still accepts after Shutdown")
	}

	// A Shutdown whose context ends first says so.
	s2 := &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() })}
	c := dial(t, served(t, s2))
	c.send(get("/forever"))
	time.Sleep(50 * time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := s2.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown with a stuck request: %v; want context.DeadlineExceeded", err)
	}
	if err := s2.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if !c.closed() {
		t.Fatal("Close left a connection open")
	}
}

func TestTimeouts(t *testing.T) {
	s := &Server{Handler: http.HandlerFunc(echo), ReadHeaderTimeout: 200 * time.Millisecond, IdleTimeout: 300 * time.Millisecond}
	addr := served(t, s)

	c := dial(t, addr)
	c.send(get("/x"))
	c.answer("GET")
	start := time.Now()
	if !c.closed() {
		t.Fatal("an idle connection outlived IdleTimeout")
	}
	if d := time.Since(start); d < 250*time.Millisecond {
		t.Fatalf("an idle connection closed after %v; IdleTimeout is 300ms", d)
	}

	c = dial(t, addr)
	c.send("GET /x HTTP/1.1\r\nHost: te")
	start = time.Now()
	if !c.closed() {
		t.Fatal("a half-sent head outlived ReadHeaderTimeout")
	}
	if d := time.Since(start); d < 150*time.Millisecond {
		t.Fatalf("a half-sent head was cut after %v; ReadHeaderTimeout is 200ms", d)
	}

	// A new connection that sends nothing has ReadHeaderTimeout, not the
	// longer IdleTimeout.
	s2 := &Server{Handler: http.HandlerFunc(echo), ReadHeaderTimeout: 200 * time.Millisecond, IdleTimeout: time.Minute}
	c = dial(t, served(t, s2))
	start = time.Now()
	if !c.closed() || time.Since(start) > 2*time.Second {
		t.Fatalf("a silent new connection lived %v; want it closed after ReadHeaderTimeout (200ms)", time.Since(start))
	}

	// No IdleTimeout: a kept-alive connection waits as long as it takes,
	// whatever deadline its last head had.
	s3 := &Server{Handler: http.HandlerFunc(echo), ReadHeaderTimeout: 100 * time.Millisecond}
	c = dial(t, served(t, s3))
	c.send("GET /a HTTP/1.1\r\n")
	time.Sleep(20 * time.Millisecond)
	c.send("Host: test\r\n\r\n") // a head in two parts: it had a deadline
	c.answer("GET")
	time.Sleep(300 * time.Millisecond)
	c.send(post("/b", "late but fine"))
	if _, body := c.answer("POST"); !strings.Contains(body, `body="late but fine"`) {
		t.Fatalf("a request after a pause, without IdleTimeout: %q", body)
	}
}

// flakyListener fails its first Accept, as one out of file descriptors.
type flakyListener struct {
	net.Listener
	failed bool
}

func (l *flakyListener) Accept() (net.Conn, error) {
	if !l.failed {
		l.failed = true
		return nil, &net.OpError{Op: "accept", Net: "tcp", Err: errors.New("too many open files")}
	}
	return l.Listener.Accept()
}

// TestAcceptError: an accept that fails does not stop the server.
func TestAcceptError(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{Handler: http.HandlerFunc(echo), ErrorLog: log.New(io.Discard, "", 0)}
	done := make(chan error, 1)
	go func() { done <- s.Serve(&flakyListener{Listener: ln}) }()
	defer func() {
		_ = s.Close()
		<-done
	}()
	c := dial(t, ln.Addr().String())
	c.send(get("/after-error"))
	if _, body := c.answer("GET"); !strings.HasPrefix(body, "GET /after-error ") {
		t.Fatalf("after an accept error: %q", body)
	}
}

// TestNetHTTPClient runs net/http's own client, with its connection reuse,
// against the server.
func TestNetHTTPClient(t *testing.T) {
	s, addr := newTestServer(t)
	client := &http.Client{Timeout: 10 * time.Second}
	defer client.CloseIdleConnections()
	for i := range 20 {
		res, err := client.Post("http://"+addr+"/p", "text/plain", strings.NewReader(strings.Repeat("z", i*500)))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		_ = res.Body.Close()
		if want := fmt.Sprintf("len=%d", i*500); !strings.Contains(string(b), want) {
			t.Fatalf("answer %q; want %s", b, want)
		}
	}
	if n := s.handedOff.Load(); n != 0 {
		t.Fatalf("%d connections went to net/http; want none", n)
	}
}
